"""Enterprise requests (企业诉求) on a checked synthetic county: the history import, intake,
the workflow and its clocks, notifications, roles, the staff and portal pages, Open311."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from django.test import Client
from django.utils import timezone

from qifu.engine.errors import InvalidFile
from qifu.engine.requests.workflow import IllegalMove, Move, State
from qifu.imports.actions import import_file
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage
from qifu.service_requests import actions, apikeys
from qifu.service_requests.models import Department, ServiceRequest

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
STAFF = actions.Actor("测试人员")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


@pytest.fixture
def county(checked_county):
    """The checked county with its request history imported (in the test's transaction)."""
    import_file("requests", checked_county["folder"] / "requests.csv")
    return checked_county


def entity() -> Entity:
    return Entity.objects.filter(status="active", phone__regex=r"^1[3-9][0-9]{9}$").order_by("uscc").first()


MONDAY = at(2026, 3, 2, 10)


def submit(text="园区这周停电三次，生产线停了，希望供电部门尽快解决", when=MONDAY, **kw) -> ServiceRequest:
    return actions.do_submit_request(text=text, channel="station", actor=STAFF, entity=kw.pop("entity", entity()),
                                     now=when, **kw)


# --- the history import -------------------------------------------------------------------------


def test_the_history_imports_into_one_queue_and_again_changes_nothing(county):
    rows = pl.read_csv(county["folder"] / "requests.csv", infer_schema=False)
    stored = ServiceRequest.objects.filter(imported_at__isnull=False)
    assert stored.count() == rows.height > 50
    assert stored.filter(status=State.CLOSED).count() == rows.filter(pl.col("status") == "closed").height
    unclassified = rows.filter(pl.col("category").is_null())["request_id"].to_list()
    assert ServiceRequest.objects.filter(number__in=unclassified, category_confirmed=False).count() == len(unclassified)
    assert not ServiceRequest.objects.filter(category="").exists()  # the model classified those
    again = import_file("requests", county["folder"] / "requests.csv")
    assert (again.inserted, again.updated) == (0, 0)


def test_a_request_closed_since_updates_and_says_so(county, tmp_path):
    rows = pl.read_csv(county["folder"] / "requests.csv", infer_schema=False)
    one = rows.filter(pl.col("status") == "open").head(1)
    assert one.height == 1
    one.with_columns(pl.lit("closed").alias("status"), pl.lit("2026-11-30 10:00:00").alias("closed_at"),
                     pl.lit("满意").alias("satisfaction")).write_csv(tmp_path / "closed.csv")
    result = import_file("requests", tmp_path / "closed.csv")
    assert (result.inserted, result.updated) == (0, 1)
    req = ServiceRequest.objects.get(number=one["request_id"][0])
    assert (req.status, req.satisfaction) == (State.CLOSED, "satisfied")
    assert req.events.filter(move="edit", note__contains="status").exists()


def test_bad_rows_in_a_request_file_are_named(county, tmp_path):
    header = "request_id,uscc,submitted_at,channel,category,text,status"
    (tmp_path / "bad.csv").write_text(header + "\n" + "\n".join([
        "X1,,2026-01-05 09:00,hotline,tax,开票问题,open",
        "X2,91330282MA2YYYYYY0,2026-01-05 09:00,hotline,tax,开票问题,open",
        "X3,,2026-01-05 09:00,fax,tax,开票问题,open",
        "X4,,2026-01-05 09:00,hotline,weather,开票问题,open",
        "X5,,2026-01-05 09:00,hotline,tax,,open",
    ]), encoding="utf-8")
    with pytest.raises(InvalidFile) as exc:
        import_file("requests", tmp_path / "bad.csv")
    assert [(e.row, e.field) for e in exc.value.errors] == [(3, "uscc"), (4, "channel"), (5, "category"), (6, "text")]
    assert not ServiceRequest.objects.filter(number__startswith="X").exists()


# --- intake, routing, the workflow and its clocks ---------------------------------------------------


def test_a_request_is_routed_to_its_category_department_and_township(county):
    req = submit()
    assert req.number.startswith("QF2026") and req.status == State.SUBMITTED
    assert req.category == "utilities" and not req.category_confirmed and 0 < req.route_score <= 1
    assert req.department.name == "供电、供水、燃气、通信单位" and req.town_id == req.entity.town_id
    assert req.sign_due == at(2026, 3, 3, 10) and req.answer_due == at(2026, 3, 9, 10)  # working days
    assert list(req.events.values_list("move", flat=True)) == ["submit"]


def test_the_workflow_keeps_who_when_and_why_and_refuses_illegal_moves(county):
    req = submit()
    with pytest.raises(IllegalMove, match="待签收，不能“答复”"):
        actions.do_move(req, Move.ANSWER, STAFF, answer="x", now=at(2026, 3, 2, 11))
    assert ServiceRequest.objects.get(pk=req.pk).status == State.SUBMITTED and req.events.count() == 1
    actions.do_move(req, Move.SIGN, STAFF, now=at(2026, 3, 2, 11))
    actions.do_move(req, Move.START, STAFF, now=at(2026, 3, 2, 12))
    with pytest.raises(actions.RequestError, match="需要企业补充什么"):
        actions.do_move(req, Move.WAIT, STAFF, now=at(2026, 3, 3, 10))
    # waits for the enterprise two working days (Tue 10:00 → Thu 10:00): the answer deadline moves by that
    actions.do_move(req, Move.WAIT, STAFF, note="请提供用电负荷清单", now=at(2026, 3, 3, 10))
    actions.do_move(req, Move.RESUME, actions.ENTERPRISE, now=at(2026, 3, 5, 10))
    req.refresh_from_db()
    assert req.answer_due == at(2026, 3, 11, 10)
    with pytest.raises(actions.RequestError, match="答复内容"):
        actions.do_move(req, Move.ANSWER, STAFF, now=at(2026, 3, 6, 9))
    actions.do_move(req, Move.ANSWER, STAFF, answer="供电所已完成增容", now=at(2026, 3, 6, 9))
    moves = list(req.events.values_list("move", "actor", "from_status", "to_status"))
    assert moves[1:] == [("sign", "测试人员", "submitted", "signed"), ("start", "测试人员", "signed", "in_progress"),
                         ("wait_for_enterprise", "测试人员", "in_progress", "waiting"),
                         ("resume", "企业", "waiting", "in_progress"), ("answer", "测试人员", "in_progress", "answered")]


def test_a_transfer_needs_another_department_and_a_reason_and_is_counted(county):
    req = submit()
    tax = Department.objects.get(name="税务局")
    with pytest.raises(actions.RequestError, match="理由"):
        actions.do_move(req, Move.TRANSFER, STAFF, department=tax, now=at(2026, 3, 2, 11))
    with pytest.raises(actions.RequestError, match="另一个承办部门"):
        actions.do_move(req, Move.TRANSFER, STAFF, department=req.department, note="x", now=at(2026, 3, 2, 11))
    actions.do_move(req, Move.TRANSFER, STAFF, department=tax, note="涉及电费发票", now=at(2026, 3, 2, 11))
    req.refresh_from_db()
    assert (req.department, req.transfer_count, req.status) == (tax, 1, State.SUBMITTED)
    assert req.sign_due == at(2026, 3, 3, 11)  # a new sign-off clock for the new department
    assert req.events.get(move="transfer").to_department == "税务局"


def test_rating_reopening_and_the_call_back(county):
    req = submit()
    for move, t in ((Move.SIGN, 11), (Move.ANSWER, 12)):
        actions.do_move(req, move, STAFF, answer="已处理", now=at(2026, 3, 2, t))
    actions.do_rate(req, "dissatisfied", "还是停电", now=at(2026, 3, 3, 9))
    req.refresh_from_db()
    assert (req.status, req.callback_needed) == (State.CLOSED, True)
    with pytest.raises(actions.RequestError, match="已经评价"):
        actions.do_rate(req, "satisfied", now=at(2026, 3, 3, 10))
    actions.do_callback(req, STAFF, "已回访，安排复查", now=at(2026, 3, 4, 9))
    actions.do_move(req, Move.REOPEN, actions.ENTERPRISE, now=at(2026, 3, 10, 9))
    req.refresh_from_db()
    assert (req.status, req.reopen_count, req.satisfaction) == (State.IN_PROGRESS, 1, "")
    actions.do_move(req, Move.ANSWER, STAFF, answer="线路已更换", now=at(2026, 3, 11, 9))
    with pytest.raises(actions.RequestError, match="超过 15 天"):
        actions.do_move(req, Move.REOPEN, actions.ENTERPRISE, now=at(2026, 3, 27, 9))


def test_the_clock_warns_at_80_percent_marks_overdue_and_closes_after_seven_silent_days(county, settings):
    dep = Department.objects.get(name="供电、供水、燃气、通信单位")
    dep.email = "duty@power.example.cn"
    dep.save()
    req = submit()
    assert OutboxMessage.objects.filter(purpose="request", recipient="duty@power.example.cn").count() == 1  # new
    assert actions.tick(at(2026, 3, 2, 20))["warned"] == 0
    assert actions.tick(at(2026, 3, 3, 6))["warned"] == 1  # 20 of 24 working hours of the sign-off limit
    assert actions.tick(at(2026, 3, 3, 7))["warned"] == 0  # once
    assert actions.tick(at(2026, 3, 3, 11))["overdue"] == 1
    req.refresh_from_db()
    assert req.overdue and req.escalated and req.events.filter(move="overdue").exists()
    assert OutboxMessage.objects.filter(purpose="request", recipient="duty@power.example.cn").count() == 3
    # to the department, filed under the firm; the firm's own messages are to it
    assert set(OutboxMessage.objects.filter(entity=req.entity).values_list("recipient", "addressee")) == {
        ("duty@power.example.cn", "department")}
    actions.do_move(req, Move.SIGN, STAFF, now=at(2026, 3, 3, 12))
    actions.do_move(req, Move.ANSWER, STAFF, answer="已处理", now=at(2026, 3, 4, 9))
    assert actions.tick(at(2026, 3, 10, 9))["closed"] == 0
    assert actions.tick(at(2026, 3, 11, 10))["closed"] == 1
    req.refresh_from_db()
    assert req.status == State.CLOSED and req.events.filter(move="auto_close", actor="系统").exists()


def test_another_modules_decision_settles_a_request_once_without_a_message_of_its_own(county):
    req = submit()
    assert actions.do_settle(req, STAFF, "经核实已处理", now=at(2026, 3, 2, 11))
    req.refresh_from_db()
    assert (req.status, req.answer, req.signed_at, req.answered_at) == ("answered", "经核实已处理", at(2026, 3, 2, 11),
                                                                        at(2026, 3, 2, 11))
    assert not OutboxMessage.objects.filter(entity=req.entity, addressee="entity").exists()
    # answered already: the decision goes on its record only
    assert not actions.do_settle(req, STAFF, "再次核实", now=at(2026, 3, 3, 9))
    req.refresh_from_db()
    assert (req.status, req.answer) == ("answered", "经核实已处理")
    assert list(req.events.order_by("id").values_list("move", "note"))[-1] == ("edit", "再次核实")


def test_the_enterprise_hears_when_its_request_is_signed_and_answered(county):
    req = submit()
    actions.do_move(req, Move.SIGN, STAFF, now=at(2026, 3, 2, 11))
    actions.do_move(req, Move.ANSWER, STAFF, answer="已处理", now=at(2026, 3, 2, 15))
    sent = OutboxMessage.objects.filter(purpose="request", entity=req.entity).order_by("id")
    assert [m.recipient for m in sent] == [req.entity.phone] * 2 and all(m.channel == "sms" for m in sent)
    assert {m.addressee for m in sent} == {"entity"}
    assert "已由供电、供水、燃气、通信单位签收" in sent[0].body and "评价" in sent[1].body
    assert all("http" not in m.body for m in sent)


def test_a_similar_open_request_of_the_same_entity_is_offered_for_merging(county):
    first = submit()
    again = "停电的问题还是没有解决，这周又停了"
    assert [r.pk for r, _ in actions.find_duplicates(first.entity, again, now=at(2026, 3, 5, 9))] == [first.pk]
    assert actions.find_duplicates(first.entity, "想申请高新技术企业认定", now=at(2026, 3, 5, 9)) == []
    assert actions.find_duplicates(first.entity, again, now=at(2026, 4, 10, 9)) == []  # older than 30 days
    second = submit(text=again, when=at(2026, 3, 5, 9))
    actions.do_move(second, Move.MERGE, STAFF, into=first, now=at(2026, 3, 5, 10))
    second.refresh_from_db()
    assert (second.status, second.duplicate_of) == (State.CLOSED, first)


# --- roles, staff pages, the portal -------------------------------------------------------------


def staff(county, name) -> Client:
    c = Client()
    c.force_login(county["users"][name])
    return c


def department_user(name: str):
    from qifu.accounts.actions import assign_role

    user, _ = assign_role("power-clerk", "department", department=name)
    user.set_password("power-clerk-own-pw")  # a clerk who has replaced the first password
    user.save()
    c = Client()
    c.force_login(user)
    return c


def test_each_role_sees_its_own_requests(county):
    mine = submit()
    tax = submit(text="出口退税三个月没到账", entity=Entity.objects.exclude(town=entity().town).filter(status="active").first())
    power = department_user("供电、供水、燃气、通信单位")
    listing = power.get("/requests/").content.decode()
    assert mine.number in listing and tax.number not in listing
    assert power.get(f"/requests/{tax.number}/").status_code == 403
    assert power.get(f"/entities/{mine.entity_id}/").status_code == 403  # no other entity data
    officer = staff(county, "officer")
    own_town = county["own_town"]
    visible = set(officer.get("/requests/", {"q": "QF"}).content.decode().split())
    assert (mine.town_id == own_town.code) == any(mine.number in w for w in visible)
    assert staff(county, "leader").get(f"/requests/{tax.number}/").status_code == 200


def test_a_department_signs_and_answers_in_its_pages_and_a_leader_escalates(county):
    req = submit()
    power = department_user("供电、供水、燃气、通信单位")
    url = f"/requests/{req.number}/move/"
    power.post(url, {"move": "sign"})
    power.post(url, {"move": "answer", "answer": "已安排供电所上门，周五前完成增容"})
    req.refresh_from_db()
    assert req.status == State.ANSWERED and req.answer.startswith("已安排")
    leader = staff(county, "leader")
    assert leader.post(url, {"move": "answer", "answer": "x"}).status_code == 403
    other = submit(text="厂区网络天天断线")
    leader.post(f"/requests/{other.number}/move/", {"move": "escalate", "note": "请本周内解决"})
    other.refresh_from_db()
    assert other.escalated and other.events.filter(move="escalate", user__username="leader").exists()


def test_station_intake_finds_the_entity_and_takes_attachments(county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    e = Entity.objects.filter(town=county["own_town"], status="active").first()
    officer = staff(county, "officer")
    assert e.name in officer.get("/requests/new/", {"q": e.uscc}).content.decode()
    png = SimpleUploadedFile("停电照片.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png")
    r = officer.post("/requests/new/", {"uscc": e.uscc, "text": "厂区门口道路坑洼，货车进不来", "channel": "station",
                                        "files": [png]})
    req = ServiceRequest.objects.get(entity=e, channel="station", text__contains="坑洼")
    assert r["Location"].endswith(f"/requests/{req.number}/") and req.category == "traffic"
    assert req.attachments.get().content_type == "image/png"
    fake = SimpleUploadedFile("x.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    page = officer.post("/requests/new/", {"uscc": e.uscc, "text": "另一件事", "files": [fake]}, follow=True)
    assert "不是图片或 PDF" in page.content.decode()


def test_the_enterprise_submits_rates_and_sees_the_measures_change(county):
    e = entity()
    portal = Client()
    session = portal.session
    session["portal_uscc"] = e.uscc
    session.save()
    r = portal.post("/portal/requests/", {"text": "想了解一下专精特新企业的奖励政策怎么申报", "confirmed": "1"})
    req = ServiceRequest.objects.get(entity=e, channel="portal")
    assert r["Location"].endswith(f"/portal/requests/{req.number}/")
    for move in (Move.SIGN, Move.ANSWER):
        actions.do_move(req, move, STAFF, answer="已把申报指南发给企业")
    # the firm's home asks it to confirm the answer, saying when it closes on its own
    req.refresh_from_db()
    closes = timezone.localdate(req.answered_at + actions.AUTO_CLOSE_AFTER)
    home = portal.get("/portal/").content.decode()
    assert f'id="home-request-{req.number}"' in home and f"{closes.month}月{closes.day}日前未确认的自动办结" in home
    before = staff(county, "admin").get("/requests/measures/").content.decode()
    portal.post(f"/portal/requests/{req.number}/act/", {"do": "rate", "satisfaction": "satisfied"})
    req.refresh_from_db()
    assert (req.status, req.satisfaction) == (State.CLOSED, "satisfied")
    assert f'id="home-request-{req.number}"' not in portal.get("/portal/").content.decode()
    after = staff(county, "admin").get("/requests/measures/").content.decode()
    assert before != after
    other = Entity.objects.exclude(pk=e.pk).first()
    assert portal.get(f"/portal/requests/{ServiceRequest.objects.exclude(entity=e).first().number}/").status_code == 404
    assert other


def test_measures_follow_their_definitions(county):
    from qifu.service_requests import queries

    qs = ServiceRequest.objects.all()
    m = queries.overall(qs)
    assert m.total == qs.count() and m.closed == qs.filter(status=State.CLOSED).count()
    rated = qs.exclude(satisfaction="")
    assert m.satisfaction_rate == rated.filter(satisfaction__in=["satisfied", "basically"]).count() / rated.count()
    ranking = queries.ranking(qs)
    scores = [x.score for x in ranking if x.score is not None]
    assert scores == sorted(scores, reverse=True) and len(ranking) >= 10


def test_the_dashboard_charts_the_requests_received_and_closed_in_each_of_the_last_twelve_months(county):
    import json

    from django.test import Client
    from django.utils import timezone

    from qifu.service_requests import queries

    submit(when=at(2026, 3, 1, 0, 30))  # just after midnight on the 1st: March locally, February in UTC
    qs = ServiceRequest.objects.all()
    today = dt.date(2026, 3, 15)
    chart = queries.panel(qs, today)["charts"]["request-months"]
    assert chart["labels"][0] == "2025年4月" and chart["labels"][-1] == "2026年3月" and len(chart["labels"]) == 12
    # counted here apart from the query: each request's local month
    for series, field in zip(chart["series"], ("submitted_at", "closed_at")):
        months = [timezone.localtime(getattr(r, field)).strftime("%Y-%m") for r in qs if getattr(r, field)]
        expected = [months.count(f"{y}-{m:02d}") for y, m in [(2025, k) for k in range(4, 13)] + [(2026, k) for k in range(1, 4)]]
        assert series["values"] == expected and sum(expected) > 0, field
    c = Client()
    c.force_login(county["users"]["admin"])
    page = c.get("/").content.decode()
    assert 'id="chart-request-months"' in page
    data = json.loads(page.split('<script id="request-chart-data" type="application/json">')[1].split("</script>")[0])
    assert [s["label"] for s in data["request-months"]["series"]] == ["受理", "办结"]


def test_a_good_answer_becomes_an_assistant_entry_after_approval(county):
    from qifu.assistant.actions import ask, do_review_entry
    from qifu.assistant.models import KnowledgeEntry

    req = submit(text="叉车年检过期了，去哪里预约检验")
    actions.do_move(req, Move.SIGN, STAFF)
    actions.do_move(req, Move.ANSWER, STAFF, answer="叉车属于特种设备，可在市特种设备检验所网上预约定期检验，携带使用登记证。")
    admin = staff(county, "admin")
    admin.post(f"/requests/{req.number}/teach/", {"question": "叉车年检过期去哪里预约检验"})
    entry = KnowledgeEntry.objects.get()
    assert entry.status == "proposed"
    assert ask("叉车年检过期去哪里预约")[0].entry_id != f"staff-{entry.id}"
    do_review_entry(entry, county["users"]["admin"], approve=True)
    answer, _ = ask("叉车年检过期了去哪里预约检验")
    assert answer.entry_id == f"staff-{entry.id}" and "特种设备检验所" in answer.answer


# --- Open311 (in process; tests/test_serve.py runs the georeport client against `qifu serve`) ------


@pytest.fixture
def api_key(county):
    return apikeys.do_issue_key("驿站平板")[1]


def test_open311_post_as_the_open311_client_sends_it(county, api_key):
    e = entity()
    c = Client()
    r = c.post(f"/open311/v2/requests.xml?jurisdiction_id=&api_key={api_key}",
               {"service_code": "utilities", "description": "园区停电三次，影响生产", "attribute[uscc]": e.uscc.lower(),
                "first_name": "三", "last_name": "张", "phone": "13905741234"})
    assert r.status_code == 200 and r["Content-Type"] == "text/xml; charset=utf-8"
    body = r.content.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<service_requests><request><service_request_id>')
    number = body.split("<service_request_id>")[1].split("<")[0]
    req = ServiceRequest.objects.get(number=number)
    assert (req.channel, req.entity, req.category_confirmed, req.api_key.name) == ("open311", e, True, "驿站平板")
    assert (req.contact_name, req.contact_phone) == ("张 三", "13905741234")
    one = json.loads(c.get(f"/open311/v2/requests/{number}.json").content)
    assert len(one) == 1 and one[0]["status"] == "open" and one[0]["agency_responsible"] == "供电、供水、燃气、通信单位"
    assert "13905741234" not in c.get(f"/open311/v2/requests/{number}.json").content.decode()


def test_a_key_over_its_hourly_limit_is_refused_and_nothing_of_the_refused_post_is_kept(county, api_key, monkeypatch):
    from qifu.accounts.models import RateCounter
    from qifu.service_requests import open311
    from qifu.service_requests import settings as limits
    from qifu.service_requests.models import RequestEvent

    monkeypatch.setattr(open311, "POSTS_PER_KEY_HOUR", 2)
    Department.objects.filter(name="供电、供水、燃气、通信单位").update(email="power@example.cn")  # it is told of each
    limits.forget()
    data = {"service_code": "utilities", "description": "园区停电三次，影响生产", "attribute[uscc]": entity().uscc}
    url = f"/open311/v2/requests.json?api_key={api_key}"
    told = OutboxMessage.objects.count()
    assert [Client().post(url, data).status_code for _ in range(2)] == [200, 200]
    assert OutboxMessage.objects.count() == told + 2
    before = (ServiceRequest.objects.count(), RequestEvent.objects.count(), OutboxMessage.objects.count())
    r = Client().post(url, data)
    assert r.status_code == 429 and "提交过于频繁" in r.json()[0]["description"]
    assert (ServiceRequest.objects.count(), RequestEvent.objects.count(), OutboxMessage.objects.count()) == before
    assert RateCounter.objects.get(key__startswith="open311-key:").count == 2


@pytest.mark.parametrize("query, data, status, says", [
    ("api_key=wrong", {"service_code": "tax", "description": "x", "address_string": "慈溪"}, 403, "api_key"),
    ("", {"service_code": "tax", "description": "x", "address_string": "慈溪", "api_key": "wrong"}, 403, "api_key"),
    ("{key}", {"description": "x", "address_string": "慈溪"}, 400, "service_code"),
    ("{key}", {"service_code": "weather", "description": "x", "address_string": "慈溪"}, 404, "没有这个服务"),
    ("{key}", {"service_code": "tax", "description": "x"}, 400, "需要一个位置"),
    ("{key}", {"service_code": "tax", "description": "长" * 4001, "address_string": "慈溪"}, 400, "4000"),
    ("{key}", {"service_code": "tax", "description": "x", "attribute[uscc]": "91330282MA2A00011X"}, 400, "校验位"),
    ("{key}", {"service_code": "tax", "description": "x", "lat": "30.2"}, 400, "同时提供"),
    ("{key}&jurisdiction_id=hz.gov.cn", {"service_code": "tax", "description": "x", "address_string": "慈溪"}, 404, "jurisdiction"),
])
def test_open311_errors_as_the_spec_says(county, api_key, query, data, status, says):
    before = ServiceRequest.objects.count()
    r = Client().post("/open311/v2/requests.json?" + query.replace("{key}", f"api_key={api_key}"), data)
    assert r.status_code == status
    body = r.json()
    assert isinstance(body, list) and body[0]["code"] == status and says in body[0]["description"]
    assert ServiceRequest.objects.count() == before


def test_open311_refuses_a_nul_byte_anywhere_with_a_clear_error(county, api_key):
    c = Client()
    r = c.get("/open311/v2/requests.json", {"service_request_id": "QF\x00L"})
    assert r.status_code == 400 and "service_request_id" in r.json()[0]["description"]
    assert c.get("/open311/v2/requests/QF%00.json").status_code == 404
    before = ServiceRequest.objects.count()
    r = c.post(f"/open311/v2/requests.json?api_key={api_key}",
               {"service_code": "tax", "description": "退税\x00没到账", "address_string": "慈溪"})
    assert r.status_code == 400 and "description" in r.json()[0]["description"]
    assert ServiceRequest.objects.count() == before


def test_open311_reads_filter_and_keep_to_the_spec(county, api_key):
    c = Client()
    services = c.get("/open311/v2/services.json").json()
    assert [s["service_code"] for s in services][:3] == ["registration", "annual_report", "tax"] and len(services) == 18
    definition = c.get("/open311/v2/service/tax.json").json()  # open311 1.1's singular path
    assert definition["attributes"][0]["code"] == "uscc"
    assert c.get("/open311/v2/services/weather.json").status_code == 404
    assert c.get("/open311/v2/requests/NO-SUCH.xml").status_code == 404
    xml = c.get("/open311/v2/services.xml").content.decode()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<services><service><service_code>registration')
    recent = ServiceRequest.objects.order_by("-submitted_at").first()
    start = (recent.submitted_at - dt.timedelta(days=10)).isoformat()
    end = recent.submitted_at.isoformat()
    rows = c.get("/open311/v2/requests.json", {"start_date": start, "end_date": end, "status": "open,closed"}).json()
    assert rows and all(start <= timezone.localtime(dt.datetime.fromisoformat(r["requested_datetime"])).isoformat() for r in rows)
    opened = c.get("/open311/v2/requests.json", {"start_date": start, "end_date": end, "status": "open"}).json()
    assert all(r["status"] == "open" for r in opened)
    assert c.get("/open311/v2/requests.json", {"start_date": "2025-01-01T00:00:00+08:00",
                                              "end_date": "2025-12-31T00:00:00+08:00"}).status_code == 400
    by_id = c.get("/open311/v2/requests.json", {"service_request_id": f"{rows[0]['service_request_id']},NOPE",
                                               "status": "weird"}).json()
    assert [r["service_request_id"] for r in by_id] == [rows[0]["service_request_id"]]  # the id overrides filters
    assert c.get("/open311/v2/discovery.json").json()["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"


def test_route_command_json(county):
    from qifu.service_requests.routing import route

    data = route("注塑车间粉尘除尘设备需要改造，消防检查提出了隐患")
    assert set(data) >= {"category", "department", "score"} and data["category"] == "safety"
    assert data["department"] == "应急管理局"


def test_one_document_uploaded_twice_at_once_is_stored_whole(tmp_path, monkeypatch):
    """Attachments are kept under their SHA-256: two uploads of the same document at once (the
    firm and its inspector, say) write the same file. Each writes under a name of its own; with
    one shared name the second renamed the file the first was writing, and the first failed."""
    import threading
    from pathlib import Path

    from qifu.service_requests import attachments

    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path))
    data, real, others, errors = b"%PDF-1.4\n%%EOF", Path.write_bytes, [], []

    def another_upload():
        try:
            attachments.store(data)
        except Exception as e:
            errors.append(e)

    def write_bytes(self, content):
        n = real(self, content)
        if not others:  # the first writer, its file written, not yet renamed: another stores it all now
            others.append(threading.Thread(target=another_upload))
            others[0].start()
            others[0].join()
        return n

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    digest = attachments.store(data)
    assert not errors and len(others) == 1
    with attachments.open_stored(digest) as f:
        assert f.read() == data
    assert not list(tmp_path.rglob("*.tmp"))
