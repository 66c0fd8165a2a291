"""`qifu.bulk.insert`: what it stores is what the frame held, on SQLite (where a column with one
value in every row is written into the statement once, not bound per row) and PostgreSQL (COPY)."""

import datetime as dt

import polars as pl
import pytest
from django.db import connection
from django.utils import timezone

from qifu import bulk
from qifu.engine import uscc as codes
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage

pytestmark = pytest.mark.django_db

UTC = pl.Datetime("us", "UTC")


@pytest.fixture
def firms():
    from tests.conftest import ensure_reference_data

    ensure_reference_data()
    usccs = [codes.make(f"91330282MA{n:06d}X") for n in range(3)]
    Entity.objects.bulk_create([Entity(uscc=u, name=f"测试{n}", entity_type="enterprise", town_id="330282001",
                                       established_on=dt.date(2020, 1, 1), status="active", imported_at=timezone.now())
                                for n, u in enumerate(usccs)])
    return usccs


def frame(usccs, body: list[str], reason: list[str], sent_at) -> pl.DataFrame:
    now = dt.datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
    n = len(usccs)
    return pl.DataFrame({
        "key": [f"t:{u}" for u in usccs], "uscc": usccs, "also_for": [""] * n, "purpose": ["policy"] * n,
        "channel": ["sms"] * n, "recipient": ["13900000000"] * n, "body": body, "reason": reason,
        "group": ["treated"] * n, "planned_for": [dt.date(2026, 12, 1)] * n, "status": ["pending"] * n,
        "attempts": [0] * n, "next_attempt_at": pl.Series([now] * n, dtype=UTC), "last_error": [""] * n,
        "provider_id": ["100%s'; --"] * n, "sent_at": pl.Series(sent_at, dtype=UTC),
        "created_at": pl.Series([now] * n, dtype=UTC)})


def stored() -> list[dict]:
    return list(OutboxMessage.objects.order_by("key").values(
        "key", "entity_id", "body", "reason", "planned_for", "status", "attempts", "next_attempt_at", "provider_id",
        "sent_at"))


def test_columns_the_same_in_every_row_are_stored_as_they_were(firms):
    """Quotes, a percent sign followed by s, a null and a time to the microsecond, the same in
    every row, come back as they went in; so do the columns that differ."""
    bulk.insert(OutboxMessage._meta.db_table, frame(firms, ["一", "二", "三"], ["同"] * 3, [None] * 3))
    rows = stored()
    assert [r["body"] for r in rows] == ["一", "二", "三"]
    assert {r["provider_id"] for r in rows} == {"100%s'; --"}
    assert {r["sent_at"] for r in rows} == {None}
    assert {r["reason"] for r in rows} == {"同"}
    assert {r["next_attempt_at"] for r in rows} == {dt.datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)}
    assert {r["planned_for"] for r in rows} == {dt.date(2026, 12, 1)}
    # the ORM finds them by the stored values (SQLite compares times as text)
    assert OutboxMessage.objects.filter(next_attempt_at__lt=timezone.now(), provider_id__contains="%s").count() == 3


def test_rows_that_differ_only_in_one_column_bind_that_one(firms):
    two = frame([firms[0]] * 2, ["一"] * 2, ["同"] * 2, [dt.datetime(2026, 12, 1, tzinfo=dt.UTC)] * 2)
    two = two.with_columns(pl.Series("key", ["t:a", "t:b"]))
    bulk.insert(OutboxMessage._meta.db_table, two)
    assert [(r["key"], r["body"], r["sent_at"]) for r in stored()] == [
        ("t:a", "一", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)), ("t:b", "一", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))]
    if connection.vendor == "sqlite":
        assert set(bulk._same_values(bulk._to_db_types(two, postgres=False))) == set(two.columns) - {"key"}
        # rows the same in every column: one is still bound
        assert len(bulk._same_values(bulk._to_db_types(two.with_columns(pl.lit("t:c").alias("key")),
                                                       postgres=False))) == two.width - 1


def test_a_float_is_bound_not_written_into_the_statement():
    values = pl.DataFrame({"a": [0.1 + 0.2] * 3, "b": [1, 2, 3]})
    if connection.vendor == "sqlite":
        assert "a" not in bulk._same_values(values)


def test_many_rows_a_statement_store_every_row_in_order(firms, monkeypatch):
    """More rows than one statement takes, and a last statement with fewer: every row stored
    once, in the frame's order (the order their ids are given in), and each value in its row."""
    monkeypatch.setattr(bulk, "CHUNK", 10)
    n = 23
    usccs = [firms[i % 3] for i in range(n)]
    rows = frame(usccs, [f"正文{i}" for i in range(n)], [f"原因{i % 5}" for i in range(n)], [None] * n)
    bulk.insert(OutboxMessage._meta.db_table, rows.with_columns(pl.Series("key", [f"k{i:02d}" for i in range(n)])),
                rows_per_statement=4)
    got = list(OutboxMessage.objects.order_by("id").values_list("key", "entity_id", "body", "reason"))
    assert got == [(f"k{i:02d}", usccs[i], f"正文{i}", f"原因{i % 5}") for i in range(n)]


def _indexes() -> list[tuple[str, str]]:
    with connection.cursor() as cur:
        cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s ORDER BY name",
                    [OutboxMessage._meta.db_table])
        return cur.fetchall()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite builds an emptied table's indexes after its rows")
def test_a_large_insert_into_a_small_table_builds_its_indexes_after_the_rows(firms, monkeypatch):
    """Plain indexes are dropped and made again, the same, around an insert that at least
    doubles the table, inside the transaction; the unique key is kept, so a duplicate row is
    still refused and leaves the indexes as they were; an insert smaller than the table leaves
    them alone."""
    from django.db import IntegrityError, transaction

    monkeypatch.setattr(bulk, "REBUILD_AT", 2)
    before = _indexes()
    assert any(sql for _, sql in before) and any(sql is None for _, sql in before)  # plain ones and the unique key
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    rows = frame(firms, ["一", "二", "三"], ["同"] * 3, [None] * 3)
    with transaction.atomic(), connection.execute_wrapper(record):
        bulk.insert(OutboxMessage._meta.db_table, rows)
    assert sum(s.startswith("DROP INDEX") for s in statements) == sum(1 for _, sql in before if sql)
    assert _indexes() == before
    assert OutboxMessage.objects.filter(status="pending", next_attempt_at__lt=timezone.now()).count() == 3

    again = rows.with_columns(pl.Series("key", ["t:x", "t:y", "t:x"]))  # a key twice
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert(OutboxMessage._meta.db_table, again)
    assert _indexes() == before and OutboxMessage.objects.count() == 3

    statements.clear()
    with transaction.atomic(), connection.execute_wrapper(record):
        bulk.insert(OutboxMessage._meta.db_table, again.head(2))  # fewer rows than the table holds
    assert not any(s.startswith("DROP INDEX") for s in statements)
    assert _indexes() == before and OutboxMessage.objects.count() == 5
