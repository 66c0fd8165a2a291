"""`run_check` on a synthetic county: recall, nuisance, formats, tracking and engine parity."""

from __future__ import annotations

import json
import math

import openpyxl
import polars as pl
import pytest
from bench.quality_eval import evaluate

from qifu.analytics import sources
from qifu.checks.actions import run_check
from qifu.checks.models import CheckRun, Finding
from qifu.engine.contract import FINDINGS_COLUMNS
from qifu.engine.rules import duckdb_engine, python_engine
from qifu.engine.rules.loader import load_rules
from tests.conftest import ensure_reference_data

KINDS = ("registry", "reports", "shareholders", "tax", "social", "reminders")


@pytest.fixture(scope="module")
def county_db(small_county, django_db_setup, django_db_blocker):
    """The small county imported once for this module (committed), removed afterwards."""
    from qifu.imports.actions import import_file
    from qifu.imports.models import ImportRun
    from qifu.registry.models import Entity

    with django_db_blocker.unblock():
        ensure_reference_data()  # pytest-django runs a test without a database mark last
        for kind in KINDS:
            import_file(kind, small_county / f"{kind}.csv")
        yield small_county
        Finding.objects.all().delete()
        CheckRun.objects.all().delete()
        Entity.objects.all().delete()
        ImportRun.objects.all().delete()


@pytest.fixture
def checked(county_db, db, tmp_path):
    return run_check(2025, out=tmp_path / "findings.csv"), tmp_path / "findings.csv"


def test_recall_and_nuisance_on_labelled_errors(checked, county_db):
    result, path = checked
    labels = pl.read_csv(county_db / "injected_errors.csv", infer_schema=False)
    reports = pl.read_csv(county_db / "reports.csv", infer_schema=False, columns=["uscc", "report_year"])
    score = evaluate(pl.read_csv(path, infer_schema=False), labels, reports, 2025)
    assert score["recall"] >= 0.98
    assert score["per_class"]["recall"].min() >= 0.90, score["per_class"].filter(pl.col("recall") < 0.9)
    assert score["clean_block_high_share"] <= 0.005


def test_findings_file_follows_the_contract(checked):
    result, path = checked
    frame = pl.read_csv(path, infer_schema=False)
    assert tuple(frame.columns) == FINDINGS_COLUMNS
    assert set(frame["severity"]) <= {"block", "high", "medium", "low", "info"}
    um = frame.filter(pl.col("rule_id") == "UM-01")
    assert um.height > 0 and (um["suggestion"] != "").all()
    assert um["message"].str.contains("万元").all()


def test_xlsx_and_json_outputs(county_db, db, tmp_path):
    run_check(2025, out=tmp_path / "f.xlsx")
    run_check(2025, out=tmp_path / "f.json")
    rows = list(openpyxl.load_workbook(tmp_path / "f.xlsx").active.values)
    data = json.loads((tmp_path / "f.json").read_text(encoding="utf-8"))
    assert tuple(rows[0]) == FINDINGS_COLUMNS
    assert len(rows) - 1 == len(data) > 0
    assert set(data[0]) == set(FINDINGS_COLUMNS)


def test_run_is_stored_with_ruleset_version_and_per_rule_counts(checked):
    result, _ = checked
    run = CheckRun.objects.get(pk=result.run.pk)
    assert len(run.ruleset_version) == 12
    assert sum(run.rule_counts.values()) == run.findings == Finding.objects.filter(report_year=2025).count()
    assert run.new_findings == run.findings


