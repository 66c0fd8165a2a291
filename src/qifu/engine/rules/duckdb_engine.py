"""The batch engine: DuckDB over Arrow tables (a county or a province on one machine)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from qifu.engine.files import own_tmp
from qifu.engine.rules.compiler import flags_and_values_sql
from qifu.engine.rules.context import (
    SOURCES,
    aggregates_sql,
    base_context_sql,
    context_sql,
    reminder_counts_sql,
    with_reminders,
)
from qifu.engine.rules.model import Rule

log = logging.getLogger(__name__)

# Rows per Parquet row group written here and by the analytical copy: small enough that a
# filter on a year or a season skips most of a sorted table, large enough to scan at full
# speed (DuckDB's own size).
ROW_GROUP = 122_880


def typed_columns(name: str) -> str:
    """The select list that gives source relation ``name`` its engine types."""
    return ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in SOURCES[name].items())


def empty_relation(name: str) -> str:
    """A query for source relation ``name`` with its columns and no rows."""
    return f"SELECT {', '.join(f'CAST(NULL AS {t}) AS {c}' for c, t in SOURCES[name].items())} WHERE FALSE"


def build_aggregates(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, float]:
    """The county aggregates of ``year`` as temporary tables; the seconds each took."""
    timings = {}
    for name, sql in aggregates_sql(year).items():
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        timings[name] = time.perf_counter() - t
    return timings


def year_filters(year: int) -> dict[str, str]:
    """What checking ``year`` reads of each source: that year, the one before, and the filing
    season that followed it."""
    return {
        "reports": f"report_year IN ({year}, {year - 1})",
        "tax": f"year IN ({year}, {year - 1})",
        "social": f"year IN ({year}, {year - 1})",
        "shareholders": f"report_year IN ({year}, {year - 1})",
        "reminders": f"sent_at >= TIMESTAMP '{year + 1}-01-01' AND sent_at < TIMESTAMP '{year + 2}-01-01'",
    }


def connect(sources: dict[str, pa.Table | pl.DataFrame | str], threads: int | None = None,
            year: int | None = None) -> duckdb.DuckDBPyConnection:
    """A connection with the six source relations, typed. A source may be an Arrow table, a
    polars frame or a Parquet path (glob). With ``year``, each relation is read once, filtered
    to what checking that year needs, into a temporary table; otherwise it is a view."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name in SOURCES:
        src = sources.get(name)
        raw = f"{name}__raw"
        if src is None:
            con.execute(f"CREATE VIEW {name} AS {empty_relation(name)}")
            continue
        if isinstance(src, str):
            con.execute(f"CREATE VIEW {raw} AS SELECT * FROM read_parquet('{src}')")
        else:
            con.register(raw, src.to_arrow() if isinstance(src, pl.DataFrame) else src)
        cols = typed_columns(name)
        if year is None:
            con.execute(f"CREATE VIEW {name} AS SELECT {cols} FROM {raw}")
        else:
            where = year_filters(year).get(name, "TRUE")
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM (SELECT {cols} FROM {raw}) WHERE {where}")
    return con


def build_context(con: duckdb.DuckDBPyConnection, year: int) -> None:
    build_aggregates(con, year)
    con.execute(f"CREATE OR REPLACE TEMP TABLE ctx AS {context_sql(year)}")


def run(con: duckdb.DuckDBPyConnection, year: int, rules: list[Rule] | tuple[Rule, ...]) -> pl.DataFrame:
    """Hits: (uscc, report_year, rule_key, v1, v2, v3, suggestion), one row per finding."""
    build_context(con, year)
    return evaluate(con, rules)


def evaluate(con: duckdb.DuckDBPyConnection, rules: list[Rule] | tuple[Rule, ...],
             cache_dir: str | Path | None = None, carry: tuple[str, ...] = ()) -> pl.DataFrame:
    """The hits of ``rules`` over the relation ``ctx`` of ``con``, with the context columns
    named in ``carry``."""
    flags_sql, values_sql = flags_and_values_sql(rules, "duckdb", cache_dir=cache_dir, carry=carry)
    con.execute(f"CREATE OR REPLACE TEMP TABLE flags AS {flags_sql}")
    return con.sql(values_sql).pl()


