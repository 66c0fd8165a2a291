"""What the checks read, below ``checks``: the analytical copy of each source table (Parquet
under ``$QIFU_DATA_DIR/analytics``, read from the database by ``analytics.sources``), their
stamps, each year's prepared context, and the batch plan compiled for it.

Checks read Parquet instead of the database: DuckDB scans it in milliseconds, and Spark (or a
real cluster through ``spark-submit``) reads the same files. The copy is refreshed after every
import that changes a table, and checked before every use: each table's stamp (row count and latest
``imported_at``) is compared with the database, and a stale table is exported again. Anything
that changes these tables outside ``qifu import`` must therefore set ``imported_at``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import duckdb
from django.db import connection

from qifu import config
from qifu.analytics import sources
from qifu.engine.files import own_tmp, write_whole

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
    """The table's row count and latest ``imported_at``: two statements, so that the latest is
    read off the end of its index (one statement scanned the table: 0.3 s of a policy match's
    start over a county of 240,000 entities, and again before every check)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {TABLES[name]}")
        (count,) = cur.fetchone()
        cur.execute(f"SELECT MAX(imported_at) FROM {TABLES[name]}")
        (latest,) = cur.fetchone()
    return [int(count), str(latest)]


def export(name: str) -> None:
    import pyarrow.parquet as pq  # here only: a reader of the copies (a policy match) need not import pyarrow

    table = sources.fetch_all(name)
    folder().mkdir(parents=True, exist_ok=True)
    tmp = own_tmp(path(name))
    from qifu.engine.rules import duckdb_engine

    pq.write_table(table, tmp, row_group_size=duckdb_engine.ROW_GROUP)
    tmp.replace(path(name))
    if name == "reminders":
        duckdb_engine.write_reminder_counts(path(name), path("reminder_counts"))
    _write_manifest(name, stamp(name))


def _write_manifest(key: str, value: list) -> None:
    manifest = _read_manifest()
    manifest[key] = value
    write_whole(_manifest_path(), json.dumps(manifest))


def refresh(name: str) -> None:
    """Export ``name`` after a committed change (called by imports outside a transaction), and
    prepare the latest year's context again if ``name`` is part of it."""
    if connection.in_atomic_block:
        return
    export(name)
    year = latest_report_year() if name in CONTEXT_INPUTS else None
    if year is not None:
        context(year)


def path(name: str) -> str:
    return str(folder() / f"{name}.parquet")


def is_current(name: str) -> bool:
    """Whether the copy of ``name`` holds what the database holds (without exporting it)."""
    return Path(path(name)).exists() and _read_manifest().get(name) == stamp(name)


# What the prepared context of a year is made of: every source but the reminder history,
# which changes every day of a season and is joined by each check itself.
CONTEXT_INPUTS = ("registry", "reports", "tax", "social", "shareholders")


def context_path(year: int) -> str:
    return str(folder() / f"context-{year}.duckdb")


def _context_stamp(year: int, manifest: dict) -> list:
    from qifu.engine.rules import context

    sql = context.base_context_sql(year) + "".join(context.aggregates_sql(year).values())
    return [manifest.get(n) for n in CONTEXT_INPUTS] + [hashlib.sha256(sql.encode()).hexdigest()[:16]]


def context(year: int, inputs_checked: bool = False) -> str | None:
    """The prepared context of ``year`` (a DuckDB file: the wide row of every current report but
    the reminder counts, and the peer statistics), built first if an input changed since;
    None inside a transaction. An import builds it for the latest year (``refresh``), so that
    a check only joins this season's reminders and runs the rules. ``inputs_checked``: the
    caller has just brought the inputs' copies up to date."""
    data = {n: path(n) for n in CONTEXT_INPUTS} if inputs_checked else paths(CONTEXT_INPUTS)
    if data is None:
        return None
    manifest = _read_manifest()
    key, stamp_now = f"context-{year}", _context_stamp(year, manifest)
    if not (Path(context_path(year)).exists() and manifest.get(key) == stamp_now):
        from qifu.engine.rules import duckdb_engine

        duckdb_engine.prepare(data, year, context_path(year))
        warm_plan(context_path(year))
        _write_manifest(key, stamp_now)
    return context_path(year)


def latest_report_year() -> int | None:
    with connection.cursor() as cur:
        cur.execute("SELECT MAX(report_year) FROM reports_annualreport")
        (year,) = cur.fetchone()
    return year


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


# --- the batch plan: the rule catalogue compiled for a prepared context, kept on disk ------


def carry(rules, context_columns: set[str]) -> tuple[str, ...]:
    """The context columns the messages quote, carried with the hits."""
    from qifu.engine.rules import findings as findings_mod

    return tuple(sorted(findings_mod.columns_needed(rules) & context_columns))


def plan_cache() -> Path:
    return config.cache_dir()


def warm_plan(prepared: str) -> None:
    """Compile the batch plan for a prepared context now (after an import prepared it), so
    that the first check finds it on disk instead of spending half a second on it. (The
    compiler, and sqlglot with it, are imported here: most commands that read the analytical
    copies compile nothing.)"""
    from qifu.engine.rules.compiler import flags_and_values_sql
    from qifu.engine.rules.context import REMINDER_COLUMNS
    from qifu.engine.rules.loader import load_rules

    con = duckdb.connect(prepared, read_only=True)
    try:
        columns = {r[0] for r in con.execute("DESCRIBE base").fetchall()} | set(REMINDER_COLUMNS)
    finally:
        con.close()
    rules = load_rules()
    flags_and_values_sql(rules, "duckdb", cache_dir=plan_cache(), carry=carry(rules, columns))
