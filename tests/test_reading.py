"""Reading files: encodings, formats and the exact reason when a file cannot be read."""

import datetime as dt

import openpyxl
import pytest

from qifu.engine.contract import REGISTRY, REPORTS
from qifu.engine.errors import FileProblem
from qifu.engine.reading import read_table
from qifu.engine.validate import parse
from tests.factories import ENT1, REGISTRY_HEADER, registry_rows, write


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_accepted_encodings_read_the_same(tmp_path, encoding):
    table = read_table(write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows(), encoding))
    assert table.cells["name"].to_list()[0] == "慈溪市华鑫电器有限公司"
    assert table.row_numbers == [2, 3, 4]


def test_mixed_encoding_names_both_lines(tmp_path):
    rows = registry_rows()
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        (REGISTRY_HEADER + "\n" + rows[0] + "\n").encode("utf-8") + (rows[1] + "\n").encode("gb18030")
    )
    with pytest.raises(FileProblem) as exc:
        read_table(path)
    assert str(exc.value) == "文件编码不一致：第2行是 UTF-8，第3行不是；请整个文件使用同一种编码另存"


def test_utf8_bom_file_with_a_gbk_line_is_refused(tmp_path):
    rows = registry_rows()
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (REGISTRY_HEADER + "\n").encode() + (rows[0] + "\n").encode("gbk"))
    with pytest.raises(FileProblem) as exc:
        read_table(path)
    assert str(exc.value) == "文件编码不一致：文件按 UTF-8 保存，但第2行不是 UTF-8；请整个文件使用同一种编码另存"


def test_wrong_encoding_is_refused(tmp_path):
    path = write(tmp_path / "sjis.csv", "uscc,name", ["91350100M000100Y43,ｶﾌﾞｼｷｶﾞｲｼｬ 株式会社テスト"] * 30, "shift_jis")
    with pytest.raises(FileProblem) as exc:
        read_table(path)
    assert str(exc.value).startswith("无法识别文件编码（仅支持 UTF-8 和 GB18030/GBK）")


def test_zero_byte_file(tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(FileProblem, match="^文件为空（0字节）$"):
        read_table(tmp_path / "zero.csv")


def test_empty_file_without_header(tmp_path):
    (tmp_path / "empty.csv").write_text("\n \n\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="^文件没有内容（缺少表头行）$"):
        read_table(tmp_path / "empty.csv")


def test_header_only_file(tmp_path):
    with pytest.raises(FileProblem, match="^文件只有表头（第1行），没有数据行$"):
        read_table(write(tmp_path / "h.csv", REGISTRY_HEADER, []))


@pytest.mark.parametrize("name", ["one.csv", "one.xlsx", "quoted.csv", "trailing.csv"])
def test_a_file_of_one_column_is_read_with_its_header(tmp_path, name):
    """One column: its header is one cell, as a title row is in a wider file; it is the header,
    and the file is refused for the columns it lacks, not as empty."""
    if name.endswith(".xlsx"):
        path = _xlsx(tmp_path / name, [[], ["统一社会信用代码"], [ENT1], [None]])
    else:
        cell = '"统一社会信用代码\n"' if name == "quoted.csv" else "统一社会信用代码"  # a quoted line break: the slow path
        text = f"\n{cell}\n{ENT1}\n"
        if name == "trailing.csv":  # a delimiter after each cell: two columns, one filled (the fast path)
            text = f"{cell},\n{ENT1},\n"
        (tmp_path / name).write_text(text, encoding="utf-8")
        path = tmp_path / name
    table = read_table(path)
    assert table.warnings == [] and table.cells.columns[:1] == ["统一社会信用代码"]
    assert table.cells["统一社会信用代码"].to_list() == [ENT1] and table.row_numbers == [{"quoted.csv": 4, "trailing.csv": 2}.get(name, 3)]
    with pytest.raises(FileProblem, match="^缺少必填列：name（名称）、entity_type（主体类型）"):
        parse(table, REGISTRY)


def test_binary_junk(tmp_path):
    (tmp_path / "junk.csv").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(FileProblem, match="^文件不是文本表格（含有二进制内容），请提供 CSV 或 XLSX 文件$"):
        read_table(tmp_path / "junk.csv")


def test_xlsx_extension_with_text_inside(tmp_path):
    (tmp_path / "fake.xlsx").write_text("uscc\n1\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="^文件扩展名是 .xlsx，但内容不是 Excel 工作簿$"):
        read_table(tmp_path / "fake.xlsx")


def _xlsx(path, rows, merge=None):
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    if merge:
        ws.merge_cells(merge)
    wb.save(path)
    return path


def test_xlsx_blank_rows_and_title_row_are_skipped_with_sheet_row_numbers(tmp_path):
    header = REGISTRY_HEADER.split(",")
    row = registry_rows()[0].split(",")
    path = _xlsx(tmp_path / "r.xlsx", [["2025年登记信息导出"], header, [], row, [None] * len(header)])
    table = read_table(path)
    assert table.row_numbers == [4]
    assert table.warnings == ["第1行像是标题行，已跳过"]
    parsed = parse(table, REGISTRY)
    assert parsed.errors == []
    assert parsed.frame["uscc"].to_list() == [ENT1]


def test_xlsx_merged_cells_in_data_are_refused(tmp_path):
    header = REGISTRY_HEADER.split(",")
    rows = [r.split(",") for r in registry_rows()]
    rows[1][3] = None
    path = _xlsx(tmp_path / "m.xlsx", [header, *rows], merge="D2:D3")
    with pytest.raises(FileProblem) as exc:
        read_table(path)
    assert str(exc.value) == "Excel 中有合并单元格 D2:D3：请取消合并，并在每一行填写完整的值"


def test_xlsx_native_dates_numbers_and_floats(tmp_path):
    header = ["uscc", "report_year", "filed_at", "employees", "total_assets"]
    path = _xlsx(tmp_path / "d.xlsx", [header, [ENT1, 2025, dt.datetime(2026, 3, 2, 10, 15), 25, 0.1 + 0.2]])
    parsed = parse(read_table(path), REPORTS)
    assert parsed.errors == []
    row = parsed.frame.row(0, named=True)
    assert row["filed_at"] == dt.datetime(2026, 3, 2, 2, 15, tzinfo=dt.UTC)
    assert row["employees"] == 25
    assert str(row["total_assets"]) == "0.300000"


def test_chinese_headers_are_accepted(tmp_path):
    header = "统一社会信用代码,名称,主体类型,所属镇街,成立日期,登记状态,注册资本（万元）"
    parsed = parse(
        read_table(write(tmp_path / "c.csv", header, [f"{ENT1},甲,企业,浒山街道,2020-01-01,存续,10"])), REGISTRY
    )
    assert parsed.errors == []
    assert parsed.frame.row(0, named=True)["entity_type"] == "enterprise"
