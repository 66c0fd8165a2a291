"""`import_file`: all-or-nothing, idempotent, corrections as revisions; bad input named exactly."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from qifu.engine.errors import FileProblem, InvalidFile
from qifu.imports.actions import import_file
from qifu.imports.models import ImportRun
from qifu.registry.models import Entity
from qifu.reminders.models import ReminderRecord
from qifu.reports.models import AnnualReport, Shareholder
from qifu.sources.models import SocialRecord, TaxRecord
from tests.factories import ENT1, ENT2, IND1, REGISTRY_HEADER, REPORTS_HEADER, registry_rows, report_rows, write

pytestmark = pytest.mark.django_db

MODELS = (Entity, AnnualReport, Shareholder, TaxRecord, SocialRecord, ReminderRecord, ImportRun)


def snapshot() -> dict[str, list[tuple]]:
    return {m.__name__: sorted(map(repr, m.objects.values_list())) for m in MODELS}


@pytest.fixture(params=["few", "many"])
def either_way(request, monkeypatch):
    """A file's stored rows read back by its entities (a small file) or by its years (a large one)."""
    from qifu.imports import actions

    if request.param == "many":
        monkeypatch.setattr(actions, "FEW_ENTITIES", 0)
    return request.param


@pytest.fixture
def registry(tmp_path):
    import_file("registry", write(tmp_path / "registry.csv", REGISTRY_HEADER, registry_rows()))


def refused(kind, path) -> list[tuple]:
    before = snapshot()
    with pytest.raises(InvalidFile) as exc:
        import_file(kind, path)
    assert snapshot() == before, "a refused file must leave the database unchanged"
    return [(e.row, e.field, e.value, e.reason) for e in exc.value.errors]


def refused_file(kind, path) -> str:
    before = snapshot()
    with pytest.raises(FileProblem) as exc:
        import_file(kind, path)
    assert snapshot() == before
    return str(exc.value)


# --- bad input: the exact error, and nothing stored ------------------------------------


def test_missing_required_column(tmp_path, registry):
    path = write(tmp_path / "r.csv", "uscc,report_year", [f"{ENT1},2025"])
    assert refused_file("reports", path) == "缺少必填列：filed_at（报送时间）"


def test_unknown_extra_column_is_only_a_warning(tmp_path, registry):
    path = write(tmp_path / "r.csv", REPORTS_HEADER + ",备注", [r + ",请核实" for r in report_rows()])
    result = import_file("reports", path)
    assert result.warnings == ["未知列“备注”已忽略"]
    assert result.inserted == 3


