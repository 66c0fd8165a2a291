"""The analytical copy: each source table as Parquet under ``$QIFU_DATA_DIR/analytics``.

Checks read Parquet instead of the database: DuckDB scans it in milliseconds, and Spark (or a
real cluster through ``spark-submit``) reads the same files. The copy is refreshed after every
import that changes a table, and checked before every use: each table's stamp (row count and latest
``imported_at``) is compared with the database, and a stale table is exported again. Anything
that changes these tables outside ``qifu import`` must therefore set ``imported_at``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
from django.db import connection

from qifu import config
from qifu.checks import sources

TABLES = {
    "registry": "registry_entity",
    "reports": "reports_annualreport",
    "tax": "sources_taxrecord",
    "social": "sources_socialrecord",
    "shareholders": "reports_shareholder",
    "reminders": "reminders_reminderrecord",
}


def folder() -> Path:
    return config.data_dir() / "analytics"


def _manifest_path() -> Path:
    return folder() / "manifest.json"


def _read_manifest() -> dict:
    try:
        return json.loads(_manifest_path().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def stamp(name: str) -> list:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), MAX(imported_at) FROM {TABLES[name]}")
        count, latest = cur.fetchone()
    return [int(count), str(latest)]


def export(name: str) -> None:
    table = sources.fetch_all(name)
    folder().mkdir(parents=True, exist_ok=True)
    tmp = folder() / f"{name}.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(path(name))
    manifest = _read_manifest()
    manifest[name] = stamp(name)
    _manifest_path().write_text(json.dumps(manifest), encoding="utf-8")


def refresh(name: str) -> None:
    """Export ``name`` after a committed change (called by imports outside a transaction)."""
    if not connection.in_atomic_block:
        export(name)


def path(name: str) -> str:
    return str(folder() / f"{name}.parquet")


def is_current(name: str) -> bool:
    """Whether the copy of ``name`` holds what the database holds (without exporting it)."""
    return Path(path(name)).exists() and _read_manifest().get(name) == stamp(name)


def paths(names: tuple[str, ...] | None = None, max_age: float = 0.0) -> dict[str, str] | None:
    """Parquet paths of every table (or of ``names``), exporting stale ones first; None inside
    a transaction (uncommitted rows are not in the copy, so callers read the database instead).
    With ``max_age``, a table checked in this process less than that many seconds ago is not
    checked again (the dashboard: counting 1.3 million reminders on each view costs more than
    the view)."""
    if connection.in_atomic_block:
        return None
    names = names or tuple(TABLES)
    now = time.monotonic()
    for name in names:
        if max_age and _checked.get((str(folder()), name), -1e9) > now - max_age:
            continue
        if not is_current(name):
            export(name)
        _checked[(str(folder()), name)] = now
    return {name: path(name) for name in names}


_checked: dict[tuple[str, str], float] = {}
