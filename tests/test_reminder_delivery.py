"""Delivery: real SMTP on loopback, and a sender killed mid-batch loses and repeats nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from qifu.reminders.channels import FileSmsChannel
from qifu.reminders.models import OutboxMessage, ReminderRecord
from tests.factories import REGISTRY_HEADER, registry_rows, write

DAYTIME = timezone.datetime(2027, 5, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # outside quiet hours

delivered = FileSmsChannel.delivered


@pytest.mark.django_db
def test_email_reminder_goes_through_real_smtp(tmp_path, smtp_server):
    from qifu.imports.actions import import_file
    from qifu.reminders.sender import send_due
    from tests.factories import ENT1

    import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows()))
    now = DAYTIME
    OutboxMessage.objects.create(key="filing:email:boss@example.com:2027-05-15", entity_id=ENT1, purpose="filing",
                                 channel="email", recipient="boss@example.com", body="年报提醒。年报不收费。",
                                 reason="测试", planned_for=now.date(), next_attempt_at=now)
    assert send_due(now=now) == {"sent": 1, "retry": 0, "failed": 0}
    (to, content), = smtp_server.messages
    assert to == ["boss@example.com"] and "Message-ID:" in content
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == ("sent", 1)
    assert ReminderRecord.objects.get().channel == "email"
    assert send_due(now=now) == {"sent": 0, "retry": 0, "failed": 0}  # nothing sent twice


@pytest.mark.django_db
def test_texts_and_emails_waiting_together_each_go_through_their_own_channel(tmp_path, smtp_server, monkeypatch,
                                                                             capsys):
    """The console SMS backend does not drop repeats, like email: both wait in groups, and a
    group of one channel never carries the other's messages."""
    from qifu.imports.actions import import_file
    from qifu.reminders.sender import GROUP, send_due
    from tests.factories import ENT1

    monkeypatch.setenv("QIFU_SMS_BACKEND", "console")
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows()))
    n = GROUP  # interleaved, so that the first full group would hold both channels
    for i in range(n):
        channel, to = ("email", f"boss{i}@example.com") if i % 2 else ("sms", f"1390574{i:04d}")
        OutboxMessage.objects.create(key=f"k{i}", entity_id=ENT1, purpose="filing", channel=channel, recipient=to,
                                     body="年报不收费", reason="测试", planned_for=DAYTIME.date(), next_attempt_at=DAYTIME)
    assert send_due(now=DAYTIME)["sent"] == n
    assert sorted(to for tos, _ in smtp_server.messages for to in tos) == sorted(
        f"boss{i}@example.com" for i in range(1, n, 2))
    assert capsys.readouterr().out.count("[短信] 1390574") == n // 2


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["email", "sms"])  # a claimed email; a text batch (no claim)
def test_unreachable_channel_retries_with_backoff_then_fails(tmp_path, settings, monkeypatch, channel):
    from qifu.imports.actions import import_file
    from qifu.reminders.sender import MAX_ATTEMPTS, send_due
    from tests.factories import ENT1

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens on 9
    monkeypatch.setenv("QIFU_SMS_BACKEND", "http")
    monkeypatch.setenv("QIFU_SMS_GATEWAY_URL", "http://127.0.0.1:9/send")
    import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows()))
    now = DAYTIME
    m = OutboxMessage.objects.create(key="k1", entity_id=ENT1, purpose="filing", channel=channel,
                                     recipient="a@b.cn" if channel == "email" else "13905741234",
                                     body="x", reason="测试", planned_for=now.date(), next_attempt_at=now)
    assert send_due(now=now)["retry"] == 1
    m.refresh_from_db()
    assert m.status == "pending" and m.next_attempt_at == now + timezone.timedelta(minutes=2)
    assert send_due(now=now)["sent"] == 0  # not due again yet
    for attempt in range(2, MAX_ATTEMPTS + 1):
        send_due(now=now + timezone.timedelta(days=attempt))
    m.refresh_from_db()
    assert (m.status, m.attempts) == ("failed", MAX_ATTEMPTS)


SETUP = """
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db; db.ensure_ready()
from django.utils import timezone
import datetime as dt
from qifu.engine import uscc as codes
from qifu.reminders.models import OutboxMessage
from qifu.registry.models import Entity
now = timezone.now()
usccs = [codes.make(f"91330282MA{{i:06d}}X") for i in range({n})]
Entity.objects.bulk_create([Entity(uscc=u, name=f"测试{{i}}", entity_type="enterprise", town_id="330282001",
    established_on=dt.date(2020, 1, 1), status="active", imported_at=now) for i, u in enumerate(usccs)])
OutboxMessage.objects.bulk_create([OutboxMessage(key=f"filing:sms:139{{i:08d}}:2027-05-15", entity_id=usccs[i], purpose="filing",
    channel="sms", recipient=f"139{{i:08d}}", body="年报不收费", reason="测试", planned_for=now.date(), next_attempt_at=now)
    for i in range({n})])
"""