def test_invalid_check_character(tmp_path):
    rows = registry_rows()
    bad = ENT1[:17] + ("0" if ENT1[17] != "0" else "1")
    rows[1] = rows[1].replace(ENT2, bad)
    errors = refused("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows))
    assert errors == [(3, "uscc", bad, f"统一社会信用代码校验位错误：第18位应为{ENT1[17]}")]


def test_malformed_date(tmp_path):
    rows = registry_rows()
    rows[0] = rows[0].replace("2018-05-02", "2018-13-02")
    errors = refused("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows))
    assert errors == [(2, "established_on", "2018-13-02", "不是有效日期（格式如 2025-03-01、2025/3/1、2025年3月1日）")]


def test_impossible_values_are_stored_as_filed(tmp_path, registry):
    """Contract v1.1 §1: a value that reads as its type but is impossible (a negative headcount
    or total assets, more women than staff) is what the enterprise filed; the rules report it."""
    rows = report_rows()
    rows[1] = rows[1].replace(",120,40,8800,", ",-120,400,-8800,")
    result = import_file("reports", write(tmp_path / "r.csv", REPORTS_HEADER, rows))
    assert result.inserted == 3
    stored = AnnualReport.objects.get(entity_id=ENT2, report_year=2025)
    assert (stored.employees, stored.employees_female, str(stored.total_assets)) == (-120, 400, "-8800.000000")


def test_values_that_cannot_be_stored_are_row_errors(tmp_path, registry):
    rows = report_rows()
    rows[1] = rows[1].replace(",120,40,8800,", ",3000000000,40,123456789012345,")
    errors = refused("reports", write(tmp_path / "r.csv", REPORTS_HEADER, rows))
    assert errors == [(3, "employees", "3000000000", "数值超出可保存的范围"),
                      (3, "total_assets", "123456789012345", "金额过大（超过14位整数，无法保存）")]


def test_a_row_with_fewer_cells_than_the_header_is_a_row_error(tmp_path, registry):
    """A file cut inside its last row used to be padded and stored ("13800" as a phone)."""
    rows = report_rows()
    rows.append(rows[0].replace(ENT1, IND1)[:80])  # cut mid-row
    path = tmp_path / "cut.csv"
    path.write_text(REPORTS_HEADER + "\n" + "\n".join(rows), encoding="utf-8")  # no final newline
    errors = refused("reports", path)
    assert [(r, f) for r, f, _, _ in errors] == [(5, "")]
    assert "只有" in errors[0][3] and "截断" in errors[0][3]


def test_a_row_with_more_cells_than_the_header_is_a_row_error(tmp_path, registry):
    rows = registry_rows()
    rows[1] = rows[1] + ",多出来的一列"
    errors = refused("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows))
    assert [(r, f) for r, f, _, _ in errors] == [(3, "")] and "比表头" in errors[0][3]


def test_non_numeric_amount(tmp_path, registry):
    rows = report_rows()
    rows[0] = rows[0].replace(",2300,", ",2300万元,")
    errors = refused("reports", write(tmp_path / "r.csv", REPORTS_HEADER, rows))
    assert errors == [(2, "total_revenue", "2300万元", "金额必须是数字（单位：万元）")]


def test_duplicate_keys_inside_one_file(tmp_path, registry):
    rows = report_rows()
    errors = refused("reports", write(tmp_path / "r.csv", REPORTS_HEADER, [*rows, rows[0]]))
    assert errors == [(5, "uscc+report_year", f"{ENT1} / 2025", "与第2行重复（同一文件中关键字段不能重复）")]


def test_report_for_unknown_entity(tmp_path, registry):
    from qifu.engine import uscc

    stranger = uscc.make("91330282MA2A9999" + "3")
    rows = report_rows() + [report_rows()[0].replace(ENT1, stranger)]
    errors = refused("reports", write(tmp_path / "r.csv", REPORTS_HEADER, rows))
    assert errors == [(5, "uscc", stranger, "登记信息中没有这个主体（请先导入 registry 登记信息）")]


def test_unknown_township(tmp_path):
    rows = registry_rows()
    rows[2] = rows[2].replace("坎墩街道", "坎墩镇")
    errors = refused("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows))
    assert errors == [(4, "town", "坎墩镇", "不是本辖区的镇街（请使用镇街全称，如 浒山街道）")]


def test_every_bad_row_is_reported_not_just_the_first(tmp_path):
    rows = registry_rows()
    rows[0] = rows[0].replace("enterprise", "company")
    rows[2] = rows[2].replace("坎墩街道", "")
    errors = refused("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows))
    assert [(r, f) for r, f, _, _ in errors] == [(2, "entity_type"), (4, "town")]
    assert errors[1][3] == "必填项不能为空"


def test_xlsx_with_blank_and_merged_rows(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(REGISTRY_HEADER.split(","))
    ws.append([])
    for r in registry_rows():
        ws.append(r.split(","))
    ws.merge_cells("D3:D4")
    wb.save(tmp_path / "r.xlsx")
    assert refused_file("registry", tmp_path / "r.xlsx") == (
        "Excel 中有合并单元格 D3:D4：请取消合并，并在每一行填写完整的值"
    )


def test_xlsx_with_blank_rows_imports(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(REGISTRY_HEADER.split(","))
    for r in registry_rows():
        ws.append([])
        ws.append(r.split(","))
    wb.save(tmp_path / "r.xlsx")
    assert import_file("registry", tmp_path / "r.xlsx").inserted == 3


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "文件为空（0字节）"),
        (b"\n\n", "文件没有内容（缺少表头行）"),
        (REGISTRY_HEADER.encode() + b"\n", "文件只有表头（第1行），没有数据行"),
        (bytes(range(256)) * 10, "文件不是文本表格（含有二进制内容），请提供 CSV 或 XLSX 文件"),
        ("\n".join([REGISTRY_HEADER, *registry_rows()]).encode("utf-16"), "文件不是文本表格（含有二进制内容），请提供 CSV 或 XLSX 文件"),
    ],
    ids=["zero-byte", "empty", "header-only", "binary-junk", "utf-16"],
)
def test_unreadable_files(tmp_path, content, reason):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    assert refused_file("registry", path) == reason


def test_gb18030_file_imports_like_utf8(tmp_path):
    result = import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows(), "gb18030"))
    assert result.inserted == 3
    assert Entity.objects.get(uscc=IND1).name == "慈溪市坎墩佳宝服饰店"


# --- idempotency and corrections ------------------------------------------------------------


def test_same_file_twice_changes_nothing(tmp_path, registry, either_way):
    path = write(tmp_path / "r.csv", REPORTS_HEADER, report_rows())
    first = import_file("reports", path)
    before = {m.__name__: sorted(map(repr, m.objects.values_list())) for m in MODELS if m is not ImportRun}
    second = import_file("reports", path)
    after = {m.__name__: sorted(map(repr, m.objects.values_list())) for m in MODELS if m is not ImportRun}
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert before == after


def test_registry_reimport_is_idempotent_and_updates_changes(tmp_path, registry, either_way):
    rows = registry_rows()
    again = import_file("registry", write(tmp_path / "same.csv", REGISTRY_HEADER, rows))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    rows[0] = rows[0].replace("13905741234", "13905749999")
    changed = import_file("registry", write(tmp_path / "changed.csv", REGISTRY_HEADER, rows))
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 2)
    assert Entity.objects.get(uscc=ENT1).phone == "13905749999"


def test_changed_report_is_a_new_revision_and_history_is_kept(tmp_path, registry, either_way):
    import_file("reports", write(tmp_path / "r1.csv", REPORTS_HEADER, report_rows()))
    rows = report_rows()
    rows[0] = rows[0].replace(",2300,2100,", ",2350,2100,")
    result = import_file("reports", write(tmp_path / "r2.csv", REPORTS_HEADER, rows))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    revisions = list(
        AnnualReport.objects.filter(entity_id=ENT1, report_year=2025)
        .order_by("revision")
        .values_list("revision", "is_current", "total_revenue")
    )
    assert [(r, c, str(v)) for r, c, v in revisions] == [(1, False, "2300.000000"), (2, True, "2350.000000")]
    assert AnnualReport.objects.filter(report_year=2025, is_current=True).count() == 3


def test_correction_file_with_fewer_columns_keeps_what_it_does_not_mention(tmp_path, registry, either_way):
    import_file("reports", write(tmp_path / "r1.csv", REPORTS_HEADER, report_rows()))
    path = write(tmp_path / "fix.csv", "uscc,report_year,filed_at,total_revenue", [f"{ENT1},2025,2026-03-02 10:15:00,2400"])
    import_file("reports", path)
    current = AnnualReport.objects.get(entity_id=ENT1, report_year=2025, is_current=True)
    assert (current.revision, str(current.total_revenue), str(current.total_assets)) == (2, "2400.000000", "1500.500000")


def test_a_small_file_reads_back_only_its_own_entities_rows(tmp_path, registry):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import_file("reports", write(tmp_path / "r1.csv", REPORTS_HEADER, report_rows()))
    fix = write(tmp_path / "fix.csv", "uscc,report_year,filed_at,total_revenue", [f"{ENT1},2025,2026-03-02 10:15:00,2400"])
    with CaptureQueriesContext(connection) as seen:
        result = import_file("reports", fix)
    read = [q["sql"] for q in seen.captured_queries if q["sql"].startswith("SELECT") and "annualreport" in q["sql"]
            and "revision" in q["sql"]]
    assert (result.updated, result.unchanged) == (1, 0) and read and all(ENT1 in q for q in read)
    assert all(ENT2 not in q for q in read)


def test_naive_datetimes_are_shanghai_time(tmp_path, registry):
    import_file("reports", write(tmp_path / "r.csv", REPORTS_HEADER, report_rows()))
    filed = AnnualReport.objects.get(entity_id=ENT1).filed_at
    assert filed == dt.datetime(2026, 3, 2, 2, 15, tzinfo=dt.UTC)


def test_money_round_trips_exactly(tmp_path, registry):
    rows = report_rows()
    rows[0] = rows[0].replace("1500.5,", "123456789.123456,")
    rows[0] = rows[0].replace(",600,900.5,", ",600,123456189.123456,")
    import_file("reports", write(tmp_path / "r.csv", REPORTS_HEADER, rows))
    report = AnnualReport.objects.get(entity_id=ENT1)
    assert str(report.total_assets) == "123456789.123456"


def test_reminder_receipts_update_status(tmp_path, registry, either_way):
    header = "uscc,sent_at,channel,purpose,status"
    import_file("reminders", write(tmp_path / "a.csv", header, [f"{ENT1},2026-03-01 10:00:00,短信,催报,未知"]))
    result = import_file("reminders", write(tmp_path / "b.csv", header, [f"{ENT1},2026-03-01 10:00:00,sms,filing,delivered"]))
    assert (result.inserted, result.updated) == (0, 1)
    assert ReminderRecord.objects.get().status == "delivered"


def test_import_runs_are_recorded(tmp_path, registry):
    run = ImportRun.objects.get()
    assert (run.kind, run.rows, run.inserted, run.encoding) == ("registry", 3, 3, "utf-8")
