"""The documented value forms of contract §1, each accepted or refused with its reason."""

import datetime as dt
from decimal import Decimal

import pytest

from qifu.engine.contract import REPORTS, SHAREHOLDERS
from qifu.engine.reading import read_table
from qifu.engine.validate import parse
from tests.factories import ENT1, write

UTC = dt.UTC


def _one(tmp_path, kind, header, value):
    keys = {"reports": f"{ENT1},2025,2026-03-01", "shareholders": f"{ENT1},2025,张三"}[kind.name]
    key_header = {"reports": "uscc,report_year,filed_at", "shareholders": "uscc,report_year,shareholder_name"}[kind.name]
    path = write(tmp_path / "v.csv", f"{key_header},{header}", [f'{keys},"{value}"'])
    return parse(read_table(path), kind)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01", dt.date(2025, 3, 1)),
        ("2025/3/1", dt.date(2025, 3, 1)),
        ("2025年3月1日", dt.date(2025, 3, 1)),
        ("45717", dt.date(2025, 3, 1)),  # Excel serial
        ("2025-03-01 00:00:00", dt.date(2025, 3, 1)),
    ],
)
def test_date_forms(tmp_path, text, expected):
    parsed = _one(tmp_path, SHAREHOLDERS, "paid_in_date", text)
    assert parsed.errors == []
    assert parsed.frame["paid_in_date"][0] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01 09:30:00", dt.datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),  # naive = Asia/Shanghai
        ("2026-03-01T09:30:00+08:00", dt.datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01T01:30:00Z", dt.datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026/3/1 9:30", dt.datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("2026-03-01", dt.datetime(2026, 2, 28, 16, 0, tzinfo=UTC)),
    ],
)
def test_datetime_forms(tmp_path, text, expected):
    parsed = _one(tmp_path, REPORTS, "phone", "1")  # filed_at is in the key columns
    path = write(tmp_path / "dt.csv", "uscc,report_year,filed_at", [f"{ENT1},2025,{text}"])
    parsed = parse(read_table(path), REPORTS)
    assert parsed.errors == []
    assert parsed.frame["filed_at"][0] == expected


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("是", True), ("有", True),
                                                 ("false", False), ("0", False), ("否", False), ("无", False)])
def test_boolean_forms(tmp_path, text, expected):
    parsed = _one(tmp_path, REPORTS, "has_website", text)
    assert parsed.errors == []
    assert parsed.frame["has_website"][0] is expected


@pytest.mark.parametrize(("text", "expected"), [("open", "open"), ("开业", "open"), ("歇业", "suspended"),
                                                 ("清算", "liquidating")])
def test_enumeration_forms(tmp_path, text, expected):
    parsed = _one(tmp_path, REPORTS, "operating_status", text)
    assert parsed.frame["operating_status"][0] == expected


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [
        ("employees", "3.5", "人数必须是整数"),
        ("employees", "五", "不是整数"),
        ("total_assets", "十万", "金额必须是数字（单位：万元）"),
        ("total_assets", "12.3456789", "金额最多保留6位小数（单位：万元）"),
        ("total_assets", "1.2E+07", "金额是科学计数法，Excel 可能已截断精度；请设为数值格式后重新导出"),
        ("has_website", "maybe", "应为 是/否（true/false、1/0、有/无）"),
        ("operating_status", "营业", "取值应为：open（开业）、suspended（歇业）、liquidating（清算）"),
    ],
)
def test_bad_values_name_row_field_value_and_reason(tmp_path, field, text, reason):
    parsed = _one(tmp_path, REPORTS, field, text)
    assert [(e.row, e.field, e.value, e.reason) for e in parsed.errors] == [(2, field, text, reason)]


@pytest.mark.parametrize(("text", "expected"), [("1,234.5", "1234.5"), ("-12.5", "-12.5"), ("0.000001", "0.000001")])
def test_money_is_exact(tmp_path, text, expected):
    field = "total_equity"  # may be negative
    parsed = _one(tmp_path, REPORTS, field, text)
    assert parsed.errors == []
    assert parsed.frame[field][0] == Decimal(expected)


def test_empty_means_not_reported(tmp_path):
    parsed = _one(tmp_path, REPORTS, "total_assets", "")
    assert parsed.errors == []
    assert parsed.frame["total_assets"][0] is None


@pytest.mark.parametrize(("field", "text", "expected"), [("employees", "-3", -3), ("total_assets", "-1", Decimal("-1")),
                                                         ("employees", "+5", 5), ("coop_members", "99999999", 99999999)])
def test_impossible_but_readable_values_are_read_as_filed(tmp_path, field, text, expected):
    """Contract v1.1 §1: negative assets or headcounts are what was filed; FM-08 reports them."""
    parsed = _one(tmp_path, REPORTS, field, text)
    assert parsed.errors == [] and parsed.frame[field][0] == expected


@pytest.mark.parametrize(("field", "text", "expected"), [
    ("total_equity", "－１２３．５", Decimal("-123.5")),  # typed with a Chinese input method (全角)
    ("total_assets", "１，２３４．５", Decimal("1234.5")),
    ("employees", "１２", 12),
    ("has_website", "１", True),
    ("operating_status", "ｏｐｅｎ", "open"),
    ("contact_address", "浙江省慈溪市１２号", "浙江省慈溪市１２号"),  # text stays as filed
])
def test_full_width_forms_read_as_what_they_stand_for_in_numbers_and_choices(tmp_path, field, text, expected):
    parsed = _one(tmp_path, REPORTS, field, text)
    assert parsed.errors == [] and parsed.frame[field][0] == expected


def test_a_full_width_value_that_is_no_number_is_named_as_filed(tmp_path):
    parsed = _one(tmp_path, REPORTS, "employees", "１２人")
    assert [(e.field, e.value, e.reason) for e in parsed.errors] == [("employees", "１２人", "不是整数")]


def test_a_form_reads_full_width_forms_as_a_file_does():
    from qifu.engine.validate import parse_values

    fields = {f.name: f for f in REPORTS.fields}
    values, errors = parse_values({"employees": "１２", "filed_at": "２０２６年３月１日", "total_assets": "　"}, fields)
    assert errors == {} and values["employees"] == 12 and values["total_assets"] is None
    assert values["filed_at"] == dt.datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # naive: Asia/Shanghai