@pytest.mark.parametrize("rate, n, kill_after", [
    ("150", 300, 40),  # rate-limited: one message per transaction pair
    # unlimited: batches of 500 per transaction pair, killed inside one; thirty of them, so that a
    # poller held up for a moment on a busy machine still kills the sender before it is done
    ("0", 15000, 1200),
])
def test_a_sender_killed_mid_batch_loses_and_repeats_nothing(tmp_path, process_env, rate, n, kill_after):
    env = dict(process_env, QIFU_SMS_BACKEND="file", QIFU_SMS_RATE=rate,
               QIFU_QUIET_HOURS="off")  # `remind send` reads the wall clock; CI may run at night
    subprocess.run([sys.executable, "-c", SETUP.format(n=n)], env=env, check=True)
    sender = subprocess.Popen([sys.executable, "-m", "qifu", "remind", "send"], env=env, stdout=subprocess.PIPE)
    sms = tmp_path / "var" / "sms"
    deadline = time.time() + 60
    while time.time() < deadline and len(delivered(sms)) < kill_after:
        time.sleep(0.02)
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait()
    half = len(delivered(sms))
    assert 0 < half < n, "the sender must be killed mid-batch"
    done = subprocess.run([sys.executable, "-m", "qifu", "remind", "send"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    keys = [m["key"] for m in delivered(sms)]
    assert len(keys) == len(set(keys)) == n  # every message delivered to the gateway exactly once
    check = ("import os, django; os.environ['DJANGO_SETTINGS_MODULE']='qifu.settings'; django.setup();"
             "from qifu.reminders.models import OutboxMessage, ReminderRecord;"
             "print(OutboxMessage.objects.filter(status='sent').count(), ReminderRecord.objects.count())")
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True).stdout.split()
    assert out == [str(n), str(n)]


def test_an_email_sender_killed_mid_group_loses_and_repeats_nothing(tmp_path, process_env, smtp_server):
    """Emails go in groups of 100 (two transactions per group); the journal tells the restarted
    sender which emails SMTP had accepted. At most the one being handed over is unknown."""
    import re

    from django.conf import settings

    n = 700
    env = dict(process_env, QIFU_QUIET_HOURS="off", QIFU_SMTP_HOST="127.0.0.1", QIFU_SMTP_PORT=str(settings.EMAIL_PORT))
    setup = SETUP.format(n=n).replace('channel="sms", recipient=f"139{i:08d}"', 'channel="email", recipient=f"boss{i}@example.com"')
    setup = setup.replace('key=f"filing:sms:139{i:08d}', 'key=f"filing:email:boss{i}@example.com')
    assert 'channel="email"' in setup
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)
    sender = subprocess.Popen([sys.executable, "-m", "qifu", "remind", "send"], env=env, stdout=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(smtp_server.messages) < 250:  # inside the third group
        time.sleep(0.005)
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait()
    assert 0 < len(smtp_server.messages) < n, "the sender must be killed mid-run"
    done = subprocess.run([sys.executable, "-m", "qifu", "remind", "send"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ids = [re.search(r"Message-ID: (<[^>]+>)", content).group(1) for _, content in smtp_server.messages]
    assert len(ids) == len(set(ids))  # nothing sent twice
    check = ("import os, django; os.environ['DJANGO_SETTINGS_MODULE']='qifu.settings'; django.setup();"
             "from qifu.reminders.models import OutboxMessage, ReminderRecord;"
             "print(OutboxMessage.objects.filter(status='sent').count(), OutboxMessage.objects.filter(status='unknown').count(),"
             "ReminderRecord.objects.count(), OutboxMessage.objects.exclude(status__in=['sent', 'unknown']).count())")
    sent, unknown, history, other = map(int, subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                                                            text=True).stdout.split())
    assert other == 0 and unknown <= 1 and sent + unknown == n  # nothing lost
    assert sent == history and sent <= len(ids) <= sent + unknown  # the journal knew what SMTP had accepted
    assert not list((tmp_path / "var" / "outbox").glob("journal-*.log"))


@pytest.mark.django_db
def test_two_senders_with_the_same_batch_record_each_text_once(tmp_path, monkeypatch):
    """Texts need no claim: a second sender that read the same pending rows re-sends them (the
    channel keeps one copy), marks none of them again and adds no contact-history rows."""
    from qifu.imports.actions import import_file
    from qifu.reminders import sender
    from qifu.reminders.channels import channel_for

    monkeypatch.setenv("QIFU_SMS_BACKEND", "file")
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows()))
    from tests.factories import ENT1, ENT2

    for i, entity in enumerate((ENT1, ENT2, ENT2)):
        OutboxMessage.objects.create(key=f"filing:sms:1390574123{i}:2027-05-15", entity_id=entity, purpose="filing",
                                     channel="sms", recipient=f"1390574123{i}", body="年报不收费", reason="测试",
                                     planned_for=DAYTIME.date(), next_attempt_at=DAYTIME)
    first, second = sender._queue(DAYTIME, None), sender._queue(DAYTIME, None)  # both read before either sends
    counts = [{"sent": 0, "retry": 0, "failed": 0} for _ in range(2)]
    sender._send_batch(first, DAYTIME, channel_for("sms"), counts[0])
    later = DAYTIME + timezone.timedelta(minutes=1)
    sender._send_batch(second, later, channel_for("sms"), counts[1])
    assert [c["sent"] for c in counts] == [3, 0]
    assert ReminderRecord.objects.count() == 2  # one contact per entity at one time
    assert not ReminderRecord.objects.exclude(sent_at=DAYTIME).exists()
    assert set(OutboxMessage.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert len(delivered(tmp_path / "var" / "sms")) == 3  # the same batch file, replaced


@pytest.mark.django_db
def test_quiet_hours_hold_texts_and_emails_until_morning(tmp_path, monkeypatch):
    from qifu.imports.actions import import_file
    from qifu.reminders.sender import send_due
    from tests.factories import ENT1

    monkeypatch.setenv("QIFU_SMS_BACKEND", "file")
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows()))
    night = DAYTIME.replace(hour=22, minute=30)
    OutboxMessage.objects.create(key="k-night", entity_id=ENT1, purpose="filing", channel="sms", recipient="13905741234",
                                 body="x", reason="测试", planned_for=night.date(), next_attempt_at=night)
    assert send_due(now=night)["sent"] == 0
    assert send_due(now=night + timezone.timedelta(hours=9))["sent"] == 0  # 07:30
    assert send_due(now=night + timezone.timedelta(hours=10))["sent"] == 1  # 08:30
    monkeypatch.setenv("QIFU_QUIET_HOURS", "off")
    OutboxMessage.objects.create(key="k-night-2", entity_id=ENT1, purpose="filing", channel="sms", recipient="13905741234",
                                 body="x", reason="测试", planned_for=night.date(), next_attempt_at=night)
    assert send_due(now=night)["sent"] == 1


