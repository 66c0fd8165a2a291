"""Bulk writes for imports: executemany on SQLite, COPY on PostgreSQL.

The ORM's bulk_create builds a model instance per row; at 240,000 rows per file that is
most of the import time. These helpers take a polars frame whose columns are database
column names and send it in the backend's fastest form. They run inside the caller's
transaction, so an import stays all-or-nothing.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import polars as pl
from django.db import connection, transaction

CHUNK = 20_000
# SQLite: values bound to one statement (SQLite before 3.32 allowed 999); rows a statement for
# a caller that measured a gain (``insert``)
MAX_VALUES = 999
MANY_ROWS = 50
# SQLite: an insert of at least this many rows, and of at least as many as the table holds,
# builds the table's plain indexes after the rows instead of row by row (``_indexes_built_after``)
REBUILD_AT = 10_000


def _to_db_types(frame: pl.DataFrame, postgres: bool) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Decimal):
            exprs.append(col.cast(pl.Utf8))
        elif dtype == pl.Date:
            exprs.append(col.dt.strftime("%Y-%m-%d"))
        elif isinstance(dtype, pl.Datetime) and postgres:
            exprs.append(col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00"))
        elif isinstance(dtype, pl.Datetime):
            # Exactly as Django's SQLite backend writes them (str() of a naive UTC datetime), so
            # that range lookups, which compare text, see the same value.
            utc = col.dt.convert_time_zone("UTC")
            exprs.append(
                pl.when(utc.dt.microsecond() == 0)
                .then(utc.dt.strftime("%Y-%m-%d %H:%M:%S"))
                .otherwise(utc.dt.strftime("%Y-%m-%d %H:%M:%S%.6f"))
                .alias(name)
            )
        elif dtype == pl.Boolean and not postgres:
            exprs.append(col.cast(pl.Int8))
        else:
            exprs.append(col)
    return frame.select(exprs)


def insert(table: str, frame: pl.DataFrame, progress: Callable[[int], None] | None = None,
           rows_per_statement: int = 1) -> None:
    """``frame``'s rows into ``table``. On SQLite, ``rows_per_statement`` rows go into one
    INSERT (as many as SQLite binds values for): measured, a fifth faster for rows written in
    their indexes' order with few values that differ (a match run's matches and messages), but
    two fifths slower for the registry's import (wide rows in a file's order); so only where a
    caller measured it."""
    if frame.is_empty():
        return
    postgres = connection.vendor == "postgresql"
    frame = _to_db_types(frame, postgres)
    if postgres:
        cols = ", ".join(connection.ops.quote_name(c) for c in frame.columns)
        for start in range(0, frame.height, CHUNK):
            _copy(table, cols, frame.slice(start, CHUNK))
            if progress:
                progress(min(CHUNK, frame.height - start))
        return
    # A column with one value in every row (a run's time, a status, a policy's version) is
    # written into the statement once instead of bound for each row: a first policy match stores
    # 165,349 rows of 20 columns, 12 of them the same in every row, and binding them took a
    # fifth of the insert.
    same = _same_values(frame)
    varying = [c for c in frame.columns if c not in same]
    cols = ", ".join(connection.ops.quote_name(c) for c in [*varying, *same])
    literals = list(same.values())
    one = f"INSERT INTO {table} ({cols}) VALUES (" + ", ".join(["%s"] * len(varying) + literals) + ")"
    per = max(1, min(rows_per_statement, MAX_VALUES // len(varying)))
    # several rows a statement: numbered placeholders column by column, so that a statement's
    # values are slices of each column's list, not a tuple made per row and taken apart again
    # (on a first policy match that was a third of the time spent in Python)
    many = f"INSERT INTO {table} ({cols}) VALUES " + ", ".join(
        "(" + ", ".join([f"?{j * per + r + 1}" for j in range(len(varying))] + literals) + ")" for r in range(per))
    with _indexes_built_after(table, frame.height):
        for start in range(0, frame.height, CHUNK):
            columns = [s.to_list() for s in frame.slice(start, CHUNK).select(varying).get_columns()]
            n = len(columns[0])
            whole = n - n % per if per > 1 else 0
            with connection.cursor() as cur:
                if whole:
                    cur.executemany(many, [_column_by_column(columns, i, per) for i in range(0, whole, per)])
                if whole < n:
                    cur.executemany(one, list(zip(*(c[whole:] for c in columns), strict=True)))
            if progress:
                progress(n)


def _column_by_column(columns: list[list], start: int, rows: int) -> list:
    """The values of ``rows`` rows from ``start``, the first column's, then the second's..."""
    values: list = []
    for column in columns:
        values += column[start:start + rows]
    return values


@contextmanager
def _indexes_built_after(table: str, rows: int) -> Iterator[None]:
    """On SQLite, inside a transaction, for an insert of ``rows`` rows that at least doubles
    ``table`` (and of ``REBUILD_AT`` rows or more): the table's plain indexes dropped before the
    rows go in and created again, from their own statements, after them. SQLite sorts the whole
    table once for each instead of placing every row in B-trees of another order; measured on a
    first policy match (165,349 rows into an empty table, two such indexes), 0.7 s of inserting
    saved for 0.17 s of building. Unique indexes and the primary key stay, so a duplicate is
    refused on its row as before. In a savepoint: a failed insert leaves the indexes as they
    were. Other connections read the table as it was until the commit."""
    if connection.vendor != "sqlite" or rows < REBUILD_AT or not connection.in_atomic_block:
        yield
        return
    q = connection.ops.quote_name
    with connection.cursor() as cur:
        cur.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(table)}")  # at least the rows held, at once
        if cur.fetchone()[0] > rows:
            indexes = []
        else:
            cur.execute("SELECT name FROM pragma_index_list(%s) WHERE origin = 'c' AND NOT \"unique\"", [table])
            names = [name for (name,) in cur.fetchall()]
            cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s", [table])
            indexes = [(name, sql) for name, sql in cur.fetchall() if name in names]
    if not indexes:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cur:
            for name, _ in indexes:
                cur.execute(f"DROP INDEX {q(name)}")
        yield
        with connection.cursor() as cur:
            for _, sql in indexes:
                cur.execute(sql.replace("%", "%%"))


def _same_values(frame: pl.DataFrame) -> dict[str, str]:
    """The columns of ``frame`` (in database types) that hold one value in every row, each as
    an SQL literal that SQLite itself quoted, ready for a statement Django passes on. Never
    every column (a statement needs one value to bind), and never a float (SQLite's ``quote``
    keeps 15 digits)."""
    if frame.height < 2:
        return {}
    found = {}
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        if dtype.is_float() or len(found) == frame.width - 1:
            continue
        if column.null_count() == frame.height:
            found[name] = None
        elif column.null_count() == 0 and (column == column.first()).all():
            found[name] = column.first()
    if not found:
        return {}
    with connection.cursor() as cur:
        cur.execute("SELECT " + ", ".join(["quote(%s)"] * len(found)), list(found.values()))
        # Django turns %s into SQLite's ? and %% into %: a literal's own % is doubled
        return {name: literal.replace("%", "%%") for name, literal in zip(found, cur.fetchone(), strict=True)}


def _copy(table: str, cols: str, chunk: pl.DataFrame) -> None:
    buf = io.BytesIO()
    chunk.write_csv(buf, include_header=False, null_value="")
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg cursor under Django's wrapper
        with raw.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buf.getvalue())


def update(
    table: str,
    frame: pl.DataFrame,
    key: list[str],
    progress: Callable[[int], None] | None = None,
) -> None:
    """UPDATE table SET <non-key columns> for each row, matched on the key columns."""
    if frame.is_empty():
        return
    postgres = connection.vendor == "postgresql"
    q = connection.ops.quote_name
    sets = [c for c in frame.columns if c not in key]
    frame = _to_db_types(frame.select([*sets, *key]), postgres)
    if postgres:
        temp = f"_upd_{table}"
        with connection.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT {', '.join(q(c) for c in frame.columns)} "
                f"FROM {table} WITH NO DATA"
            )
        for start in range(0, frame.height, CHUNK):
            chunk = frame.slice(start, CHUNK)
            _copy(temp, ", ".join(q(c) for c in frame.columns), chunk)
            if progress:
                progress(chunk.height)
        assign = ", ".join(f"{q(c)} = u.{q(c)}" for c in sets)
        match = " AND ".join(f"t.{q(c)} = u.{q(c)}" for c in key)
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {table} AS t SET {assign} FROM {temp} AS u WHERE {match}")
            cur.execute(f"DROP TABLE {temp}")
        return
    assign = ", ".join(f"{q(c)} = %s" for c in sets)
    match = " AND ".join(f"{q(c)} = %s" for c in key)
    for start in range(0, frame.height, CHUNK):
        chunk = frame.slice(start, CHUNK)
        with connection.cursor() as cur:
            cur.executemany(f"UPDATE {table} SET {assign} WHERE {match}", chunk.rows())
        if progress:
            progress(chunk.height)
