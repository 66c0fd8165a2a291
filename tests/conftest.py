import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("QIFU_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))


@pytest.fixture(scope="session")
def small_county(tmp_path_factory) -> Path:
    """A synthetic county of 1,500 entities, written once per test session."""
    from qifu.engine.synth import county

    out = tmp_path_factory.mktemp("county")
    county.write(out, entities=1500, seed=11, last_year=2025)
    return out


@pytest.fixture(autouse=True)
def _signin_codes_sent_inline(monkeypatch):
    """The portal sends a sign-in code from a thread after answering; a test's rows live in a
    transaction that thread's connection cannot see, so tests send inline (one test covers the
    thread: test_portal.test_a_code_is_sent_after_the_answer)."""
    from qifu.portal import signin

    monkeypatch.setattr(signin, "DISPATCH", "inline")


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """The web's per-process caches (the signed-in entity, the self-check's context, bookable
    instruments, the dashboard's count of who is due to be listed) start empty in every test, as
    in a new server process."""
    from qifu.checks import single
    from qifu.labs import actions as labs
    from qifu.portal import views
    from qifu.web import views as staff_views

    single.forget_entity_parts()
    views.forget_entities()
    labs.forget_bookable()
    staff_views.forget_due()


def free_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """Django's SMTP backend pointed at a real SMTP server on a free loopback port; yields
    its inbox (``tests.mailbox.Inbox``)."""
    from aiosmtpd.controller import Controller

    from tests.mailbox import Inbox

    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield inbox
    controller.stop()


@pytest.fixture
def data_dir(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


KINDS = ("registry", "reports", "shareholders", "tax", "social", "reminders")


@pytest.fixture(scope="module")
def checked_county(small_county, django_db_setup, django_db_blocker):
    """The small county imported and checked once for a module (committed), with one staff
    account per role; everything is removed afterwards. A module using it must have at least
    one test marked ``django_db``, or pytest-django sets up no test database."""
    with django_db_blocker.unblock():
        yield load_checked_county(small_county)
        _wipe()


def ensure_reference_data() -> None:
    """Townships, industries and the request categories with their departments: rows that data
    migrations load and that a transactional test's flush empties with the rest."""
    import importlib

    from django.apps import apps as global_apps

    from qifu.registry.models import Township
    from qifu.service_requests import settings as request_settings
    from qifu.service_requests.models import CategorySetting

    if not Township.objects.exists():
        importlib.import_module("qifu.registry.migrations.0002_reference_data").load(global_apps, None)
    if not CategorySetting.objects.exists():
        importlib.import_module("qifu.service_requests.migrations.0002_categories").load(global_apps, None)
        request_settings.forget()


def load_checked_county(folder: Path) -> dict:
    from django.contrib.auth import get_user_model

    from qifu.accounts.models import StaffProfile
    from qifu.checks.actions import run_check
    from qifu.imports.actions import import_file
    from qifu.registry.models import Township

    ensure_reference_data()
    from qifu.checks import single

    single.forget_entity_parts()
    for kind in KINDS:
        import_file(kind, folder / f"{kind}.csv")
    run_check(2025)
    towns = list(Township.objects.filter(entity__isnull=False).distinct().order_by("code")[:2])
    User = get_user_model()
    users = {}
    for name, role, town in (("admin", "admin", None), ("officer", "officer", towns[0]),
                             ("leader", "leader", None), ("noroles", None, None)):
        users[name] = User.objects.create_user(name, password=f"{name}-pw-for-tests")
        if role:
            StaffProfile.objects.create(user=users[name], role=role, town=town)
    return {"folder": folder, "users": users, "own_town": towns[0], "other_town": towns[1]}


def _wipe():
    from django.apps import apps
    from django.contrib.auth import get_user_model

    from qifu.checks.models import CheckRun, Finding
    from qifu.imports.models import ImportRun
    from qifu.registry.models import Entity

    for label in ("inspections.Sample", "inspections.Inspection", "abnormal.Listing", "projects.Step", "projects.ChecklistItem", "projects.Phase", "projects.Project", "experts.Cooperation", "experts.Visit", "experts.Pairing", "experts.Need", "experts.Achievement", "experts.Expert",
                  "labs.SampleOrder", "labs.TestBatch", "labs.BookedSlot", "labs.Booking", "labs.Voucher", "labs.Instrument", "labs.Lab",
                  "policies.Payment", "policies.PaymentBatch", "policies.ApplicationFile", "policies.Application",
                  "policies.Match", "policies.PolicyVersion", "policies.Policy", "corrections.Explanation", "corrections.CorrectionNotice", "accounts.AuditEvent",
                  "accounts.StaffProfile", "registry.Note", "portal.SignInCode", "reminders.ContactTask",
                  "reminders.OutboxMessage"):
        apps.get_model(label).objects.all().delete()
    Finding.objects.all().delete()
    CheckRun.objects.all().delete()
    Entity.objects.all().delete()
    ImportRun.objects.all().delete()
    get_user_model().objects.all().delete()


# --- a database of its own for a `qifu` process -------------------------------------------

def _server_url() -> str | None:
    url = os.environ.get("QIFU_DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def _process_template(tmp_path_factory):
    """A database migrated once, copied for every process test (migrating takes some fifteen
    seconds; a copy, a moment): on PostgreSQL a database (CREATE DATABASE … TEMPLATE), on
    SQLite a file, its write-ahead log folded in. Migrating an empty database is still done,
    and must succeed, once a run: the template is made so (and a restore on a fresh machine
    migrates what it restored, tests/test_backup.py)."""
    folder = tmp_path_factory.mktemp("template")
    env = dict(os.environ, QIFU_DATA_DIR=str(folder))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    url = _server_url()
    if url is None:
        env.pop("QIFU_DATABASE_URL", None)
        subprocess.run([sys.executable, "-m", "qifu", "manage", "migrate", "--verbosity", "0"], env=env, check=True)
        path = folder / "qifu.sqlite3"
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode=DELETE")
        yield path
        return
    import psycopg

    name = f"qifu_tpl_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env["QIFU_DATABASE_URL"] = _with_database(url, name)
    subprocess.run([sys.executable, "-m", "qifu", "manage", "migrate", "--verbosity", "0"], env=env, check=True)
    yield name
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def process_env(tmp_path, _process_template):
    """The environment for running `qifu` (or a Django script) as a process of its own, with a
    fresh database of its own, a copy of the migrated template: a SQLite file in its data
    directory, or on PostgreSQL a new database on the same server (the suite's test database
    lives in a transaction the process cannot see). Yields the environment; the database is
    dropped afterwards."""
    env = dict(os.environ, QIFU_DATA_DIR=str(tmp_path / "var"))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    url = _server_url()
    if url is None:
        env.pop("QIFU_DATABASE_URL", None)
        (tmp_path / "var").mkdir(exist_ok=True)
        shutil.copyfile(_process_template, tmp_path / "var" / "qifu.sqlite3")
        yield env
        return
    import psycopg

    name = f"qifu_proc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_process_template}"')
    env["QIFU_DATABASE_URL"] = _with_database(url, name)
    yield env
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the sets of tests CI runs -----------------------------------------------------------------------

# fixtures through which a test reaches a database: Django's, and a process of its own (process_env)
DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_setup", "process_env"})


def touches_database(item: pytest.Item) -> bool:
    """Whether ``item`` reaches a database: through Django (its marker or fixtures), through a
    process of its own (``process_env``), or directly (marked ``database``)."""
    return (item.get_closest_marker("django_db") is not None or item.get_closest_marker("database") is not None
            or not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))


TEST_SETS = {
    "database": lambda item, db: db,  # only those that reach a database (CI's PostgreSQL pass)
    "engine": lambda item, db: not db,  # only those that do not (the engine, simulators, Spark…)
}


def pytest_collection_modifyitems(config, items):
    """QIFU_TESTS names a set of the tests (``TEST_SETS``); unset, all of them."""
    which = os.environ.get("QIFU_TESTS")
    if not which:
        return
    if which not in TEST_SETS:
        raise pytest.UsageError(f"QIFU_TESTS={which}: expected one of {', '.join(TEST_SETS)}")
    wanted = TEST_SETS[which]
    kept, left = [], []
    for item in items:
        (kept if wanted(item, touches_database(item)) else left).append(item)
    config.hook.pytest_deselected(items=left)
    items[:] = kept