@pytest.mark.django_db
def test_the_day_plan_job_runs_in_season_only_and_never_twice(small_county, monkeypatch, tmp_path):
    import datetime as dt

    from qifu.imports.actions import import_file
    from qifu.reminders import tasks

    monkeypatch.setenv("QIFU_SMS_BACKEND", "file")
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    for kind in ("registry", "reports", "tax", "social", "reminders"):
        import_file(kind, small_county / f"{kind}.csv")
    tz = ZoneInfo("Asia/Shanghai")
    early = dt.datetime(2027, 5, 15, 8, 0, tzinfo=tz)  # a contact day of the policy
    assert not tasks.plan_due(early) and tasks.plan_due(early.replace(hour=9, minute=1))
    assert not tasks.plan_due(dt.datetime(2027, 8, 1, 10, 0, tzinfo=tz))
    assert tasks.plan_day(early.replace(hour=9, minute=1)) == dt.date(2027, 5, 15)
    made = OutboxMessage.objects.count()
    assert made > 0 and OutboxMessage.objects.filter(status="sent").exists()
    assert tasks.plan_day(early.replace(hour=15)) == dt.date(2027, 5, 15)  # a catch-up after a restart
    assert OutboxMessage.objects.count() == made  # not planned twice
    assert tasks.plan_day(dt.datetime(2027, 8, 1, 10, 0, tzinfo=tz)) is None  # out of season: nothing
    assert OutboxMessage.objects.count() == made


