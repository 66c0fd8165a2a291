"""The enterprise portal: one-time-code sign-in over real SMTP, findings, explanations, and the
single-report self-check held to the batch engine."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
import pytest
from django.test import Client
from django.utils import timezone

from qifu.checks import single
from qifu.checks.models import Finding
from qifu.portal import signin
from qifu.portal import views as portal_views
from qifu.portal.models import SignInCode
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage, ReminderRecord
from qifu.reports.models import AnnualReport
from tests.mailbox import code_from

pytestmark = pytest.mark.django_db


def with_email(**filters) -> Entity:
    return Entity.objects.filter(email__contains="@", **filters).order_by("uscc").first()


def test_sign_in_with_a_code_sent_to_the_registered_email(smtp_server, checked_county):
    e = with_email()
    client = Client()
    r = client.post("/portal/login/", {"uscc": e.uscc.lower(), "channel": "email"}, follow=True)
    assert "验证码已发送到登记的邮箱" in r.content.decode()
    assert smtp_server.messages[-1][0] == [e.email]
    assert client.get("/portal/").status_code == 302  # not signed in yet
    code = code_from(smtp_server)
    r = client.post("/portal/verify/", {"code": code}, follow=True)
    assert e.name in r.content.decode()
    assert client.get("/api/v1/me").json()["uscc"] == e.uscc
    # the code is one-time and stored hashed; the outbox keeps the text with the code blanked
    record = SignInCode.objects.get(uscc=e.uscc)
    assert record.used_at and code not in record.code_hash
    message = OutboxMessage.objects.get(purpose="signin", entity=e)
    assert message.status == "sent" and code not in message.body and "******" in message.body
    assert not ReminderRecord.objects.filter(entity=e, purpose="signin").exists()


def test_no_usable_code_is_readable_in_the_admin(smtp_server, checked_county):
    e = with_email()
    signin.request_code(e.uscc, "email")
    code = code_from(smtp_server)
    admin = checked_county["users"]["admin"]
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client()
    client.force_login(admin)
    message = OutboxMessage.objects.get(purpose="signin", entity=e)
    for url in ("/admin/reminders/outboxmessage/", f"/admin/reminders/outboxmessage/{message.id}/change/",
                "/admin/portal/signincode/"):
        r = client.get(url)
        assert r.status_code in (200, 404) and code not in r.content.decode()


def test_codes_are_rate_limited_and_brute_force_locks_out(smtp_server, checked_county):
    e = with_email()
    now = timezone.now().replace(minute=0, second=0)  # the lockout's half-hour starts here
    signin.request_code(e.uscc, "email", now=now)
    with pytest.raises(signin.SignInError, match="1 分钟后"):
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(seconds=30))
    real = code_from(smtp_server)
    wrong = f"{(int(real) + 1) % 10**6:06d}"
    for i in range(signin.MAX_FAILURES):
        with pytest.raises(signin.SignInError):
            signin.verify(e.uscc, wrong, now=now + dt.timedelta(seconds=i))
    # locked: even the right code is refused, and no new code is sent
    with pytest.raises(signin.SignInError, match="暂停登录"):
        signin.verify(e.uscc, real, now=now + dt.timedelta(minutes=1))
    with pytest.raises(signin.SignInError, match="暂停登录"):
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(minutes=2))
    # after the lockout a new code works
    later = now + signin.LOCKOUT + dt.timedelta(minutes=1)
    signin.request_code(e.uscc, "email", now=later)
    assert signin.verify(e.uscc, code_from(smtp_server), now=later + dt.timedelta(seconds=5)) == e


def test_a_right_code_does_not_use_up_a_failure(smtp_server, checked_county):
    e = with_email()
    now = timezone.now().replace(minute=0, second=0)
    for start in (0, 2):  # twice in one half-hour: four wrong, then the right one
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(minutes=start))
        real = code_from(smtp_server)
        for i in range(signin.MAX_FAILURES - 1):
            with pytest.raises(signin.SignInError, match="验证码不正确"):
                signin.verify(e.uscc, f"{(int(real) + 1) % 10**6:06d}", now=now + dt.timedelta(minutes=start, seconds=i))
        assert signin.verify(e.uscc, real, now=now + dt.timedelta(minutes=start, seconds=30)) == e


def test_hourly_cap_and_invalid_codes(smtp_server, checked_county):
    e = with_email()
    now = timezone.now().replace(minute=0, second=0)
    for i in range(signin.MAX_PER_HOUR):
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(minutes=2 * i))
    with pytest.raises(signin.SignInError, match="一小时内"):
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(minutes=11))
    with pytest.raises(signin.SignInError, match="统一社会信用代码有误"):
        signin.request_code(e.uscc[:-1] + ("0" if e.uscc[-1] != "0" else "1"), "email")


def test_a_known_and_an_unknown_credit_code_look_the_same(smtp_server, checked_county):
    """Registered with an email, registered without one, not registered: the same answer, the
    same page; only the first gets a code."""
    from qifu.engine import uscc as codes

    known = with_email()
    no_email = Entity.objects.filter(email__isnull=True).order_by("uscc").first()
    unknown = codes.make("91330282MA2YYYYYY")
    assert not Entity.objects.filter(uscc=unknown).exists()
    pages = []
    for code in (known.uscc, no_email.uscc, unknown):
        r = Client().post("/portal/login/", {"uscc": code, "channel": "email"}, follow=True)
        html = r.content.decode()
        pages.append(re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html).replace(code, "<code>"))
        assert r.redirect_chain[-1][0] == "/portal/verify/"
    assert pages[0] == pages[1] == pages[2]
    assert len(smtp_server.messages) == 1 and smtp_server.messages[0][0] == [known.email]
    # guessing against an unknown code says what it says for a known one without a valid code
    with pytest.raises(signin.SignInError, match="验证码已失效"):
        signin.verify(unknown, "123456")


def test_one_client_address_cannot_drain_the_sms_budget(smtp_server, checked_county, settings):
    """Thirty codes for thirty entities from one address: the address's hourly limit stops it;
    the county-wide hourly limit stops many addresses."""
    entities = list(Entity.objects.filter(email__contains="@").order_by("uscc")[:30])
    now = timezone.now().replace(minute=0, second=0)
    refused = 0
    for i, e in enumerate(entities):
        try:
            signin.request_code(e.uscc, "email", ip="203.0.113.9", now=now + dt.timedelta(seconds=i))
        except signin.SignInError as err:
            assert "本网络获取验证码过于频繁" in str(err)
            refused += 1
    assert refused == 30 - 10 and len(smtp_server.messages) == 10
    import os

    os.environ["QIFU_SIGNIN_PER_HOUR"] = "12"
    try:
        with pytest.raises(signin.SignInError, match="请稍后再试"):
            for i, e in enumerate(entities[10:]):
                signin.request_code(e.uscc, "email", ip=f"198.51.100.{i}", now=now + dt.timedelta(seconds=40 + i))
    finally:
        del os.environ["QIFU_SIGNIN_PER_HOUR"]
    assert len(smtp_server.messages) == 12


CONCURRENT_GUESSES = """
import os, threading, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db
db.ensure_ready()
import datetime as dt
from django.db import connection
from django.utils import timezone
from qifu.engine import uscc as codes
from qifu.portal import signin
from qifu.portal import views as portal_views
from qifu.portal.models import SignInCode
from qifu.accounts.models import RateCounter
u = codes.make("91330282MA2GUEAA0")
now = timezone.now()
SignInCode.objects.create(uscc=u, code_hash=signin._hash(u, "424242"), channel="sms", sent_to="x",
                          created_at=now, expires_at=now + dt.timedelta(minutes=10))
