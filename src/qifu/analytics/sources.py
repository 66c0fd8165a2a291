"""Move the rows a check needs from the database into Arrow tables, fast.

DuckDB cannot read SQLite offline (its sqlite extension is downloaded at run time), so the
rows travel as Arrow. On PostgreSQL the ADBC driver reads straight into Arrow; on SQLite, and
inside an open transaction (tests, or a caller's atomic block), rows are read through Django's
own connection, so uncommitted data is seen and only one SQLite library touches the file.
Both paths run the same SQL. Times are local (Asia/Shanghai), as the bureau's calendar is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection

from qifu.engine.contract import REPORTS, T

if TYPE_CHECKING:
    import pyarrow as pa

NUMERIC = [f.name for f in REPORTS.fields if f.type in (T.MONEY, T.INT)]
OTHER = [f.name for f in REPORTS.fields if f.type not in (T.MONEY, T.INT) and f.name not in ("uscc", "report_year", "filed_at")]


def _real(col: str, pg: bool, alias: str | None = None) -> str:
    return f"CAST({col} AS {'double precision' if pg else 'REAL'}) AS {alias or col}"


def _local(col: str, pg: bool) -> str:
    return f"({col} AT TIME ZONE 'Asia/Shanghai') AS {col}" if pg else f"datetime({col}, '+8 hours') AS {col}"


def queries(year: int | None, pg: bool) -> dict[str, str]:
    """The source relations; with a year, only what checking that year needs."""
    years = f"({year}, {year - 1})" if year is not None else None
    q = {
        "reports": f"""SELECT uscc, report_year, revision, {_local('filed_at', pg)},
                {', '.join(OTHER)}, {', '.join(_real(c, pg) for c in NUMERIC)}
            FROM reports_annualreport WHERE is_current{f" AND report_year IN {years}" if years else ""}""",
        "registry": f"""SELECT e.uscc, e.name, e.entity_type, e.legal_form, e.industry_code, t.name AS town, e.address,
                {_real('e.registered_capital', pg, 'registered_capital')},
                e.established_on, e.status, e.legal_rep, e.phone, e.email
            FROM registry_entity e JOIN registry_township t ON t.code = e.town_id""",
        "tax": f"""SELECT uscc, year, {_real('declared_sales', pg)}, {_real('tax_paid', pg)}
            FROM sources_taxrecord{f" WHERE year IN {years}" if years else ""}""",
        "social": f"""SELECT uscc, year, {_real('insured_count', pg)}, {_real('arrears', pg)}
            FROM sources_socialrecord{f" WHERE year IN {years}" if years else ""}""",
        "shareholders": f"""SELECT uscc, report_year, shareholder_name, {_real('subscribed_amount', pg)},
                subscribed_due_date, {_real('paid_in_amount', pg)}, paid_in_date, paid_in_form
            FROM reports_shareholder{f" WHERE report_year IN {years}" if years else ""}""",
        "reminders": f"""SELECT uscc, {_local('sent_at', pg)}, channel, purpose, status FROM reminders_reminderrecord""",
    }
    if year is not None:
        # the filing season after the report year, local time (UTC+8)
        q["reminders"] += (f" WHERE sent_at >= {'TIMESTAMPTZ ' if pg else ''}'{year}-12-31 16:00:00'"
                           f" AND sent_at < {'TIMESTAMPTZ ' if pg else ''}'{year + 1}-12-31 16:00:00'")
    return q


def _adbc_connection():
    """An ADBC connection for PostgreSQL. Never for SQLite: the ADBC driver carries its own copy
    of the SQLite library, and two copies in one process release each other's POSIX file locks
    on the same database (sqlite.org, "How To Corrupt An SQLite Database File", §2.2.1); seen
    here as "disk I/O error" in the web server after an import."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        user = settings.get("USER") or ""
        password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        host = settings.get("HOST") or "localhost"
        port = f":{settings['PORT']}" if settings.get("PORT") else ""
        return adbc.connect(f"postgresql://{auth}{host}{port}/{settings['NAME']}")
    return None


SORT = {"reports": "report_year, uscc", "tax": "year, uscc", "social": "year, uscc", "shareholders": "report_year, uscc",
        "reminders": "sent_at", "registry": "uscc"}


def fetch_all(name: str) -> pa.Table:
    """One whole source table (for the analytical copy), sorted so that Parquet row-group
    statistics let a reader skip the years it does not need."""
    return _run({name: queries(None, connection.vendor == "postgresql")[name] + f" ORDER BY {SORT[name]}"})[name]


def fetch(year: int, names: tuple[str, ...] | None = None) -> dict[str, pa.Table]:
    """The rows checking ``year`` needs (of every relation, or of ``names``), straight from the
    database."""
    sql = queries(year, connection.vendor == "postgresql")
    return _run({name: q for name, q in sql.items() if names is None or name in names})


def run(sql: dict[str, str]) -> dict[str, pa.Table]:
    """Each query's rows as an Arrow table (ADBC on PostgreSQL, Django's connection otherwise)."""
    return _run(sql)


def _run(sql: dict[str, str]) -> dict[str, pa.Table]:
    import pyarrow as pa  # here only: a policy match that reads the Parquet copies never needs it

    adbc = None if connection.in_atomic_block else _adbc_connection()
    out: dict[str, pa.Table] = {}
    if adbc is not None:
        with adbc:
            for name, q in sql.items():
                cur = adbc.cursor()
                cur.execute(q)
                out[name] = cur.fetch_arrow_table()
                cur.close()
        return out
    with connection.cursor() as cur:
        for name, q in sql.items():
            cur.execute(q)
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
            out[name] = pa.table({c: _typed(c, pa.array(list(v))) for c, v in zip(cols, zip(*rows))}) if rows else pa.table(
                {c: _typed(c, pa.array([], type=pa.string())) for c in cols}
            )
    return out


def _typed(column: str, values: pa.Array) -> pa.Array:
    """SQLite hands times over as text; the copy stores them as timestamps, so that a reader's
    filter on a season can skip the row groups of other seasons."""
    import pyarrow as pa

    if column in ("filed_at", "sent_at") and pa.types.is_string(values.type):
        return values.cast(pa.timestamp("us"))
    return values
