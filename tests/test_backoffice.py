"""The staff back office on a checked synthetic county: roles, township isolation, masking,
audit, lists and export, the entity page, tasks and the correction loop."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import openpyxl
import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from qifu.accounts.models import AuditEvent
from qifu.checks.actions import run_check
from qifu.checks.models import Finding
from qifu.corrections import actions as corrections
from qifu.corrections.models import CorrectionNotice, Explanation
from qifu.registry.models import Entity, Note
from qifu.reminders.models import ContactTask, OutboxMessage, ReminderRecord

pytestmark = pytest.mark.django_db


def login(client, county, name):
    client.force_login(county["users"][name])
    return client


def test_each_role_sees_the_dashboard_with_charts(client, checked_county):
    html = login(client, checked_county, "admin").get("/").content.decode()
    assert "2025 年度年报报送进度" in html
    assert 'id="chart-data"' in html and "chart-4.5.1.umd.min.js" in html
    assert "cdn" not in html.lower()
    for name in ("officer", "leader"):
        assert login(Client(), checked_county, name).get("/").status_code == 200


def test_officer_dashboard_counts_only_their_township(client, checked_county):
    town = checked_county["own_town"]
    html = login(client, checked_county, "officer").get("/").content.decode()
    n = Entity.objects.filter(town=town).count()
    assert f"工作台 · {town.name}" in html
    assert f"<b>{n}</b><span>市场主体</span>" in html
    assert n < Entity.objects.count()


def test_account_without_a_role_is_refused(client, checked_county):
    assert login(client, checked_county, "noroles").get("/").status_code == 403


def test_officer_gets_403_for_another_townships_entity(client, checked_county):
    login(client, checked_county, "officer")
    mine = Entity.objects.filter(town=checked_county["own_town"]).first()
    other = Entity.objects.filter(town=checked_county["other_town"]).first()
    assert client.get(reverse("entity", args=[mine.uscc])).status_code == 200
    assert client.get(reverse("entity", args=[other.uscc])).status_code == 403
    assert client.post(reverse("entity-note", args=[other.uscc]), {"text": "x"}).status_code == 403
    assert not Note.objects.filter(entity=other).exists()


def csv_rows(response) -> list[list[str]]:
    return csv_rows_of(b"".join(response.streaming_content) if response.streaming else response.content)


def test_officer_list_and_export_hold_only_their_township(client, checked_county):
    login(client, checked_county, "officer")
    town = checked_county["own_town"]
    # the town filter in the query string is ignored for an officer
    html = client.get("/entities/", {"town": checked_county["other_town"].code}).content.decode()
    assert f"共 {Entity.objects.filter(town=town).count()} 户" in html
    response = client.get("/entities/export.xlsx", {"town": checked_county["other_town"].code})
    rows = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert len(rows) - 1 == Entity.objects.filter(town=town).count()
    assert {r[3] for r in rows[1:]} == {town.name}
    as_csv = client.get("/entities/export.csv", {"town": checked_county["other_town"].code})
    assert {r[3] for r in csv_rows(as_csv)[1:]} == {town.name}


def test_lists_mask_personal_data_and_exports_are_audited(client, checked_county):
    login(client, checked_county, "admin")
    e = Entity.objects.exclude(phone__isnull=True).exclude(legal_rep__isnull=True).filter(phone__regex=r"^1[0-9]{10}$").first()
    html = client.get("/entities/", {"q": e.uscc}).content.decode()
    assert e.uscc in html and e.phone not in html and e.legal_rep not in html
    assert f"{e.phone[:3]}****{e.phone[-4:]}" in html
    response = client.get("/entities/export.xlsx", {"type": "enterprise", "sort": "name"})
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "统一社会信用代码"
    assert len(rows) - 1 == Entity.objects.filter(entity_type="enterprise").count()
    assert [r[1] for r in rows[1:]] == sorted(r[1] for r in rows[1:])
    assert not any(r[7] and re.fullmatch(r"1[0-9]{10}", r[7]) for r in rows[1:])
    event = AuditEvent.objects.filter(action="export").latest("at")
    assert event.user.username == "admin" and f"{len(rows) - 1} 行" in event.detail
    # the same list as CSV (a whole county in seconds): opens in Excel, the same rows, masked, audited
    response = client.get("/entities/export.csv", {"type": "enterprise", "sort": "name"})
    assert response["Content-Type"] == "text/csv; charset=utf-8" and response.streaming  # not held whole in memory
    assert 'filename="entities-' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    as_csv = csv_rows_of(body)
    assert as_csv[0] == list(rows[0])
    assert as_csv[1:] == [["" if v is None else v.strftime("%Y-%m-%d") if hasattr(v, "strftime") else str(v) for v in r]
                          for r in rows[1:]]
    event = AuditEvent.objects.filter(action="export").latest("at")
    assert f"{len(rows) - 1} 行（CSV）" in event.detail and event.user.username == "admin"


def test_a_csv_list_is_sent_in_pieces_and_a_stopped_download_is_audited_with_what_was_sent(client, checked_county,
                                                                                          monkeypatch):
    from django.core.signals import request_finished
    from django.db import close_old_connections
    from django.test import RequestFactory

    from qifu import spreadsheets
    from qifu.web import views

    login(client, checked_county, "admin")
    chunks = spreadsheets.csv_chunks
    monkeypatch.setattr(spreadsheets, "csv_chunks", lambda rows: chunks(rows, rows_per_chunk=7))
    total = Entity.objects.count()
    whole = client.get("/entities/export.csv", {"sort": "uscc"})
    pieces = list(whole.streaming_content)
    assert len(pieces) == (total + 1) // 7 + 1  # the header and seven rows a piece, then the rest
    assert len(csv_rows_of(b"".join(pieces))) == total + 1
    assert AuditEvent.objects.filter(action="export").latest("at").detail.startswith(f"市场主体 {total} 行（CSV）")

    # the view's own response, as the server gets it (the test client's wraps its closing)
    request = RequestFactory().get("/entities/export.csv", {"sort": "uscc"})
    request.user, request.session = checked_county["users"]["admin"], client.session
    stopped = views.entities_export(request, fmt="csv")
    stream = iter(stopped.streaming_content)
    next(stream), next(stream)  # two pieces, then the browser goes away: the server closes the response
    request_finished.disconnect(close_old_connections)  # the test's transaction stays open
    try:
        stopped.close()
    finally:
        request_finished.connect(close_old_connections)
    assert AuditEvent.objects.filter(action="export").latest("at").detail.startswith("市场主体 13 行（CSV）")


def csv_rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

def test_list_filters_sort_and_page(client, checked_county):
    login(client, checked_county, "admin")
    unfiled = client.get("/entities/", {"filed": "no", "status": "active"}).content.decode()
    total = int(re.search(r"共 (\d+) 户", unfiled).group(1))
    from qifu.reports.models import AnnualReport

    expected = Entity.objects.filter(status="active").exclude(
        uscc__in=AnnualReport.objects.filter(report_year=2025).values("entity_id")).count()
    assert total == expected
    page2 = client.get("/entities/", {"sort": "name", "page": 2}).content.decode()
    assert "第 2 / " in page2


def test_unmasked_contact_is_audited_and_not_for_leaders(client, checked_county):
    e = Entity.objects.filter(town=checked_county["own_town"], phone__regex=r"^1[0-9]{10}$").first()
    login(client, checked_county, "officer")
    assert e.phone not in client.get(reverse("entity", args=[e.uscc])).content.decode()
    assert e.phone in client.get(reverse("entity", args=[e.uscc]), {"reveal": "1"}).content.decode()
    assert AuditEvent.objects.filter(user__username="officer", action="view_contact", uscc=e.uscc).count() == 1
    leader = login(Client(), checked_county, "leader")
    assert e.phone not in leader.get(reverse("entity", args=[e.uscc]), {"reveal": "1"}).content.decode()
    assert not AuditEvent.objects.filter(user__username="leader", action="view_contact").exists()


def test_revision_history_and_finding_messages_mask_phones_and_emails(client, checked_county, tmp_path):
    """A correction that changes the phone and email, and a finding that quotes a phone: masked
    on the entity and correction pages for every role; whole only through the audited reveal."""
    import polars as pl

    from qifu.corrections.models import Explanation
    from qifu.imports.actions import import_file

    f = (Finding.objects.filter(report_year=2025, rule_id__in=["FM-01", "SP-01", "XS-07"],
                                entity__town=checked_county["own_town"]).select_related("entity").first()
         or Finding.objects.filter(report_year=2025, rule_id__in=["FM-01", "SP-01", "XS-07"]).select_related("entity").first())
    reports = pl.read_csv(checked_county["folder"] / "reports.csv", infer_schema=False)
    row = reports.filter((pl.col("uscc") == f.entity_id) & (pl.col("report_year") == "2025"))
    old_phone = row["phone"][0]
    assert old_phone and old_phone in f.message
    row.with_columns(pl.lit("13987654321").alias("phone"), pl.lit("new.boss@example.cn").alias("email")) \
        .write_csv(tmp_path / "fix.csv")
    import_file("reports", tmp_path / "fix.csv")
    Explanation.objects.create(finding=f, reason="号码是本公司总机，没有问题")
    Finding.objects.filter(pk=f.pk).update(status="confirmed")
    user = "officer" if f.entity.town_id == checked_county["own_town"].code else "admin"
    for name in {user, "admin", "leader"}:
        page = login(Client(), checked_county, name)
        html = page.get(reverse("entity", args=[f.entity_id])).content.decode()
        assert "第 2 版" in html
        for secret in (old_phone, "13987654321", "new.boss@example.cn"):
            assert secret not in html, (name, secret)
        assert "139****4321" in html and "n***@example.cn" in html
        if name != "officer":
            corrections_html = page.get("/corrections/").content.decode()
            assert "号码是本公司总机" in corrections_html and old_phone not in corrections_html
    admin = login(Client(), checked_county, "admin")
    revealed = admin.get(reverse("entity", args=[f.entity_id]), {"reveal": "1"}).content.decode()
    assert old_phone in revealed and "13987654321" in revealed and f.message in revealed
    assert AuditEvent.objects.filter(user__username="admin", action="view_contact", uscc=f.entity_id).exists()


def test_masking_free_text():
    from qifu.accounts import masking

    text = "电话 13905741234、0574-63001234、1380013800，邮箱 boss@example.cn，营业收入 12500000 万元"
    masked = masking.text(text, ["1380013800"])
    assert masked == "电话 139****1234、0574-****1234、13****3800，邮箱 b***@example.cn，营业收入 12500000 万元"


def test_leader_is_read_only(client, checked_county):
    e = Entity.objects.first()
    login(client, checked_county, "leader")
    assert client.post(reverse("entity-note", args=[e.uscc]), {"text": "看过"}).status_code == 403
    assert client.post(reverse("corrections-notify")).status_code == 403


def test_entity_page_shows_reports_findings_and_a_revision_diff(client, checked_county, tmp_path):
    import polars as pl

    from qifu.imports.actions import import_file

    f = Finding.objects.filter(report_year=2025, rule_id="AR-02", status="open").select_related("entity").first()
    reports = pl.read_csv(checked_county["folder"] / "reports.csv", infer_schema=False)
    row = reports.filter((pl.col("uscc") == f.entity_id) & (pl.col("report_year") == "2025"))
    row.with_columns(pl.col("total_revenue").alias("main_business_revenue")).write_csv(tmp_path / "fix.csv")
    import_file("reports", tmp_path / "fix.csv")
    login(client, checked_county, "admin")
    html = client.get(reverse("entity", args=[f.entity_id])).content.decode()
    assert "第 2 版" in html and "其中:主营业务收入：<del>" in html
    # registered capital as a person writes it: 150 万元, not 150.000000 万元
    from decimal import Decimal

    from qifu.registry.models import Entity

    for capital, shown in ((Decimal("150.000000"), "<dd>150 万元</dd>"), (Decimal("12.5"), "<dd>12.5000 万元</dd>"),
                           (None, "<dt>注册资本</dt><dd>—</dd>")):
        Entity.objects.filter(pk=f.entity_id).update(registered_capital=capital)
        assert shown in client.get(reverse("entity", args=[f.entity_id])).content.decode(), capital
    assert f.message in html  # quotes no phone or email
    client.post(reverse("entity-note", args=[f.entity_id]), {"text": "已电话联系，答应本周更正"})
    assert "已电话联系，答应本周更正" in client.get(reverse("entity", args=[f.entity_id])).content.decode()


def test_the_entity_file_exports_its_parts_masked_and_audited(client, checked_county):
    from qifu.abnormal import actions as abnormal

    abnormal.do_list(2025, now=dt.datetime(2026, 7, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    f = (Finding.objects.filter(report_year=2025, status="open", entity__listings__isnull=False,
                                entity__legal_rep__isnull=False).exclude(entity__phone="").select_related("entity").first())
    e = f.entity
    login(client, checked_county, "admin")
    assert 'id="entity-xlsx"' in client.get(reverse("entity", args=[e.uscc])).content.decode()
    before = AuditEvent.objects.count()
    r = client.get(reverse("entity", args=[e.uscc]), {"format": "xlsx", "reveal": "1"})  # a reveal is not carried
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    facts = dict(book["登记信息"].iter_rows(min_row=2, values_only=True))
    assert facts["统一社会信用代码"] == e.uscc and facts["名称"] == e.name
    assert facts["联系电话"] != e.phone and e.phone[-4:] in facts["联系电话"] and facts["法定代表人"] != e.legal_rep
    body = "".join(str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row if c)
    assert e.phone not in body and e.legal_rep not in body
    assert f.rule_id in {row[2] for row in book["校验问题"].iter_rows(min_row=2, values_only=True)}
    listing = e.listings.get()
    assert [row[0] for row in book["经营异常名录"].iter_rows(min_row=2, values_only=True)] == [listing.number]
    events = AuditEvent.objects.order_by("id")[before:]
    assert [(ev.action, e.uscc in ev.detail) for ev in events] == [("export", True)]  # the export, no reveal
    # another township's entity: refused to an officer, as its page is
    other = Entity.objects.exclude(town=checked_county["own_town"]).first()
    assert login(Client(), checked_county, "officer").get(reverse("entity", args=[other.uscc]),
                                                           {"format": "xlsx"}).status_code == 403


def test_correction_loop_notify_explain_review_and_rate(client, checked_county):
    result = corrections.notify(2025, __import__("datetime").date(2026, 5, 10))
    assert result.notices > 0
    # one notice per entity, each with a block/high finding or two medium ones
    for notice in CorrectionNotice.objects.filter(issued_on="2026-05-10").prefetch_related("findings"):
        assert corrections.needs_notice([f.severity for f in notice.findings.all()])
        msg = notice.message
        assert msg.purpose == "correction" and "年报不收费" in msg.body and "http" not in msg.body
    assert OutboxMessage.objects.filter(purpose="correction").count() == result.notices
    # no mobile and no email: a call task for the township; no number at all: a visit
    for notice in CorrectionNotice.objects.filter(channel__in=["call", "visit"]).select_related("message__task"):
        assert notice.message.task.channel == notice.channel and notice.message.status == "task"
        assert bool(notice.message.recipient) == (notice.channel == "call")
    # idempotent: nothing new to notify the same day or the next
    assert corrections.notify(2025, __import__("datetime").date(2026, 5, 10)).notices == 0
    assert corrections.notify(2025, __import__("datetime").date(2026, 5, 11)).notices == 0
    # before 30 June the filer corrects the report itself by that day
    body = OutboxMessage.objects.filter(purpose="correction").first().body
    assert "请于6月30日前登录企服平台" in body and "截止" not in body
    # after it (a late filing checked in August) the notice names no day that has passed
    f = Finding.objects.filter(report_year=2025, status="open", severity="high").first()
    late = corrections.notice_text(f.entity, 2025, [f], corrections.deadline(2025), __import__("datetime").date(2026, 8, 3))
    assert "6月30日前" not in late and "自助更正已于6月30日截止" in late and "请向所在地市场监管部门申请" in late

    before = corrections.rates(2025)["overall"][0]
    assert before.notified == result.findings
    finding = Finding.objects.filter(notices__isnull=False, status="open").first()
    with pytest.raises(ValueError):
        corrections.explain(finding, "对")
    item = corrections.explain(finding, "当年有一笔大额设备出售，收入属实")
    after = corrections.rates(2025)["overall"][0]
    assert after.handled == before.handled + 1
    by_rule = {r.label: r for r in corrections.rates(2025)["rule"]}
    assert by_rule[finding.rule_id].handled >= 1

    # a new check keeps the explained finding explained
    run_check(2025)
    finding.refresh_from_db()
    assert finding.status == "confirmed"

    # staff reject it: the finding reopens and the rate falls back
    login(client, checked_county, "admin")
    page = client.get("/corrections/").content.decode()
    assert "当年有一笔大额设备出售" in page
    client.post(reverse("explanation-review", args=[item.id]), {"decision": "reject", "note": "与税务数据不符"})
    finding.refresh_from_db()
    assert finding.status == "open"
    assert Explanation.objects.get(pk=item.id).status == "rejected"
    assert corrections.rates(2025)["overall"][0].handled == before.handled


def test_officer_closes_a_call_task_of_their_township(client, checked_county):
    e = Entity.objects.filter(town=checked_county["own_town"]).first()
    other = Entity.objects.filter(town=checked_county["other_town"]).first()
    from django.utils import timezone

    from qifu.reminders import actions as reminders
    from qifu.reminders import sender

    tasks = []
    for ent in (e, other):
        m = OutboxMessage.objects.create(key=f"task-test:{ent.uscc}", entity=ent, purpose="filing", channel="call",
                                         recipient=ent.phone or "", body="", reason="多次短信未送达", planned_for="2026-06-20",
                                         next_attempt_at=timezone.now(), status="task")
        tasks.append(ContactTask.objects.create(message=m, entity=ent, channel="call", due_on="2026-06-20"))
        sender.record_history([m], dt.datetime(2026, 6, 20, 9, 0, tzinfo=sender.SHANGHAI))
    login(client, checked_county, "officer")
    listing = client.get("/tasks/").content.decode()
    assert e.name in listing and other.name not in listing
    assert client.post(reverse("task-close", args=[tasks[1].id]), {"outcome": "已接通，已报送"}).status_code == 404
    client.post(reverse("task-close", args=[tasks[0].id]), {"outcome": "无人接听", "detail": "下午再打"})
    tasks[0].refresh_from_db()
    assert (tasks[0].status, tasks[0].outcome) == ("done", "无人接听：下午再打")
    assert OutboxMessage.objects.get(pk=tasks[0].message_id).status == "failed"
    # the history the next day's run reads (the ladder: an unanswered call is called again)
    at = dt.datetime(2026, 6, 20, 9, 0, tzinfo=sender.SHANGHAI)
    with pytest.raises(ValueError, match="请选择办理结果"):
        reminders.close_task(tasks[1], "打过了")
    assert ReminderRecord.objects.get(entity=e, channel="call", sent_at=at).status == "failed"
    assert ReminderRecord.objects.get(entity=other, channel="call", sent_at=at).status == "unknown"


# -- security sweeps over every URL ------------------------------------------------------------

PUBLIC = {
    "login": "the staff sign-in form",
    "healthz": "liveness probe for the process manager",
    "assistant": "filers ask questions before they sign in (annual-report.md §5)",
    "api:ask": "the assistant's JSON endpoint, same reason",
    "portal:login": "the enterprise sign-in form",
    "portal:verify": "the one-time-code form (needs a pending sign-in, else redirects)",
    "portal:labs": "the shared-lab catalogue: labs publish what they offer; booking needs a sign-in",
    "portal:lab-instrument": "one instrument and its free slots, same reason",
    "portal:lab-verify": "checking a test report by its number and code: for whoever holds the report",
    "portal:expert-achievements": "the public part of the results library: holders publish what they offer",
    "api:openapi-json": "the API's description",
    "api:openapi-view": "the API's documentation page (served from the package)",
    # Open311 GeoReport v2 reads are public by the standard; its POST needs an api_key
    # (tests/test_open311.py refuses one without).
    "open311-openapi": "the Open311 surface's description",
    "open311-discovery": "Open311 discovery",
    "open311-services": "the service list",
    "open311-service": "one service's definition",
    "open311-requests": "public request list (no personal data); POST needs an api_key",
    "open311-request": "one public request",
    "open311-token": "a token's request id",
}
# Machine-to-machine endpoints: no session, no CSRF token; a key or bearer token instead (tested apart).
TOKEN_AUTH = {"api:inbound": "the SMS gateway's replies (退订)",
              **{name: "Open311: api_key per client" for name in PUBLIC if name.startswith("open311-")}}


def _named_urls():
    out = []

    def walk(patterns, prefix="", ns=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, prefix + str(p.pattern), f"{ns}{p.namespace}:" if p.namespace else ns)
            elif p.name:
                out.append((f"{ns}{p.name}", prefix + str(p.pattern)))

    walk(get_resolver().url_patterns)
    return out


def _concrete(pattern: str, uscc: str) -> str:
    path = re.sub(r"<str:uscc>", uscc, pattern)
    path = re.sub(r"<int:\w+>|<finding_id>", "1", path)
    path = re.sub(r"<[^>]+>", "x", path)
    path = re.sub(r"\(\?=[^)]*\)", "", path)  # a look-ahead (the API's) matches no characters
    return "/" + path.replace("^", "").replace("$", "")


def test_every_endpoint_needs_authentication(checked_county):
    uscc = Entity.objects.first().uscc
    anonymous = Client()
    checked = 0
    for name, pattern in _named_urls():
        if name.startswith("admin:") or name in PUBLIC or name == "api:api-root":  # api-root: 404, no resource
            continue
        path = _concrete(pattern, uscc)
        for method in ("get", "post"):
            r = getattr(anonymous, method)(path)
            assert r.status_code in (302, 401, 403, 405), (name, method, path, r.status_code)
            if r.status_code == 302:
                assert "/login/" in r["Location"], (name, r["Location"])
        checked += 1
    assert checked >= 15


def test_every_form_is_csrf_protected(checked_county):
    """Signed in, as staff and as an enterprise, a POST without the token is refused."""
    uscc = Entity.objects.filter(town=checked_county["own_town"]).first().uscc
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(checked_county["users"]["admin"])
    portal = Client(enforce_csrf_checks=True)
    session = portal.session
    session["portal_uscc"] = uscc
    session["portal_pending"] = uscc
    session.save()
    checked = 0
    for name, pattern in _named_urls():
        if name.startswith("admin:") or name in TOKEN_AUTH or name in (
                "healthz", "api:openapi-json", "api:openapi-view", "api:api-root"):
            continue
        path = _concrete(pattern, uscc)
        for client in (staff, portal):
            r = client.post(path, {"text": "x", "reason": "理由理由理由", "code": "000000", "uscc": uscc})
            assert r.status_code in (401, 403, 405) or (r.status_code == 302 and "login" in r["Location"]), (name, r.status_code)
            checked += 1
    assert checked >= 30


def test_dashboard_figures_follow_the_data(checked_county):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from qifu.reminders.models import ReminderRecord
    from qifu.reports.models import AnnualReport
    from qifu.web import stats

    tz = ZoneInfo("Asia/Shanghai")
    con = stats.connect()
    progress = stats.progress(con, 2025, None)
    due = Entity.objects.filter(status="active", established_on__lte=dt.date(2025, 12, 31))
    assert sum(p.due for p in progress["town"]) == sum(p.due for p in progress["section"]) == due.count()
    filed = AnnualReport.objects.filter(report_year=2025, is_current=True, entity__in=due).count()
    assert sum(p.filed for p in progress["type"]) == filed
    assert {p.name[0] for p in progress["section"]} >= {"C", "F"}  # manufacturing and retail, by section letter
    town = checked_county["own_town"]
    mine = {p.name: p for p in stats.progress(con, 2025, town.name)["town"]}
    assert list(mine) == [town.name] and mine[town.name].due == due.filter(town=town).count()

    curve, raw = stats.season_curve(con, 2025, None)
    this = curve["series"]["2025年度"]
    assert len(this) == 181 and this == sorted(this)
    by_june = AnnualReport.objects.filter(report_year=2025, is_current=True, entity__in=due,
                                          filed_at__lt=dt.datetime(2026, 7, 1, tzinfo=tz)).count()
    assert this[-1] == pytest.approx(100 * by_june / due.count(), abs=0.01)

    from qifu.web import queries

    corrections.notify(2025, dt.date(2026, 5, 10))
    finding = Finding.objects.filter(notices__isnull=False, status="open").first()
    corrections.explain(finding, "数值属实，有合同为证")
    for town_code in (None, town.code):
        qs = Finding.objects.filter(entity__town=town_code) if town_code else Finding.objects.all()
        expected = corrections.rates(2025, qs)["overall"][0]
        got = queries.findings_summary(2025, town_code)["rate"]
        assert (got.notified, got.handled) == (expected.notified, expected.handled) and got.notified > 0

    summary = stats.reminders(con, 2025, None, *raw[2025])
    season = ReminderRecord.objects.filter(purpose="filing", sent_at__gte=dt.datetime(2026, 1, 1, tzinfo=tz),
                                           sent_at__lt=dt.datetime(2026, 7, 1, tzinfo=tz))
    assert summary["made"] == season.count() > 0
    assert summary["by_channel"]["sms"] == season.filter(channel="sms").count()
    assert summary["blanket"] > 0


def test_assign_role_creates_accounts_and_checks_towns(checked_county):
    from qifu.accounts.actions import StaffError, assign_role, must_change_password

    town = checked_county["own_town"]
    user, password = assign_role("zhuanguan1", "officer", town.name)
    assert password and user.check_password(password) and not user.is_staff
    assert must_change_password(user)  # a first password, replaced at the first sign-in
    assert assign_role("张三", "leader")[0].username == "张三"
    assert user.staff_profile.town == town
    again, none = assign_role("zhuanguan1", "leader")
    assert none is None and again.staff_profile.role == "leader" and again.staff_profile.town is None
    with pytest.raises(StaffError, match="--town"):
        assign_role("x1", "officer")
    with pytest.raises(StaffError, match="没有这个镇街"):
        assign_role("x2", "officer", "火星镇")
    with pytest.raises(StaffError, match="只有镇街专管员"):
        assign_role("x3", "admin", town.name)


def test_sms_gateway_replies_opt_out_with_its_token(client, settings, monkeypatch, checked_county):
    from qifu.reminders.models import OptOut

    monkeypatch.setenv("QIFU_SMS_GATEWAY_TOKEN", "gw-secret")
    url = reverse("api:inbound")
    body = {"mobile": "13905741234", "content": " 退订 "}
    assert client.post(url, body, content_type="application/json").status_code == 401
    assert client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    r = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION="Bearer gw-secret")
    assert r.json() == {"opted_out": True} and OptOut.objects.filter(recipient="13905741234").exists()
    r = client.post(url, {"mobile": "13905741235", "content": "好的，马上报"}, content_type="application/json",
                    HTTP_AUTHORIZATION="Bearer gw-secret")
    assert r.json() == {"opted_out": False} and not OptOut.objects.filter(recipient="13905741235").exists()
    assert client.post(url, "not json", content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer gw-secret").status_code == 400


def test_control_characters_are_refused_not_stored(client, checked_county):
    """PostgreSQL cannot store NUL; the schemathesis fuzz found it. Every free-text input says so."""
    e = Entity.objects.filter(town=checked_county["own_town"]).first()
    login(client, checked_county, "officer")
    r = client.post(reverse("entity-note", args=[e.uscc]), {"text": "已联系\x01"}, follow=True)
    assert "控制字符" in r.content.decode() and not Note.objects.filter(entity=e).exists()
    # NUL, which no one types, is refused for every page before its view (qifu.web.nul)
    r = client.post(reverse("entity-note", args=[e.uscc]), {"text": "已联系\x00"})
    assert r.status_code == 400 and "text 含有空字符" in r.content.decode()
    assert not Note.objects.filter(entity=e).exists()
    assert client.get("/entities/", {"q": "慈溪\x00"}).status_code == 400
    assert client.get("/entities/", {"q": "慈溪\x01"}).status_code == 200
    finding = Finding.objects.filter(status="open").first()
    with pytest.raises(ValueError, match="控制字符"):
        corrections.explain(finding, "数值无误\x00")
    assert Client().post("/api/assistant/ask", {"question": "年报\x01截止"},
                         content_type="application/json").status_code == 400
    r = Client().post("/api/assistant/ask", {"question": "年报\x00截止"}, content_type="application/json")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "question"]
    from qifu.checks import single

    values, errors = single.parse_figures({"phone": "139\x00", "employees": "3"})
    assert set(errors) == {"phone"} and values == {"employees": 3}


def test_staff_sign_in_locks_after_five_wrong_passwords(checked_county):
    """django-axes: five wrong passwords from one address lock the account there; the right
    password is then refused too (it used to be accepted after 25 wrong ones)."""
    client = Client()
    for _ in range(25):
        r = client.post("/login/", {"username": "officer", "password": "wrong"})
        assert r.status_code in (200, 429)
    r = client.post("/login/", {"username": "officer", "password": "officer-pw-for-tests"})
    assert r.status_code == 429 and "登录已暂停" in r.content.decode()
    assert client.get("/").status_code == 302  # not signed in
    # another account, or the same one from another address, is not locked
    assert Client().post("/login/", {"username": "admin", "password": "admin-pw-for-tests"}).status_code == 302
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert other.post("/login/", {"username": "officer", "password": "officer-pw-for-tests"}).status_code == 302


def test_exports_write_formula_like_text_as_text(client, checked_county, tmp_path):
    """A name beginning with =, +, - or @ stays text in every Excel export, never a live formula."""
    import polars as pl

    from qifu.checks.actions import write_findings

    evil = ["=HYPERLINK(\"http://x.example\",\"点此\")", "+1+1", "-2+3", "@SUM(A1)"]
    entities = list(Entity.objects.order_by("uscc")[:4])
    for e, name in zip(entities, evil):
        Entity.objects.filter(pk=e.pk).update(name=name)
    login(client, checked_county, "admin")
    data = client.get("/entities/export.xlsx", {"sort": "uscc"}).content
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    cells = {ws.cell(row=r, column=2).value: ws.cell(row=r, column=2) for r in range(2, 6)}
    for name in evil:
        assert cells[name].data_type == "s" and cells[name].quotePrefix, name
    names = [r[1] for r in csv_rows(client.get("/entities/export.csv", {"sort": "uscc"}))[1:5]]
    assert names == ["'" + name for name in evil]  # shown by Excel as text, never run
    write_findings(pl.DataFrame({"uscc": ["x"], "report_year": [2025], "rule_id": ["SP-01"], "severity": ["medium"],
                                 "fields": ["phone"], "message": ["=1+1"], "suggestion": ["@x"]}), tmp_path / "f.xlsx")
    row = list(openpyxl.load_workbook(tmp_path / "f.xlsx").active.iter_rows(min_row=2))[0]
    assert [c.data_type for c in row[5:7]] == ["s", "s"]


def test_an_explanation_is_reviewed_once(client, checked_county):
    finding = Finding.objects.filter(status="open").first()
    item = corrections.explain(finding, "年末新购厂房，资产属实")
    login(client, checked_county, "admin")
    client.post(reverse("explanation-review", args=[item.id]), {"decision": "accept"})
    r = client.post(reverse("explanation-review", args=[item.id]), {"decision": "reject"}, follow=True)
    assert "不能再次复核" in r.content.decode()
    item.refresh_from_db()
    finding.refresh_from_db()
    assert (item.status, finding.status) == ("accepted", "confirmed")


def test_a_call_task_follows_its_entity_to_another_township(client, checked_county, tmp_path):
    import polars as pl
    from django.utils import timezone

    from qifu.imports.actions import import_file

    own, other = checked_county["own_town"], checked_county["other_town"]
    ent = Entity.objects.filter(town=other).order_by("uscc").first()
    m = OutboxMessage.objects.create(key=f"task-move:{ent.uscc}", entity=ent, purpose="filing", channel="call",
                                     recipient="", body="", reason="短信未送达", planned_for="2026-06-20",
                                     next_attempt_at=timezone.now(), status="task")
    ContactTask.objects.create(message=m, entity=ent, channel="call", due_on="2026-06-20")
    officer = login(client, checked_county, "officer")
    assert ent.name not in officer.get("/tasks/").content.decode()
    registry = pl.read_csv(checked_county["folder"] / "registry.csv", infer_schema=False)
    registry.filter(pl.col("uscc") == ent.uscc).with_columns(pl.lit(own.name).alias("town")).write_csv(tmp_path / "moved.csv")
    import_file("registry", tmp_path / "moved.csv")
    assert ent.name in officer.get("/tasks/").content.decode()


def test_staff_change_their_own_password(client, checked_county):
    login(client, checked_county, "leader")
    assert client.get("/password/").status_code == 200
    r = client.post("/password/", {"old_password": "wrong", "new_password1": "x", "new_password2": "x"})
    assert r.status_code == 200 and "error" in r.content.decode()
    client.post("/password/", {"old_password": "leader-pw-for-tests", "new_password1": "Qifu-2026-leader",
                               "new_password2": "Qifu-2026-leader"})
    assert client.get("/").status_code == 200  # still signed in
    assert Client().post("/login/", {"username": "leader", "password": "Qifu-2026-leader"}).status_code == 302


def test_an_administrator_made_by_the_command_can_use_django_admin(checked_county):
    from qifu.accounts.actions import assign_role

    user, password = assign_role("new-admin", "admin")
    client = Client()
    assert client.post("/login/", {"username": "new-admin", "password": password}).status_code == 302
    assert client.get("/admin/").url == "/password/"  # not even Django admin on a first password
    new = "new-admin-own-pw-2026"
    assert client.post("/password/", {"old_password": password, "new_password1": new, "new_password2": new}).status_code == 302
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/registry/entity/").status_code == 200
    assign_role("new-admin", "leader")  # moved to a read-only role: no admin any more
    assert client.get("/admin/registry/entity/").status_code == 302


def test_the_client_address_comes_from_a_trusted_proxy_only(monkeypatch):
    from django.test import RequestFactory

    from qifu.accounts.clients import _trusted, client_ip

    rf = RequestFactory()
    forged = rf.get("/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert client_ip(forged) == "203.0.113.5"  # no trusted proxy configured: the header is ignored
    monkeypatch.setenv("QIFU_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    _trusted.cache_clear()
    proxied = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.23, 10.0.0.2")
    assert client_ip(proxied) == "198.51.100.23"  # the right-most address the proxies did not add
    assert client_ip(forged) == "203.0.113.5"  # not from a trusted proxy: its header is not believed


def test_correction_notices_follow_the_rules_of_decency(checked_county):
    """Notices use the reminders' own rules (reminders.decency): an entity texted two days ago
    is notified a week later, not now; an opted-out mobile gets an email instead; +86 numbers
    are mobiles for both."""
    import datetime as dt

    from django.utils import timezone

    from qifu.reminders.models import OptOut, ReminderRecord

    today = dt.date(2026, 5, 10)
    quiet = Entity.objects.exclude(reminders__sent_at__gte=timezone.make_aware(dt.datetime(2026, 1, 1)))
    candidates = list(Finding.objects.filter(report_year=2025, status="open", severity__in=["block", "high"],
                                             entity__in=quiet)
                      .order_by("entity_id").values_list("entity_id", flat=True).distinct()[:3])
    recent, opted, plus86 = (Entity.objects.get(pk=u) for u in candidates)
    ReminderRecord.objects.create(entity=recent, sent_at=timezone.make_aware(dt.datetime(2026, 5, 8, 9)),
                                  channel="sms", purpose="filing", status="delivered", imported_at=timezone.now())
    from qifu.reports.models import AnnualReport

    AnnualReport.objects.filter(entity=opted, report_year=2025).update(phone="13905740001", email="boss@example.cn")
    Entity.objects.filter(pk=opted.pk).update(phone="13905740001", email="boss@example.cn")
    OptOut.objects.create(recipient="13905740001")
    AnnualReport.objects.filter(entity=plus86, report_year=2025).update(phone="+86-13905740002")
    result = corrections.notify(2025, today)
    assert result.deferred >= 1
    assert not CorrectionNotice.objects.filter(entity=recent).exists()
    assert CorrectionNotice.objects.get(entity=opted).message.channel == "email"
    assert CorrectionNotice.objects.get(entity=opted).message.recipient == "boss@example.cn"
    assert CorrectionNotice.objects.get(entity=plus86).message.recipient == "+86-13905740002"
    later = corrections.notify(2025, today + dt.timedelta(days=7))
    assert CorrectionNotice.objects.filter(entity=recent).exists() and later.notices >= 1


def test_only_filing_and_correction_messages_count_against_an_entitys_season(checked_county):
    """A message filed under an entity but not a filing contact (to its request's department, to
    an expert, a policy notice), waiting with an unknown fate, neither spaces nor caps the
    entity's notices; a filing reminder waiting the same way does."""
    import datetime as dt

    from django.utils import timezone

    from qifu.reminders.models import OutboxMessage

    today = dt.date(2026, 5, 10)
    quiet = Entity.objects.exclude(reminders__sent_at__gte=timezone.make_aware(dt.datetime(2026, 1, 1)))
    busy, texted = (Entity.objects.get(pk=u) for u in Finding.objects.filter(
        report_year=2025, status="open", severity__in=["block", "high"], entity__in=quiet)
        .order_by("entity_id").values_list("entity_id", flat=True).distinct()[:2])
    at = timezone.make_aware(dt.datetime(2026, 5, 8, 9))
    for i, purpose in enumerate(("request", "expert", "policy", "request")):
        OutboxMessage.objects.create(key=f"other:{i}", entity=busy, purpose=purpose, channel="sms", recipient="13905740009",
                                     body="x", reason="x", planned_for=at.date(), next_attempt_at=at, status="unknown")
    OutboxMessage.objects.create(key="filing:waiting", entity=texted, purpose="filing", channel="sms",
                                 recipient="13905740008", body="x", reason="x", planned_for=at.date(), next_attempt_at=at,
                                 status="unknown")
    corrections.notify(2025, today)
    assert CorrectionNotice.objects.filter(entity=busy).exists()
    assert not CorrectionNotice.objects.filter(entity=texted).exists()


