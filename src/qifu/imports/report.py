"""The machine-readable error report of a refused import (CSV, UTF-8 with BOM for Excel)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from qifu import config
from qifu.engine.contract import KINDS
from qifu.engine.errors import RowError

COLUMNS = ("row", "field", "label", "value", "reason")


def write_error_report(kind: str, source: Path, errors: list[RowError], target: Path | None = None) -> Path:
    if target is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = config.data_dir() / "import-errors" / f"{kind}-{Path(source).stem}-{stamp}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    spec = KINDS[kind]
    with target.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for e in errors:
            label = spec.field(e.field).label if e.field in spec.names else ""
            out.writerow([e.row, e.field, label, e.value, e.reason])
    return target
