"""Read a contract file (CSV or XLSX) into a table of strings, or say exactly why not.

Encoding: UTF-8, UTF-8 with BOM and GB18030 (a superset of GBK and GB2312) are accepted.
A file whose lines mix encodings is refused, naming the first line that disagrees, rather
than guessed at: a guess would store garbled names.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import polars as pl

from qifu.engine.errors import FileProblem, RowError

XLSX_MAGIC = b"PK\x03\x04"
GB_FAMILY = {"gb18030", "gbk", "gb2312", "hz"}


@dataclass
class Table:
    """Cells as stripped strings ("" for empty), one row number per data row."""

    headers: list[str]
    cells: pl.DataFrame  # one Utf8 column per header
    row_numbers: list[int]
    encoding: str
    warnings: list[str] = field(default_factory=list)
    # Rows with fewer or more cells than the header (a file cut inside its last row): errors of
    # their own (contract §1), left out of ``cells`` rather than padded into wrong values.
    row_errors: list[RowError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_numbers)

    def frame(self) -> pl.DataFrame:
        return self.cells.with_columns(pl.Series("__row", self.row_numbers, dtype=pl.Int64))


def read_filled(path: str | Path, columns: dict[str, str], what: str) -> list[dict]:
    """A list qifu exported, filled in by staff and read back (XLSX, or CSV in any of the
    bureau's encodings): each row's cells under ``columns`` (header -> the key the row gets), as
    typed, and its line (``__row``). ``FileProblem`` when it cannot be read or lacks a column
    (``what`` names the list: 送达清单)."""
    table = read_table(path)
    missing = [h for h in columns if h not in table.headers]
    if missing:
        raise FileProblem(f"不是{what}：缺少“{'”“'.join(missing)}”列（请用本页导出的{what}填写）")
    return table.frame().select([*columns, "__row"]).rename(columns).to_dicts()


def read_table(path: str | Path) -> Table:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileProblem(f"找不到文件：{path}") from None
    except IsADirectoryError:
        raise FileProblem(f"这是一个文件夹，不是文件：{path}") from None
    if not raw:
        raise FileProblem("文件为空（0字节）")
    if raw.startswith(XLSX_MAGIC):
        return _read_xlsx(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raise FileProblem("文件扩展名是 .xlsx，但内容不是 Excel 工作簿")
    if path.suffix.lower() == ".xls":
        raise FileProblem("不支持旧版 .xls 格式，请在 Excel 中另存为 .xlsx 或 CSV")
    return _read_csv(raw)


def decode(raw: bytes) -> tuple[str, str]:
    """Return (text, encoding name) or raise FileProblem."""
    if b"\x00" in raw[:65536]:
        raise FileProblem("文件不是文本表格（含有二进制内容），请提供 CSV 或 XLSX 文件")
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise _mixed(raw[3:], "UTF-8", exc) from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8. Any line that *is* non-ASCII UTF-8 means the file mixes encodings.
    lines = raw.split(b"\n")
    utf8_line = next((i for i, ln in enumerate(lines, 1) if not ln.isascii() and _is_utf8(ln)), None)
    if utf8_line is not None:
        bad_line = next(i for i, ln in enumerate(lines, 1) if not _is_utf8(ln))
        raise FileProblem(
            f"文件编码不一致：第{utf8_line}行是 UTF-8，第{bad_line}行不是；请整个文件使用同一种编码另存"
        )
    best = charset_normalizer.from_bytes(raw[:262144]).best()
    guess = best.encoding.lower().replace("_", "") if best else None
    if guess not in GB_FAMILY and guess not in {"big5", "cp950"}:
        raise FileProblem(
            "无法识别文件编码（仅支持 UTF-8 和 GB18030/GBK）"
            + (f"，检测结果为 {best.encoding}" if best else "，内容不像文本表格")
        )
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileProblem(f"文件编码错误：第{line}行既不是 UTF-8 也不是 GB18030") from None


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mixed(raw: bytes, name: str, exc: UnicodeDecodeError) -> FileProblem:
    line = raw[: exc.start].count(b"\n") + 1
    return FileProblem(f"文件编码不一致：文件按 {name} 保存，但第{line}行不是 {name}；请整个文件使用同一种编码另存")


def _read_csv(raw: bytes) -> Table:
    text, encoding = decode(raw)
    if not text.strip():
        raise FileProblem("文件没有内容（缺少表头行）")
    try:
        delimiter = csv.Sniffer().sniff(text[:8192].split("\n", 1)[0], delimiters=",\t;").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pl.read_csv(
            text.encode("utf-8"),
            has_header=False,
            infer_schema=False,
            separator=delimiter,
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        frame = None
    n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if frame is not None and _ragged(text, delimiter):
        frame = None  # polars pads a short row with empty cells: the csv module counts them
    if frame is not None and frame.height == n_lines:
        nonblank = list(range(1, n_lines + 1))
    else:
        nonblank = [i for i, ln in enumerate(text.split("\n"), 1) if ln.strip(" \r\t,;")]
    if frame is None or frame.height != len(nonblank):
        # Quoted line breaks or ragged rows: the csv module reports them with line numbers.
        return _read_csv_slow(text, delimiter, encoding)
    frame = frame.select(pl.all().fill_null("").str.strip_chars())
    return _build_frame(frame, nonblank, encoding)


def _ragged(text: str, delimiter: str) -> bool:
    """Whether the non-blank lines differ in their number of delimiters (a short or long row,
    a title row, or a delimiter inside quotes: the slow path tells them apart)."""
    lines = pl.Series(text.split("\n"), dtype=pl.Utf8)
    lines = lines.filter(lines.str.strip_chars(" \r\t,;") != "")
    return lines.str.count_matches(delimiter, literal=True).n_unique() > 1


def _read_csv_slow(text: str, delimiter: str, encoding: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    numbered = []
    try:
        for row in reader:
            numbered.append((reader.line_num, row))
    except csv.Error as exc:
        raise FileProblem(f"CSV 格式错误：第{reader.line_num}行：{exc}") from None
    return _build(numbered, encoding)


def _build_frame(frame: pl.DataFrame, line_numbers: list[int], encoding: str) -> Table:
    """The fast path: cells already in a frame, one line number per row (header first)."""
    warnings: list[str] = []
    width = frame.width
    # blank rows and one-cell title rows above the header; in a file of one column, whose header
    # is one cell too, only the blank rows (as ``_build`` tells them)
    filled = frame.select(pl.sum_horizontal(pl.all() != "")).to_series()
    most = 1 if filled.max() > 1 else 0
    start = 0
    while start < frame.height and filled[start] <= most:
        if filled[start]:
            warnings.append(f"第{line_numbers[start]}行像是标题行，已跳过")
        start += 1
        if start >= 20:
            break
    if start == frame.height or filled[start] <= most:
        raise FileProblem("文件没有内容（缺少表头行）")
    header_line = line_numbers[start]
    headers = [h.lstrip("\ufeff").strip() for h in frame.row(start)]
    while headers and not headers[-1]:
        headers.pop()
    _check_headers(headers)
    rows = pl.Series("__line", line_numbers[start + 1 :], dtype=pl.Int64)
    data = frame.slice(start + 1).with_columns(rows)
    row_errors: list[RowError] = []
    if len(headers) < width:  # cells beyond the header's last named column
        extra = pl.any_horizontal(pl.col(frame.columns[len(headers):]) != "")
        for line in data.filter(extra)["__line"].to_list():
            row_errors.append(RowError(line, "", f"{width}个单元格",
                                       f"这一行有{width}个单元格，比表头的{len(headers)}列多：可能有未加引号的分隔符"))
        data = data.filter(~extra)
    body = data.select(*frame.columns[: len(headers)], "__line")
    body.columns = [*headers, "__line"]
    body = body.filter(pl.any_horizontal(pl.all().exclude("__line") != ""))
    if body.is_empty() and not row_errors:
        raise FileProblem(f"文件只有表头（第{header_line}行），没有数据行")
    return Table(headers, body.drop("__line"), body["__line"].to_list(), encoding, warnings, row_errors)


def _check_headers(headers: list[str]) -> None:
    seen = set()
    for i, h in enumerate(headers):
        if not h:
            raise FileProblem(f"表头第{i + 1}列为空：请为每一列填写字段名")
        if h in seen:
            raise FileProblem(f"表头“{h}”出现了两次")
        seen.add(h)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def _a1(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


def _read_xlsx(path: Path) -> Table:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        cells = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges or []
    except Exception as exc:  # calamine raises its own error types for broken archives
        raise FileProblem(f"无法读取 Excel 文件：{exc}") from None
    numbered = [(i, [_cell_text(v).strip() for v in r]) for i, r in enumerate(cells, 1)]
    table = _build(numbered, "xlsx")
    header_row = table.row_numbers[0] - 1 if table.row_numbers else len(cells)
    # A merged cell in the data leaves every row but the first without a value; filling it down
    # would be a guess, so the file is refused with the cells named.
    for (r0, c0), (r1, c1) in merged:
        if r1 + 1 >= header_row and (r0, c0) != (r1, c1):
            raise FileProblem(
                f"Excel 中有合并单元格 {_a1(r0, c0)}:{_a1(r1, c1)}：请取消合并，并在每一行填写完整的值"
            )
    return table


def _build(numbered: list[tuple[int, list[str]]], encoding: str) -> Table:
    warnings: list[str] = []
    # Skip leading blank rows and one-cell title rows ("2025年度登记信息") above the header; in a
    # file of one column, whose header is one cell too, only the blank rows.
    filled = [sum(1 for c in cells if c.strip()) for _, cells in numbered]
    most = 1 if max(filled, default=0) > 1 else 0
    start = 0
    while start < len(numbered) and filled[start] <= most:
        if filled[start]:
            warnings.append(f"第{numbered[start][0]}行像是标题行，已跳过")
        start += 1
    if start == len(numbered):
        raise FileProblem("文件没有内容（缺少表头行）")
    header_line, header_cells = numbered[start]
    headers = [h.strip().lstrip("\ufeff") for h in header_cells]
    while headers and not headers[-1]:
        headers.pop()
    width = len(headers)
    _check_headers(headers)
    columns: dict[str, list[str]] = {h: [] for h in headers}
    row_numbers: list[int] = []
    row_errors: list[RowError] = []
    for line, cells in numbered[start + 1 :]:
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue  # blank rows are layout, not data
        if len(cells) < width:  # only in CSV: an Excel row has every column of the sheet
            row_errors.append(RowError(line, "", f"{len(cells)}个单元格",
                                       f"这一行只有{len(cells)}个单元格，表头有{width}列：文件可能在这一行被截断，"
                                       "或行内少了分隔符；整行未导入"))
            continue
        if len(cells) > width and any(cells[width:]):
            row_errors.append(RowError(line, "", f"{len(cells)}个单元格",
                                       f"这一行有{len(cells)}个单元格，比表头的{width}列多：可能有未加引号的分隔符"))
            continue
        cells = cells[:width]
        for h, c in zip(headers, cells):
            columns[h].append(c)
        row_numbers.append(line)
    if not row_numbers and not row_errors:
        raise FileProblem(f"文件只有表头（第{header_line}行），没有数据行")
    cells = pl.DataFrame({h: pl.Series(h, v, dtype=pl.Utf8) for h, v in columns.items()})
    return Table(headers, cells, row_numbers, encoding, warnings, row_errors)
