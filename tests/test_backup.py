"""`qifu backup` and `qifu restore` as processes, on SQLite and on PostgreSQL alike: a county's
database and its attachments come back as they were; a damaged or foreign archive is refused
before anything changes; a database with data is replaced only when asked, and kept first; the
worker's nightly job keeps the newest archives."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import _server_url, _with_database

PNG = b"\x89PNG\r\n\x1a\n" + b"qifu-backup-test-image" * 10

STORE = f"""
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu.service_requests.attachments import store
print(store({PNG!r}))
"""

COUNTS = """
import os, json, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.contrib.auth import get_user_model
from qifu.registry.models import Entity
from qifu.reports.models import AnnualReport
print(json.dumps({"entities": Entity.objects.count(), "reports": AnnualReport.objects.count(),
                  "users": sorted(get_user_model().objects.values_list("username", flat=True))}))
"""

FORGET = """
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu.reports.models import AnnualReport
AnnualReport.objects.filter(pk__in=list(AnnualReport.objects.values_list("pk", flat=True)[:50])).delete()
"""


OUTBOX = """
import os, datetime as dt, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.utils import timezone
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage
firm, now = Entity.objects.order_by("uscc").first(), timezone.now()
for key, due in (("due", now - dt.timedelta(hours=1)), ("later", now + dt.timedelta(days=3))):
    OutboxMessage.objects.create(key=f"backup-test:{key}", entity=firm, purpose="filing", channel="email",
                                 recipient="owner@example.com", body="请按时报送年报", reason="测试", planned_for=due.date(),
                                 next_attempt_at=due, created_at=now)
"""

STATES = """
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu.reminders.models import OutboxMessage
for m in OutboxMessage.objects.filter(key__startswith="backup-test:").order_by("key"):
    print(m.key, m.status, m.last_error or "-")
"""


def qifu(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], capture_output=True, text=True, env=env)


def script(env, text: str) -> str:
    done = subprocess.run([sys.executable, "-c", text], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def counts(env) -> dict:
    return json.loads(script(env, COUNTS))


@pytest.fixture
def county(process_env, small_county):
    """A county in a process's own database: registry, reports, an account, an attachment."""
    for kind in ("registry", "reports"):
        done = qifu(process_env, "import", kind, small_county / f"{kind}.csv")
        assert done.returncode == 0, done.stderr
    assert qifu(process_env, "staff", "juzhang", "--role", "admin").returncode == 0
    digest = script(process_env, STORE)
    return process_env, Path(process_env["QIFU_DATA_DIR"]) / "attachments" / digest[:2] / digest


def make_backup(env, out: Path) -> Path:
    done = qifu(env, "backup", "--out", out)
    assert done.returncode == 0, done.stderr
    path = Path(re.search(r"已备份到 (\S+\.tar\.gz)", done.stdout).group(1))
    assert path.parent == out and path.is_file()
    return path


def rewrite(archive: Path, target: Path, change) -> Path:
    """A copy of ``archive`` with ``change(name, bytes) -> (name, bytes) | None`` applied to each member."""
    with tarfile.open(archive) as src, tarfile.open(target, "w:gz") as dst:
        for m in src.getmembers():
            changed = change(m.name, src.extractfile(m).read())
            if changed is None:
                continue
            info = tarfile.TarInfo(changed[0])
            info.size = len(changed[1])
            dst.addfile(info, io.BytesIO(changed[1]))
    return target


def test_a_backup_brings_back_the_county_and_its_attachments(county, tmp_path):
    env, attachment = county
    before = counts(env)
    assert before["entities"] > 0 and before["reports"] > 50 and before["users"] == ["juzhang"]
    script(env, OUTBOX)  # an email due an hour ago, still to send, and one planned for later
    archive = make_backup(env, tmp_path / "backups")
    assert archive.stat().st_mode & 0o077 == 0  # personal data: the service's user reads it, nobody else
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
    assert names[0] == "manifest.json" and f"attachments/{attachment.parent.name}/{attachment.name}" in names
    assert manifest["rows"]["registry_entity"] == before["entities"] and manifest["files"] == 1

    # the day after: reports lost, an account added, the attachment gone from the disk
    script(env, FORGET)
    assert qifu(env, "staff", "linshi", "--role", "leader").returncode == 0
    attachment.unlink()
    changed = counts(env)
    assert changed["reports"] == before["reports"] - 50

    refused = qifu(env, "restore", archive)
    assert refused.returncode == 1 and "当前数据库已有数据" in refused.stderr and "--force" in refused.stderr
    assert counts(env) == changed  # nothing touched

    done = qifu(env, "restore", archive, "--force")
    assert done.returncode == 0, done.stderr
    assert counts(env) == before
    # the due email may have gone out after the archive was made: held for staff, not sent again
    assert "1 条短信或邮件已设为“状态未知”" in done.stdout
    assert script(env, STATES).splitlines() == ["backup-test:due unknown 恢复备份后无法确认是否已发送：请核对后重发或作废",
                                                 "backup-test:later pending -"]
    assert attachment.read_bytes() == PNG
    kept = Path(re.search(r"原数据库另存为 (\S+\.tar\.gz)", done.stdout).group(1))
    with tarfile.open(kept) as tar:  # what was replaced is kept, as it was
        assert json.load(tar.extractfile("manifest.json"))["rows"]["reports_annualreport"] == changed["reports"]
    # and the restored county works on: a command that writes
    assert qifu(env, "staff", "xinren", "--role", "leader").returncode == 0


