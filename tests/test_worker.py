"""`qifu worker`: the scheduled jobs in a process of their own (APScheduler)."""

import datetime as dt
import signal
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest

from qifu import worker

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_every_job_has_a_handler_and_a_trigger():
    assert len({j.id for j in worker.JOBS}) == len(worker.JOBS)
    for job in worker.JOBS:
        assert callable(worker.handler(job))
        assert job.trigger() is not None


def test_the_day_plan_fires_at_the_planning_time_in_season_only(monkeypatch):
    monkeypatch.setenv("QIFU_REMIND_AT", "09:30")
    plan = next(j for j in worker.JOBS if j.id == "plan_day")
    trigger = plan.trigger()
    after = trigger.get_next_fire_time(None, dt.datetime(2027, 3, 2, 10, 0, tzinfo=SHANGHAI))
    assert after == dt.datetime(2027, 3, 3, 9, 30, tzinfo=SHANGHAI)
    # after the season's last day, the next run is on 1 January
    after = trigger.get_next_fire_time(None, dt.datetime(2027, 6, 30, 10, 0, tzinfo=SHANGHAI))
    assert after == dt.datetime(2028, 1, 1, 9, 30, tzinfo=SHANGHAI)
    assert plan.catch_up(dt.datetime(2027, 3, 2, 10, 0, tzinfo=SHANGHAI))
    assert not plan.catch_up(dt.datetime(2027, 3, 2, 9, 0, tzinfo=SHANGHAI))
    assert not plan.catch_up(dt.datetime(2027, 9, 2, 10, 0, tzinfo=SHANGHAI))


def test_the_project_filing_reminders_run_each_morning_and_catch_up_by_day():
    job = next(j for j in worker.JOBS if j.id == "project_filings")
    after = job.trigger().get_next_fire_time(None, dt.datetime(2027, 8, 2, 10, 0, tzinfo=SHANGHAI))
    assert after == dt.datetime(2027, 8, 3, 9, 30, tzinfo=SHANGHAI)
    assert job.catch_up(dt.datetime(2027, 8, 2, 10, 0, tzinfo=SHANGHAI))
    assert not job.catch_up(dt.datetime(2027, 8, 2, 23, 0, tzinfo=SHANGHAI))


def explode():
    raise ZeroDivisionError("boom")


@pytest.mark.django_db
def test_a_job_that_fails_is_logged_and_the_next_run_goes_on(caplog):
    worker._run(worker.Job("boom", "tests.test_worker:explode", lambda: None))
    assert "定时任务 boom 执行失败" in caplog.text and "ZeroDivisionError" in caplog.text


def test_an_unknown_handler_fails_the_start_not_its_first_run():
    with pytest.raises(AttributeError):
        worker.run((worker.Job("typo", "qifu.reminders.tasks:send_outboxx", lambda: None),))


def _worker(env):
    return subprocess.Popen([sys.executable, "-m", "qifu", "worker"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_worker_refuses_to_send_without_a_real_sms_backend(process_env):
    env = dict(process_env)
    env.pop("QIFU_SMS_BACKEND", None)
    done = subprocess.run([sys.executable, "-m", "qifu", "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("qifu: 未配置短信通道") and len(done.stderr.strip().splitlines()) == 1
    env["QIFU_SMS_BACKEND"] = "file"
    done = subprocess.run([sys.executable, "-m", "qifu", "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "不会真正发出短信" in done.stderr


def test_the_worker_runs_until_sigterm_and_stops_at_once(process_env):
    env = dict(process_env, QIFU_SMS_BACKEND="http", QIFU_SMS_GATEWAY_URL="http://127.0.0.1:9/sms",
               QIFU_COMPUTE_THREADS="3")
    env.pop("OMP_NUM_THREADS", None)
    proc = _worker(env)
    deadline = time.time() + 60
    line = ""
    while time.time() < deadline and "定时任务已启动" not in line:
        line = proc.stdout.readline()
    assert "定时任务已启动" in line, proc.stderr.read()
    assert "计算线程 3" in line  # its native thread pools sized before they load
    stopped = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # every thread's stack, to see where it hangs
        time.sleep(1)
        proc.kill()
        raise AssertionError(proc.stderr.read()[-6000:]) from None
    assert code == 0, proc.stderr.read()[-6000:]
    assert time.time() - stopped < 10


def test_a_night_missed_while_the_worker_was_down_is_backed_up_at_its_start(tmp_path, monkeypatch):
    """At start, the worker makes up the nightly archive when none was made in the last day
    (the machine was off at 02:30); not when the last night's is there, nor when nightly
    archives are not set up."""
    import os

    job = next(j for j in worker.JOBS if j.id == "backup")
    now = dt.datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
    monkeypatch.delenv("QIFU_BACKUP_DIR", raising=False)
    assert not job.catch_up(now)
    monkeypatch.setenv("QIFU_BACKUP_DIR", str(tmp_path))
    assert job.catch_up(now)  # set up, and none made yet
    archive = tmp_path / "qifu-20261202-023000.tar.gz"
    archive.write_bytes(b"archive")
    for hours, due in ((7.5, False), (23.9, False), (24.5, True), (80, True)):
        made = (now - dt.timedelta(hours=hours)).timestamp()
        os.utime(archive, (made, made))
        assert job.catch_up(now) is due, hours


RELEASE = r"""
import os, shutil, sqlite3, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.db import connection, transaction
from qifu import db, worker

def write():  # as the day's reminder plan does: a bulk job's log, far under its 256 MiB
    db.bulk_work()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TABLE scratch (n INTEGER, text TEXT)")
        cur.executemany("INSERT INTO scratch VALUES (%s, %s)", [(i, "企服" * 20) for i in range(20000)])

db.ensure_ready()
path = connection.settings_dict["NAME"]
connection.close()
server = sqlite3.connect(path)  # a server's connection, between requests
server.execute("SELECT count(*) FROM django_migrations").fetchone()
worker._run(worker.Job("write", "__main__:write", lambda: None))
shutil.copy(path, sys.argv[1])  # the database file without its log
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM scratch").fetchone()[0])
"""


def test_a_job_leaves_its_writes_in_the_database_file_not_in_the_log(process_env, tmp_path):
    """SQLite: a job copies its write-ahead log back before its connection closes, also while
    the server holds the database open, so that the server's next request does not pay for it."""
    if "QIFU_DATABASE_URL" in process_env:
        pytest.skip("SQLite's write-ahead log; PostgreSQL checkpoints itself")
    done = subprocess.run([sys.executable, "-c", RELEASE, str(tmp_path / "alone.sqlite3")], env=process_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["20000"]
