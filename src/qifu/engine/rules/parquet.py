"""Contract files (CSV) to the six source relations as typed Parquet, without a database.

For a national batch that never passes through a county's database, for the Spark and
DuckDB tests, and for the benchmarks. Reports are taken as current revision 1.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from qifu.engine.rules.context import SOURCES

CSV_NAMES = {"registry": "registry", "reports": "reports", "tax": "tax", "social": "social",
             "shareholders": "shareholders", "reminders": "reminders"}


def _expr(column: str, typ: str, available: set[str]) -> str:
    if column not in available:
        if column == "revision":
            return "1 AS revision"
        return f"CAST(NULL AS {typ}) AS {column}"
    if typ == "BOOLEAN":
        return f"CASE lower(CAST({column} AS VARCHAR)) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END AS {column}"
    return f"CAST(NULLIF(CAST({column} AS VARCHAR), '') AS {typ}) AS {column}"


def contract_to_parquet(folder: str | Path, out: str | Path) -> dict[str, str]:
    folder, out = Path(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = {}
    for name, columns in SOURCES.items():
        src = folder / f"{CSV_NAMES[name]}.csv"
        con.execute(f"CREATE OR REPLACE VIEW src AS SELECT * FROM read_csv('{src}', all_varchar=true, header=true)")
        available = {r[0] for r in con.execute("DESCRIBE src").fetchall()}
        select = ", ".join(_expr(c, t, available) for c, t in columns.items())
        path = out / f"{name}.parquet"
        con.execute(f"COPY (SELECT {select} FROM src) TO '{path}' (FORMAT parquet)")
        paths[name] = str(path)
    con.close()
    return paths