@pytest.mark.django_db
def test_season_report_compares_holdout_and_treated(small_county, monkeypatch, tmp_path):
    """Season 2026 of the synthetic county: the 2025 reports were filed in it, and qifu plans a
    few of its contact days; the report splits the due entities as `remind run` did."""
    import datetime as dt

    import openpyxl

    from qifu.imports.actions import import_file
    from qifu.reminders.actions import run_day
    from qifu.reminders.report import season_report, write_report

    monkeypatch.setenv("QIFU_SMS_BACKEND", "file")
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    for kind in ("registry", "reports", "tax", "social", "reminders"):
        import_file(kind, small_county / f"{kind}.csv")
    for day in (dt.date(2026, 3, 1), dt.date(2026, 5, 15)):
        run_day(day)
    report = season_report(2026, simulate=1500)
    t, h = report["groups"]["treated"], report["groups"]["holdout"]
    # the plan the runs used, and why; every policy on every behaviour model beside it
    from qifu.engine.reminders import season as sim
    from qifu.engine.synth import behaviour as bh

    assert report["plan"]["source"] in ("model", "rule") and set(report["plan"]["check"]) == {"model", "rule"}
    rows = report["simulation"]["rows"]
    assert {(r["model"], r["policy"]) for r in rows} == {(m, p) for m in bh.MODELS for p in sim.POLICIES}
    assert all(r["fewer_than_blanket"] == 0 for r in rows if r["policy"] == "blanket")
    assert 0.02 < h["due"] / (t["due"] + h["due"]) < 0.09
    made = OutboxMessage.objects.filter(purpose="filing")
    assert t["contacts"] + h["contacts"] == made.count()
    assert t["contacts_by_channel"] == {c: made.filter(group="treated", channel=c).count()
                                        for c in set(made.filter(group="treated").values_list("channel", flat=True))}
    # the holdout gets the blanket texts on 1 March and 15 May (an email where there is no mobile)
    assert h["contacts"] > 0 and set(h["contacts_by_channel"]) <= {"sms", "email"}
    assert t["blanket_contacts"] > t["contacts"] and 0 < t["saved_vs_blanket"] < 1
    for g in ("treated", "holdout"):
        curve = report["by_day"][g]
        assert len(curve) == 181 and curve == sorted(curve)
        assert curve[-1] == pytest.approx(report["groups"][g]["on_time_rate"], abs=1e-4)
    low, high = report["effect"]["ci95"]
    assert low < report["effect"]["on_time_difference"] < high
    write_report(report, tmp_path / "r.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["概要", "按日报送率", "按渠道", "各做法仿真对比"] and wb["按日报送率"].max_row == 182
    assert wb["各做法仿真对比"].max_row == 2 + len(rows)
    assert any(c.value == "本季采用的计划" for row in wb["概要"].iter_rows() for c in row)
    write_report(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["season"] == 2026


@pytest.mark.django_db
def test_each_day_follows_a_contact_with_what_it_showed(small_county, monkeypatch, tmp_path):
    """The ladder through the database: a text not followed by a filing becomes a call nine
    days later; an unanswered call (closed so by staff) is called again, an answered one is
    followed by a visit."""
    import datetime as dt

    from qifu.engine.reminders import policy
    from qifu.imports.actions import import_file
    from qifu.reminders.actions import close_task, run_day
    from qifu.reminders.models import ContactTask

    monkeypatch.setenv("QIFU_SMS_BACKEND", "file")
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    for kind in ("registry", "reports", "tax", "social", "reminders"):
        import_file(kind, small_county / f"{kind}.csv")
    text_day = dt.date(2027, *policy.FIRST["text"][0])
    run_day(text_day)
    texted = set(OutboxMessage.objects.filter(planned_for=text_day, group="treated", channel="sms")
                 .values_list("entity_id", flat=True))
    assert len(texted) > 20
    follow = text_day + dt.timedelta(days=policy.FOLLOW_AFTER["sms"])
    run_day(follow - dt.timedelta(days=1))
    assert not OutboxMessage.objects.filter(planned_for=follow - dt.timedelta(days=1), entity_id__in=texted).exists()
    run_day(follow)
    calls = OutboxMessage.objects.filter(planned_for=follow, entity_id__in=texted, channel="call")
    assert calls.count() >= 0.8 * len(texted)
    assert all(m.reason.startswith("本季第2次提醒：上次短信已9天仍未报送") for m in calls)
    unanswered, answered = list(calls[:2])
    close_task(ContactTask.objects.get(message=unanswered), "无人接听")
    close_task(ContactTask.objects.get(message=answered), "已接通，答应按时报送")
    nxt = follow + dt.timedelta(days=policy.FOLLOW_AFTER["call"])
    run_day(nxt)
    today = {m.entity_id: m for m in OutboxMessage.objects.filter(planned_for=nxt)}
    assert today[unanswered.entity_id].channel == "call" and "上次电话未能送达" in today[unanswered.entity_id].reason
    assert today[answered.entity_id].channel == "visit"
    # the visit finds nobody at the registered address: no officer goes there again this season
    close_task(ContactTask.objects.get(message=today[answered.entity_id]), "登记住所查无此主体", "厂房空置")
    unfound = nxt + dt.timedelta(days=policy.FOLLOW_AFTER["visit"])
    result = run_day(unfound)
    assert not OutboxMessage.objects.filter(planned_for=unfound, entity_id=answered.entity_id).exists()
    assert result.skipped["address_empty"] == 1