def test_a_correction_resolves_the_finding(checked, county_db, tmp_path):
    from qifu.imports.actions import import_file

    labels = pl.read_csv(county_db / "injected_errors.csv", infer_schema=False).filter(
        pl.col("error_class") == "main_exceeds_total"
    )
    uscc = labels["uscc"][0]
    finding = Finding.objects.get(entity_id=uscc, report_year=2025, rule_id="AR-02")
    assert finding.status == "open"
    reports = pl.read_csv(county_db / "reports.csv", infer_schema=False)
    row = reports.filter((pl.col("uscc") == uscc) & (pl.col("report_year") == "2025"))
    fixed = row.with_columns(pl.col("total_revenue").alias("main_business_revenue"))
    fixed.write_csv(tmp_path / "fix.csv")
    import_file("reports", tmp_path / "fix.csv")
    second = run_check(2025, out=tmp_path / "again.csv")
    finding.refresh_from_db()
    assert (finding.status, finding.resolved_by_correction, finding.resolved_revision) == ("resolved", True, 2)
    assert second.run.resolved >= 1
    # the other findings stay open and are not duplicated
    assert Finding.objects.filter(report_year=2025, status="open").count() == second.run.findings


def test_duckdb_batch_and_python_single_report_engines_agree(county_db, db):
    rules = load_rules()
    con = duckdb_engine.connect(sources.fetch(2025), year=2025)
    batch = duckdb_engine.run(con, 2025, rules)
    rows = con.sql("SELECT * FROM ctx").to_arrow_table().to_pylist()
    single = pl.DataFrame([h for row in rows for h in python_engine.evaluate(row, rules)], schema=batch.schema)
    key = ["uscc", "rule_key"]
    a, b = batch.sort(key), single.sort(key)
    assert a.select(key).equals(b.select(key))
    for col in ("v1", "v2", "v3", "suggestion"):
        for x, y in zip(a[col].to_list(), b[col].to_list()):
            assert (x is None and y is None) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), col


