"""A workbook or CSV that staff filled in and uploaded: kept in a temporary file while it is
read (the readers take a path, ``engine.reading``), and the rows it was refused for, in one
message."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SHOWN = 10  # problems named in the message; the rest are counted


@contextmanager
def as_file(upload, stem: str) -> Iterator[Path]:
    """The upload in a temporary folder as ``stem`` with the upload's own suffix (the reader
    tells XLSX from CSV by it), removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{stem}{Path(upload.name).suffix[:8]}"
        path.write_bytes(upload.read())
        yield path


def refused(what: str, verb: str, problems: list[tuple[int, str, str, str]]) -> str:
    """An all-or-nothing upload refused, each problem by row, column, value and reason:
    送达清单有 2 处问题，未登记任何一行：第 3 行“送达日期”（2026-13-01）：…"""
    named = "；".join(f"第 {row} 行“{col}”{f'（{val}）' if val else ''}：{why}" for row, col, val, why in problems[:SHOWN])
    return f"{what}有 {len(problems)} 处问题，未{verb}任何一行：{named}" + ("……" if len(problems) > SHOWN else "")