def test_messages_whose_sending_is_unknown_are_settled_by_the_administrator(client, checked_county):
    """Messages 状态未知 (a send cut short, or due before a restore) are counted on the
    administrator's dashboard and settled in Django admin: sent again or dropped, each written
    to the admin's history; a message in another state is left as it is."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from qifu.reminders import sender
    from qifu.reminders.models import OutboxMessage

    firm, now = Entity.objects.order_by("uscc").first(), timezone.now()
    made = {}
    for key, status in (("a", "unknown"), ("b", "unknown"), ("c", "pending")):
        made[key] = OutboxMessage.objects.create(
            key=f"settle:{key}", entity=firm, purpose="filing", channel="email", recipient="owner@example.com",
            body="请按时报送年报", reason="测试", planned_for=now.date(), status=status, attempts=5,
            next_attempt_at=now - dt.timedelta(days=1), last_error=sender.AFTER_RESTORE, created_at=now)
    me = checked_county["users"]["admin"]
    get_user_model().objects.filter(pk=me.pk).update(is_staff=True, is_superuser=True)  # as assign_role makes them
    client.force_login(get_user_model().objects.get(pk=me.pk))
    card = client.get("/").content.decode().split('id="outbox-unknown"')[1].split("</section>")[0]
    assert "2 条短信或邮件“状态未知”" in card and "status__exact=unknown" in card

    changelist = "/admin/reminders/outboxmessage/"
    r = client.post(changelist, {"action": "resend", "_selected_action": [made["a"].pk, made["c"].pk]}, follow=True)
    assert "已重新放入发件箱 1 条；另有 1 条不是“状态未知”，未处理" in r.content.decode()
    a = OutboxMessage.objects.get(pk=made["a"].pk)
    assert (a.status, a.attempts, a.last_error) == ("pending", 0, "") and a.next_attempt_at >= now
    assert OutboxMessage.objects.get(pk=made["c"].pk).attempts == 5  # not touched
    client.post(changelist, {"action": "drop", "_selected_action": [made["b"].pk]})
    b = OutboxMessage.objects.get(pk=made["b"].pk)
    assert (b.status, b.last_error) == ("failed", sender.DROPPED)
    assert sorted(LogEntry.objects.filter(user=me).values_list("object_id", "change_message")) == [
        (str(made["a"].pk), "核对后重发"), (str(made["b"].pk), "核对后作废")]
    assert 'id="outbox-unknown"' not in client.get("/").content.decode()