@pytest.mark.django_db
def test_sqlite_is_never_read_through_a_second_sqlite_library():
    """The ADBC SQLite driver links its own SQLite; two copies in one process drop each other's
    file locks (seen as "disk I/O error" in the web server after an import)."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert sources._adbc_connection() is None


def test_a_stale_reminder_copy_is_read_from_the_database_for_the_season(county_db, django_db_blocker):
    """Outside a transaction a check reads the analytical copy; while the copy of the reminder
    history is stale (a season's day of sending) it reads that one season from the database
    instead of exporting the whole history, with the same findings."""
    from django.utils import timezone

    from qifu import analytics
    from qifu.reminders.models import ReminderRecord

    with django_db_blocker.unblock():
        analytics.paths()  # every copy current
        some = ReminderRecord.objects.filter(sent_at__year=2026).order_by("id").first()
        extra = ReminderRecord.objects.create(entity_id=some.entity_id, sent_at=some.sent_at + timezone.timedelta(days=3),
                                              channel="sms", purpose="filing", status="delivered",
                                              imported_at=timezone.now())
        try:
            assert not analytics.is_current("reminders")
            exported = (analytics.folder() / "reminders.parquet").stat().st_mtime_ns
            from_db = run_check(2025).findings
            assert not analytics.is_current("reminders")  # the check did not re-export the history
            assert (analytics.folder() / "reminders.parquet").stat().st_mtime_ns == exported
            analytics.paths(("reminders",))
            from_copy = run_check(2025).findings
        finally:
            extra.delete()
            analytics.paths(("reminders",))
    key = ["uscc", "rule_key"]
    assert from_db.height and from_db.sort(key).equals(from_copy.sort(key))


def test_a_check_reads_the_prepared_context_and_prepares_it_again_after_a_change(county_db, django_db_blocker):
    """Outside a transaction a check joins this season's reminders to the year's prepared
    context (written by the import) instead of building it; the findings are the ones built
    from the database, and a changed input makes the next check prepare the context again."""
    from pathlib import Path

    from django.db import transaction
    from django.utils import timezone

    from qifu import analytics
    from qifu.sources.models import TaxRecord

    key = ["uscc", "rule_key"]
    with django_db_blocker.unblock():
        analytics.paths()
        prepared = Path(analytics.context_path(2025))
        manifest = analytics._read_manifest()
        assert manifest.get("context-2025") == analytics._context_stamp(2025, manifest)  # made by the import
        # an import prepares the context again, and compiles the batch plan for it
        import shutil

        from qifu import config
        from qifu.engine.rules import compiler

        shutil.rmtree(config.data_dir() / "cache", ignore_errors=True)
        compiler._plans.clear()
        prepared.unlink()
        analytics.refresh("tax")
        written = prepared.stat().st_mtime_ns
        compiler._plans.clear()
        with pytest.MonkeyPatch.context() as patch:  # the first check reads the plan from disk
            patch.setattr(compiler, "_batch_sql", lambda *a: pytest.fail("the plan was compiled again"))
            from_prepared = run_check(2025).findings
        assert prepared.stat().st_mtime_ns == written
        with transaction.atomic():
            from_database = run_check(2025).findings
            transaction.set_rollback(True)
        assert from_prepared.height and from_prepared.sort(key).equals(from_database.sort(key))
        # a copy of the reminder history written before the per-season counts existed
        counts = Path(analytics.path("reminder_counts"))
        counts.unlink()
        try:
            assert run_check(2025).findings.sort(key).equals(from_database.sort(key))
        finally:
            analytics.export("reminders")
        assert counts.exists()

        record = TaxRecord.objects.filter(year=2025, declared_sales__gt=100, entity__reports__report_year=2025,
                                          entity__reports__is_current=True,
                                          entity__reports__total_revenue__gt=0).order_by("id").first()
        old = (record.declared_sales, record.imported_at)
        TaxRecord.objects.filter(id=record.id).update(declared_sales=record.declared_sales * 10_000,
                                                       imported_at=timezone.now())
        try:
            changed = run_check(2025).findings
            assert prepared.stat().st_mtime_ns != written
            with transaction.atomic():
                expected = run_check(2025).findings
                transaction.set_rollback(True)
            assert changed.sort(key).equals(expected.sort(key))
            assert not changed.sort(key).equals(from_prepared.sort(key))
        finally:
            TaxRecord.objects.filter(id=record.id).update(declared_sales=old[0], imported_at=old[1])
            analytics.paths()
            Finding.objects.all().delete()
            CheckRun.objects.all().delete()


def test_two_writers_of_one_copy_at_once_each_leave_it_whole(county_db, django_db_blocker, monkeypatch):
    """Two processes or threads exporting the same analytical copy at once (two server workers
    after an import, the demo's filling process beside them): each writes under a name of its
    own and renames it whole. With one shared name, the second renamed the file the first had
    written, and the first's rename then failed: a page's error."""
    import threading

    import pyarrow.parquet as pq
    from django.db import connection

    from qifu import analytics
    from qifu.sources.models import TaxRecord

    real, errors, others = pq.write_table, [], []
    test_database = dict(connection.settings_dict)  # a new thread's connection would open the real one

    def another_writer():
        try:
            connection.settings_dict.update(test_database)
            analytics.export("tax")
        except Exception as e:
            errors.append(e)
        finally:
            connection.close()

    def write_table(table, where, **kwargs):
        real(table, where, **kwargs)
        if not others:  # the first writer, its file written, not yet renamed: another writes it all now
            others.append(threading.Thread(target=another_writer))
            others[0].start()
            others[0].join()

    monkeypatch.setattr(pq, "write_table", write_table)
    with django_db_blocker.unblock():
        analytics.export("tax")
        assert not errors and len(others) == 1
        assert pq.read_table(analytics.path("tax")).num_rows == TaxRecord.objects.count()
        assert analytics.is_current("tax")
    assert not list(analytics.folder().glob("*.tmp"))


def test_the_bucketed_national_run_finds_what_one_pass_finds(county_db, django_db_blocker, tmp_path):
    """``run_bucketed`` (national volumes in bounded memory: entities in hash buckets) against
    one pass over the same Parquet copy."""
    from qifu import analytics

    rules = load_rules()
    with django_db_blocker.unblock():
        paths = analytics.paths()
    whole = duckdb_engine.run(duckdb_engine.connect(paths, year=2025), 2025, rules)
    hits, rows = duckdb_engine.run_bucketed(paths, 2025, rules, 3, tmp_path, ["uscc", "revision"], "1GB")
    key = ["uscc", "rule_key"]
    assert whole.height and hits.sort(key).equals(whole.sort(key))
    assert set(rows["uscc"]) == set(hits["uscc"])