def test_a_damaged_or_foreign_backup_is_refused_and_changes_nothing(county, tmp_path):
    env, _ = county
    archive = make_backup(env, tmp_path / "backups")
    assert qifu(env, "staff", "after-backup", "--role", "leader").returncode == 0
    before = counts(env)

    def flip(name, data):
        if name.startswith("database."):
            data = data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]
        return name, data

    def foreign(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["database"] = "sqlite" if m["database"] == "postgresql" else "postgresql"
            data = json.dumps(m).encode()
        return name, data

    def bad_attachment(name, data):
        return (name, data + b"x") if name.startswith("attachments/") else (name, data)

    def escape(name, data):
        return ("../../evil.txt", data) if name.startswith("attachments/") else (name, data)

    def no_attachment(name, data):
        return None if name.startswith("attachments/") else (name, data)

    def newer(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["migrations"].append("policies.9999_from_the_future")
            data = json.dumps(m).encode()
        return name, data

    cases = [(flip, "数据库文件与记录的校验值不符"), (foreign, "的备份，当前数据库是"),
             (bad_attachment, "与其校验值不符"), (escape, "不认识的条目"), (no_attachment, "附件数与记录不符"), (newer, "来自更新的 qifu")]
    for change, error in cases:
        bad = rewrite(archive, tmp_path / f"{change.__name__}.tar.gz", change)
        done = qifu(env, "restore", bad, "--force")
        assert done.returncode == 1 and error in done.stderr, (change.__name__, done.stderr)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    done = qifu(env, "restore", truncated, "--force")
    assert done.returncode == 1 and "已损坏或不完整" in done.stderr
    assert counts(env) == before
    assert not list(Path(env["QIFU_DATA_DIR"]).glob("before-restore-*"))  # nothing was about to be replaced


def test_a_backup_whose_rows_are_not_those_it_recorded_leaves_the_database_as_it_was(county, tmp_path):
    """SQLite's copy is counted before it replaces anything; a PostgreSQL dump can only be counted
    once loaded, so there the database is put back from the copy kept before. Either way the
    error names the table and both counts, and the database is the one before."""
    env, _ = county
    archive = make_backup(env, tmp_path / "backups")
    recorded = json.loads(tarfile.open(archive).extractfile("manifest.json").read())["rows"]["registry_entity"]
    assert qifu(env, "staff", "after-backup", "--role", "leader").returncode == 0
    before = counts(env)

    def one_more_entity(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["rows"]["registry_entity"] += 1
            data = json.dumps(m).encode()
        return name, data

    bad = rewrite(archive, tmp_path / "miscounted.tar.gz", one_more_entity)
    done = qifu(env, "restore", bad, "--force")
    assert done.returncode == 1 and f"registry_entity：记录 {recorded + 1} 行，实有 {recorded} 行" in done.stderr, done.stderr
    assert counts(env) == before
    assert qifu(env, "staff", "still-works", "--role", "leader").returncode == 0


def test_a_fresh_machine_restores_without_force_and_the_worker_keeps_the_newest(county, tmp_path, process_env):
    env, _ = county
    archive = make_backup(env, tmp_path / "backups")
    before = counts(env)
    # the nightly job: the newest QIFU_BACKUP_KEEP archives stay
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    for day in range(1, 6):
        (nightly / f"qifu-202611{day:02d}-023000.tar.gz").write_bytes(b"old")
    env_night = dict(env, QIFU_BACKUP_DIR=str(nightly), QIFU_BACKUP_KEEP="3")
    out = script(env_night, "import os, django\nos.environ['DJANGO_SETTINGS_MODULE'] = 'qifu.settings'\ndjango.setup()\n"
                            "from qifu import backup\nprint(backup.nightly().path.name)")
    assert sorted(p.name for p in nightly.glob("*.tar.gz")) == ["qifu-20261104-023000.tar.gz",
                                                               "qifu-20261105-023000.tar.gz", out]
    assert not list(nightly.glob("*.part"))

    # another machine: an empty data directory (and on PostgreSQL an empty database)
    fresh = dict(process_env, QIFU_DATA_DIR=str(tmp_path / "fresh"))
    with empty_database(fresh):
        done = qifu(fresh, "restore", archive)
        assert done.returncode == 0, done.stderr
        assert "原数据库另存为" not in done.stdout
        assert counts(fresh) == before


@contextlib.contextmanager
def empty_database(env: dict):
    """On PostgreSQL, ``env`` pointed at a new empty database for the block; SQLite's file is
    new with the data directory."""
    url = _server_url()
    if url is None:
        yield
        return
    import psycopg

    name = f"qifu_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env["QIFU_DATABASE_URL"] = _with_database(url, name)
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_no_restore_under_a_running_server_or_worker_and_no_start_during_one(county, tmp_path):
    """`qifu serve` and `qifu worker` hold this data directory's lock while they run: a restore
    is refused then, with nothing changed; and neither starts while a restore holds it."""
    import fcntl

    env, _ = county
    archive = make_backup(env, tmp_path / "backups")
    script(env, FORGET)
    changed = counts(env)
    lock = Path(env["QIFU_DATA_DIR"]) / "run" / "in-use.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("a+") as running:  # as a running server holds it
        fcntl.flock(running, fcntl.LOCK_SH | fcntl.LOCK_NB)
        refused = qifu(env, "restore", archive, "--force")
        assert refused.returncode == 1 and "正在使用这个数据目录：请先停止它们" in refused.stderr
        assert counts(env) == changed
        assert not list(Path(env["QIFU_DATA_DIR"]).glob("before-restore-*"))
    with lock.open("a+") as restoring:  # as a restore holds it
        fcntl.flock(restoring, fcntl.LOCK_EX | fcntl.LOCK_NB)
        worker = qifu(dict(env, QIFU_SMS_BACKEND="http", QIFU_SMS_GATEWAY_URL="http://127.0.0.1:9/sms"), "worker")
        assert worker.returncode == 1 and "正在从备份恢复数据库：恢复完成后再启动 qifu worker" in worker.stderr
    done = qifu(env, "restore", archive, "--force")
    assert done.returncode == 0, done.stderr
    assert counts(env)["reports"] == changed["reports"] + 50


HOLD = """
import os, sys, time, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import in_use
if sys.argv[1] == "serve":
    held = in_use.hold("qifu serve")
    print("held", flush=True)
    time.sleep(600)
with in_use.alone():
    print("held", flush=True)
    time.sleep(600)
"""


@contextlib.contextmanager
def holding(env, what: str):
    """A process that holds the lock as ``what`` (a running server, or a restore) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, what], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()
        yield
    finally:
        proc.kill()
        proc.wait()


def test_on_postgresql_a_server_on_another_machine_keeps_a_restore_off_and_the_other_way(county, tmp_path):
    """Servers on several machines may share one PostgreSQL database, each with its own data
    directory: the database's advisory lock keeps a restore from under any of them, and any of
    them from starting during a restore."""
    env, _ = county
    if "QIFU_DATABASE_URL" not in env:
        pytest.skip("servers on several machines share a PostgreSQL database; this runs in the PostgreSQL pass")
    archive = make_backup(env, tmp_path / "backups")
    script(env, FORGET)
    changed = counts(env)
    elsewhere = dict(env, QIFU_DATA_DIR=str(tmp_path / "another-machine"))  # the same database, its own folder
    with holding(elsewhere, "serve"):
        refused = qifu(env, "restore", archive, "--force")
        assert refused.returncode == 1 and "另一台机器上的 qifu serve 或 qifu worker 正在使用这个数据库" in refused.stderr
        assert counts(env) == changed
        assert not list(Path(env["QIFU_DATA_DIR"]).glob("before-restore-*"))
    with holding(elsewhere, "restore"):
        worker = qifu(dict(env, QIFU_SMS_BACKEND="http", QIFU_SMS_GATEWAY_URL="http://127.0.0.1:9/sms"), "worker")
        assert worker.returncode == 1 and "另一台机器正在从备份恢复这个数据库：恢复完成后再启动 qifu worker" in worker.stderr
    done = qifu(env, "restore", archive, "--force")  # once the other machine's server is gone
    assert done.returncode == 0, done.stderr
    assert counts(env)["reports"] == changed["reports"] + 50
