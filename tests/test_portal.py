"""The enterprise portal: one-time-code sign-in over real SMTP, findings, explanations, and the
single-report self-check held to the batch engine."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from django.test import Client
from django.utils import timezone

from qifu.checks import single
from qifu.checks.models import Finding
from qifu.portal import signin
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
    assert "验证码已发送至邮箱" in r.content.decode()
    assert smtp_server.messages[-1][0] == [e.email]
    assert client.get("/portal/").status_code == 302  # not signed in yet
    r = client.post("/portal/verify/", {"code": code_from(smtp_server)}, follow=True)
    assert e.name in r.content.decode()
    assert client.get("/api/v1/me").json()["uscc"] == e.uscc
    # the code is one-time, stored hashed, and not in the contact history
    record = SignInCode.objects.get(uscc=e.uscc)
    assert record.used_at and code_from(smtp_server) not in record.code_hash
    assert not ReminderRecord.objects.filter(entity=e, purpose="signin").exists()
    assert OutboxMessage.objects.get(purpose="signin", entity=e).status == "sent"


def test_codes_are_rate_limited_and_brute_force_locks_out(smtp_server, checked_county):
    e = with_email()
    now = timezone.now()
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


def test_hourly_cap_and_unknown_or_invalid_codes(smtp_server, checked_county):
    e = with_email()
    now = timezone.now()
    for i in range(signin.MAX_PER_HOUR):
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(minutes=2 * i))
    with pytest.raises(signin.SignInError, match="一小时内"):
        signin.request_code(e.uscc, "email", now=now + dt.timedelta(minutes=11))
    with pytest.raises(signin.SignInError, match="统一社会信用代码有误"):
        signin.request_code(e.uscc[:-1] + ("0" if e.uscc[-1] != "0" else "1"), "email")
    no_email = Entity.objects.filter(email__isnull=True).first()
    with pytest.raises(signin.SignInError, match="没有可用的邮箱"):
        signin.request_code(no_email.uscc, "email")


def signed_in(uscc: str) -> Client:
    client = Client()
    session = client.session
    session["portal_uscc"] = uscc
    session.save()
    return client


def test_portal_shows_own_findings_and_takes_an_explanation(checked_county):
    f = Finding.objects.filter(report_year=2025, status="open", severity="high").select_related("entity").first()
    other = Finding.objects.filter(report_year=2025, status="open").exclude(entity=f.entity).first()
    client = signed_in(f.entity_id)
    html = client.get("/portal/").content.decode()
    assert f.message in html and other.message not in html
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