# --- the prepared context: what only an import changes, kept between checks ---------------

PREPARED_TABLES = ("base", "agg_peer", "agg_industry")


def prepare(sources: dict[str, pa.Table | pl.DataFrame | str], year: int, target: str | Path) -> None:
    """Write the context of ``year`` without the reminder counts, and the peer and industry
    statistics, to the DuckDB database ``target`` (written beside it, then renamed into place,
    so that a check reading the old file is never disturbed)."""
    target = Path(target)
    tmp = own_tmp(target)
    tmp.unlink(missing_ok=True)
    con = connect({k: v for k, v in sources.items() if k != "reminders"}, year=year)
    build_aggregates(con, year)
    con.execute(f"ATTACH '{tmp}' AS prepared")
    con.execute(f"CREATE TABLE prepared.base AS {base_context_sql(year)}")
    for name in PREPARED_TABLES[1:]:
        con.execute(f"CREATE TABLE prepared.{name} AS SELECT * FROM {name}")
    con.execute("DETACH prepared")
    con.close()
    os.replace(tmp, target)


def write_reminder_counts(reminders: str | Path, target: str | Path) -> None:
    """Each season's reminder counts per entity (``reminder_counts_sql`` for every year), from
    the copy of the reminder history, as Parquet sorted by report year: a check reads its
    season's rows instead of counting the history."""
    target = Path(target)
    tmp = own_tmp(target)
    con = connect({"reminders": str(reminders)})
    con.execute(f"COPY (SELECT * FROM ({reminder_counts_sql(None)}) ORDER BY report_year, uscc) TO '{tmp}' "
                f"(FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})")
    con.close()
    os.replace(tmp, target)