outcomes = []
start = threading.Barrier(60)
def guess(i):
    start.wait()
    try:
        signin.verify(u, f"{i:06d}")
    except signin.SignInError as e:
        outcomes.append("locked" if "请于" in str(e) else "wrong")  # refused before comparing
    except Exception as e:
        outcomes.append(type(e).__name__)
    else:
        outcomes.append("in")
    finally:
        connection.close()
threads = [threading.Thread(target=guess, args=(i,)) for i in range(60)]
[t.start() for t in threads]
[t.join() for t in threads]
print(outcomes.count("wrong"), outcomes.count("locked"), sum(SignInCode.objects.values_list("failures", flat=True)),
      len(outcomes))
try:
    signin.verify(u, "424242")
    print("right code accepted")
except signin.SignInError as e:
    print("right code refused")
"""


def test_sixty_concurrent_wrong_codes_count_as_five_failures(process_env):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CONCURRENT_GUESSES], env=process_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    wrong, locked, failures, total, *verdict = out.stdout.split()
    assert (int(wrong), int(locked), int(failures), int(total)) == (5, 55, 5, 60), out.stdout
    assert " ".join(verdict) == "right code refused"


def signed_in(uscc: str) -> Client:
    client = Client()
    session = client.session
    session["portal_uscc"] = uscc
    session.save()
    return client


def test_portal_shows_own_findings_and_takes_an_explanation(checked_county, monkeypatch):
    f = Finding.objects.filter(report_year=2025, status="open", severity="high").select_related("entity").first()
    other = Finding.objects.filter(report_year=2025, status="open").exclude(entity=f.entity).first()
    client = signed_in(f.entity_id)
    html = client.get("/portal/").content.decode()
    assert f.message in html and other.message not in html
    # the season's window: before 30 June the filer corrects in gsxt by then; after it, the
    # self-service correction is closed and the page says where to ask instead
    due = dt.date(single.season_year() + 1, 6, 30)
    for today, past in ((due, False), (due + dt.timedelta(days=1), True)):
        monkeypatch.setattr(portal_views.timezone, "localdate", lambda today=today: today)
        html = client.get("/portal/").content.decode()
        assert ('id="past-deadline"' in html) == past and ("国家企业信用信息公示系统更正年报" in html) == (not past)
    monkeypatch.undo()
    assert client.post(f"/portal/findings/{other.id}/explain/", {"reason": "数据无误无误"}).status_code == 404
    client.post(f"/portal/findings/{f.id}/explain/", {"reason": "年末新购厂房，资产属实"})
    f.refresh_from_db()
    assert f.status == "confirmed"
    api = client.get("/api/v1/findings").json()
    assert {x["id"] for x in api} == set(Finding.objects.filter(entity=f.entity, report_year=2025).values_list("id", flat=True))


def test_api_needs_a_session_and_csrf(checked_county):
    assert Client().get("/api/v1/findings").status_code == 401
    e = Entity.objects.filter(entity_type="enterprise").first()
    strict = Client(enforce_csrf_checks=True)
    session = strict.session
    session["portal_uscc"] = e.uscc
    session.save()
    r = strict.post("/api/v1/selfcheck", {"figures": {"employees": 3}}, content_type="application/json")
    assert r.status_code == 403


def test_selfcheck_flags_a_yuan_figure_and_suggests_the_wan_yuan_value(checked_county):
    prev = (AnnualReport.objects.filter(report_year=2024, is_current=True, entity__entity_type="enterprise",
                                        total_revenue__gte=100).select_related("entity").order_by("entity_id").first())
    client = signed_in(prev.entity_id)
    wan = float(prev.total_revenue)
    r = client.post("/api/v1/selfcheck", {"figures": {"total_revenue": wan * 10000 * 1.05}},
                    content_type="application/json")
    body = r.json()
    um = [p for p in body["problems"] if p["rule_id"] == "UM-01"]
    assert um and um[0]["fields"] == ["total_revenue"]
    assert float(um[0]["suggestion"]) == pytest.approx(wan * 1.05, rel=1e-6)
    assert "万元" in um[0]["message"]
    # the same figure in 万元 raises no unit problem
    ok = client.post("/api/v1/selfcheck", {"figures": {"total_revenue": wan * 1.05}}, content_type="application/json").json()
    assert not [p for p in ok["problems"] if p["rule_id"].startswith("UM")]
    bad = client.post("/api/v1/selfcheck", {"figures": {"employees": "十个", "coop_members": 3}},
                      content_type="application/json").json()
    assert set(bad["errors"]) == {"employees", "coop_members"}


def test_selfcheck_page_renders_the_form_and_results(checked_county):
    rep = AnnualReport.objects.filter(report_year=2025, is_current=True, entity__entity_type="enterprise").first()
    client = signed_in(rep.entity_id)
    html = client.get("/portal/selfcheck/").content.decode()
    assert "营业总收入" in html and "成员人数" not in html
    data = {k: ("" if v is None else v) for k, v in single.report_values(rep).items() if k in html}
    data["total_liabilities"] = float(rep.total_assets or 0) + 100
    data["total_equity"] = -999999
    html = client.post("/portal/selfcheck/", data).content.decode()
    assert "处需要核实" in html and "AR-01" in html


def test_single_report_context_matches_the_batch_findings(checked_county):
    """For every current 2025 report, the self-check engine, given the stored report, finds what
    the batch DuckDB run stored: same rules, same messages, same suggestions."""
    batch = pl.DataFrame(list(Finding.objects.filter(report_year=2025).exclude(status="resolved").values(
        "entity_id", "rule_key", "message", "suggestion")))
    expected = {(r["entity_id"], r["rule_key"]): (r["message"], r["suggestion"]) for r in batch.to_dicts()}
    got = {}
    reports = AnnualReport.objects.filter(report_year=2025, is_current=True).select_related("entity", "entity__town")
    for rep in reports:
        for f in single.check(rep.entity, 2025, single.report_values(rep), revision=rep.revision, filed_at=rep.filed_at):
            got[(f["uscc"], f["rule_key"])] = (f["message"], f["suggestion"])
    assert reports.count() > 1000
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not missing and not extra, (sorted(missing)[:5], sorted(extra)[:5])
    assert got == expected


@pytest.mark.django_db(transaction=True)
def test_a_code_is_sent_after_the_answer(smtp_server, tmp_path, monkeypatch):
    """The real path: the answer is given, then a thread of the process sends the code."""
    from qifu.imports.actions import import_file
    from tests.conftest import ensure_reference_data
    from tests.factories import ENT1, REGISTRY_HEADER, write

    ensure_reference_data()
    rows = [f"{ENT1},慈溪市华鑫电器有限公司,enterprise,浒山街道,2018-05-02,active,500,,C3854,boss@example.com"]
    import_file("registry", write(tmp_path / "r.csv", REGISTRY_HEADER + ",email", rows))
    monkeypatch.setattr(signin, "DISPATCH", "background")
    answer = signin.request_code(ENT1, "email")
    assert "验证码已发送到登记的邮箱" in answer.message
    signin.wait_sent()
    assert smtp_server.messages[-1][0] == ["boss@example.com"]
    assert signin.verify(ENT1, code_from(smtp_server)).uscc == ENT1
    assert OutboxMessage.objects.get(purpose="signin").status == "sent"
