"""Excel workbooks for staff. Every export writes its rows through ``append``, so that no text
that came from a filer or a source file (a name beginning with "=", "+", "-" or "@") becomes a
live formula when the file is opened: such a cell is written as text, with Excel's own
"quote prefix" so that editing it keeps it text. Django-free."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # openpyxl is imported when a workbook is made: a CSV or JSON export never loads it
    from openpyxl import Workbook

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# called once for each row an export writes, when someone follows it (an export made in the
# background shows how far it has got: ``counting``)
_row_written: ContextVar[Callable[[], None] | None] = ContextVar("row_written", default=None)


@contextmanager
def counting(tick: Callable[[], None]):
    """Within the block, ``tick()`` is called for every row ``append`` or ``csv_chunks`` writes."""
    token = _row_written.set(tick)
    try:
        yield
    finally:
        _row_written.reset(token)


def workbook() -> Workbook:
    """A streaming workbook (rows are written as they come, not held in memory)."""
    from openpyxl import Workbook

    return Workbook(write_only=True)


def text_cell(ws, value: str):
    from openpyxl.cell import Cell, WriteOnlyCell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

    cell = WriteOnlyCell(ws, value) if isinstance(ws, WriteOnlyWorksheet) else Cell(ws, value=value)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell


def safe(ws, value):
    return text_cell(ws, value) if isinstance(value, str) and value.startswith(FORMULA_START) else value


def append(ws, values: Iterable) -> None:
    ws.append([safe(ws, v) for v in values])
    if (tick := _row_written.get()) is not None:
        tick()


def csv_chunks(rows: Iterable[Iterable], rows_per_chunk: int = 2000) -> Iterator[str]:
    """Rows as CSV that Excel opens as it is (UTF-8 with a byte-order mark), a piece at a time
    (the mark, then ``rows_per_chunk`` rows a piece), read from ``rows`` as they come: a county's
    list goes out without being held whole in memory. A text beginning like a formula gets a
    leading apostrophe, so that Excel shows it and never runs it; dates are written as
    2026-03-01."""
    import csv
    import datetime as dt
    import io

    buf = io.StringIO()
    buf.write("\ufeff")
    out = csv.writer(buf, lineterminator="\r\n")
    tick = _row_written.get() or (lambda: None)
    for k, row in enumerate(rows, 1):
        tick()
        out.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date)
                      else "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in row])
        if k % rows_per_chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def write_frame(frame, path, sheet: str = "数据", stamp=None) -> None:
    """A table (a polars frame) as CSV, XLSX or JSON (an array of objects) by the file's
    extension: the contract's files out (§2). With ``stamp`` (a datetime), an XLSX file carries
    that time instead of now, so that the same table always gives the same bytes."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.write_csv(path)
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dicts(), ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    elif suffix == ".xlsx":
        wb = workbook()
        ws = wb.create_sheet(sheet)
        ws.append(list(frame.columns))
        for row in frame.iter_rows():
            append(ws, row)
        wb.save(path)
        if stamp is not None:
            reproducible(path, stamp)
    else:
        raise ValueError(f"输出文件扩展名应为 .csv、.xlsx 或 .json，而不是 {path.suffix or '（无）'}")


def reproducible(path, stamp) -> None:
    """Rewrite a saved workbook with ``stamp`` as every entry's time and as the document's
    created and modified times (openpyxl writes the wall clock into both)."""
    import datetime as dt
    import re
    import zipfile
    from pathlib import Path

    path = Path(path)
    when = stamp if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
    iso = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info.filename)) for info in z.infolist()]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>" + iso.encode() + rb"\g<3>", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            out.writestr(fixed, data)
    tmp.replace(path)