def connect_prepared(prepared: str | Path, year: int, reminders: pa.Table | pl.DataFrame | str | None = None,
                     reminder_counts: str | Path | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A connection whose ``ctx`` is the prepared context of ``year`` with this season's
    reminder counts: read from ``reminder_counts`` (``write_reminder_counts``) when given,
    otherwise counted now from ``reminders`` (a Parquet path or a table; none: no contacts)."""
    con = connect({"reminders": reminders} if reminders is not None else {}, threads=threads)
    con.execute(f"ATTACH '{prepared}' AS prepared (READ_ONLY)")
    for name in PREPARED_TABLES[1:]:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM prepared.{name}")
    if reminder_counts is not None:
        con.execute(f"CREATE TEMP TABLE rem AS SELECT * EXCLUDE (report_year) FROM read_parquet('{reminder_counts}') "
                    f"WHERE report_year = {int(year)}")
    else:
        con.execute(f"CREATE TEMP TABLE rem AS {reminder_counts_sql(year)}")
    con.execute(f"CREATE VIEW ctx AS {with_reminders('prepared.base', 'rem')}")
    return con


def _national_connection(workdir: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{workdir / 'spill'}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def prepare_bucketed(paths: dict[str, str], year: int, buckets: int, workdir: str | Path,
                     memory_limit: str = "6GB") -> dict[str, float]:
    """National scale on one machine, in bounded memory: the prepared context, in buckets.

    County aggregates are computed once over everything; then each source but the reminder
    history is written once, filtered to the year, into ``buckets`` Parquet partitions by hash
    of the credit code; then each bucket's context (without the reminder counts, like
    ``prepare``) is written to ``workdir/context/bucket-<p>.parquet``, and the peer and industry
    statistics beside it. Memory holds one bucket, not the country. Returns the phases' times.
    """
    workdir = Path(workdir)
    for sub in ("sources", "context"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    con = _national_connection(workdir, memory_limit)
    filters = year_filters(year)
    inputs = [name for name in SOURCES if name != "reminders"]
    for name in inputs:
        con.execute(f"CREATE VIEW all_{name} AS SELECT * FROM (SELECT {typed_columns(name)} "
                    f"FROM read_parquet('{paths[name]}')) WHERE {filters.get(name, 'TRUE')}")
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM all_{name}")
    timings = build_aggregates(con, year)
    for name in PREPARED_TABLES[1:]:
        con.execute(f"COPY {name} TO '{workdir / 'context' / name}.parquet' (FORMAT parquet)")
    for name in inputs:
        t = time.perf_counter()
        con.execute(f"COPY (SELECT *, hash(uscc) % {buckets} AS bucket FROM all_{name}) TO '{workdir / 'sources' / name}' "
                    f"(FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE)")
        timings[f"bucket {name}"] = time.perf_counter() - t
    t = time.perf_counter()
    for p in range(buckets):
        for name in inputs:
            files = workdir / "sources" / name / f"bucket={p}"
            if any(files.glob("*.parquet")):
                con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * "
                            f"FROM read_parquet('{files}/*.parquet', hive_partitioning = false)")
            else:
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {empty_relation(name)}")
        con.execute(f"COPY ({base_context_sql(year)}) TO '{workdir / 'context'}/bucket-{p}.parquet' "
                    f"(FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})")
    timings["context buckets"] = time.perf_counter() - t
    con.close()
    shutil.rmtree(workdir / "sources", ignore_errors=True)
    log.info("national preparation: %s", {k: round(v, 2) for k, v in timings.items()})
    return timings


def evaluate_bucketed(workdir: str | Path, year: int, rules, reminders: str | None, carry: tuple[str, ...] = (),
                      memory_limit: str = "6GB") -> tuple[pl.DataFrame, dict[str, float]]:
    """The rules over a prepared national context (``prepare_bucketed``), bucket by bucket,
    with this season's reminder counts from ``reminders`` (Parquet of the reminder history).
    Returns the hits, with the context columns named in ``carry``, and the phases' times."""
    workdir = Path(workdir)
    con = _national_connection(workdir, memory_limit)
    buckets = sorted((workdir / "context").glob("bucket-*.parquet"), key=lambda f: int(f.stem.split("-")[1]))
    timings = {}
    t = time.perf_counter()
    if reminders is not None:
        con.execute(f"CREATE VIEW reminders AS SELECT {typed_columns('reminders')} FROM read_parquet('{reminders}')")
    else:
        con.execute(f"CREATE VIEW reminders AS {empty_relation('reminders')}")
    con.execute(f"CREATE TEMP TABLE rem_all AS SELECT *, hash(uscc) % {len(buckets)} AS bucket "
                f"FROM ({reminder_counts_sql(year)})")
    timings["reminder counts"] = time.perf_counter() - t
    flags_sql, values_sql = flags_and_values_sql(rules, "duckdb", carry=carry)
    t = time.perf_counter()
    hits = []
    for p, path in enumerate(buckets):
        con.execute(f"CREATE OR REPLACE TEMP TABLE rem AS SELECT * EXCLUDE (bucket) FROM rem_all WHERE bucket = {p}")
        bucket = f"read_parquet('{path}')"
        con.execute(f"CREATE OR REPLACE VIEW ctx AS {with_reminders(bucket, 'rem')}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE flags AS {flags_sql}")
        hits.append(con.sql(values_sql).pl())
    timings["rules"] = time.perf_counter() - t
    con.close()
    log.info("national check: %s", {k: round(v, 2) for k, v in timings.items()})
    return pl.concat(hits), timings


def run_bucketed(paths: dict[str, str], year: int, rules, buckets: int, workdir: str | Path,
                 columns: list[str], memory_limit: str = "6GB") -> tuple[pl.DataFrame, pl.DataFrame]:
    """``prepare_bucketed`` then ``evaluate_bucketed``: the hits, and the named context columns
    of the entities with hits."""
    prepare_bucketed(paths, year, buckets, workdir, memory_limit)
    carry = tuple(c for c in columns if c not in ("uscc", "report_year"))
    found, _ = evaluate_bucketed(workdir, year, rules, paths.get("reminders"), carry, memory_limit)
    hits = found.select("uscc", "report_year", "rule_key", "v1", "v2", "v3", "suggestion")
    rows = found.select("uscc", *[c for c in columns if c != "uscc" and c in found.columns]).unique("uscc")
    return hits, rows
