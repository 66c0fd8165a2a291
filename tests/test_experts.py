"""Expert partners (科创伙伴): the expert library imported from a sheet; a firm's technical need
matched to experts by Chinese retrieval with the words that matched; the broker's confirmation,
visits and cooperation projects; needs from requests of the technology category; the staff
pages, the portal and the API with township isolation, confidential needs and XLSX."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import polars as pl
import pytest
from django.test import Client
from django.utils import timezone

from qifu.accounts.models import AuditEvent
from qifu.engine.errors import InvalidFile
from qifu.experts import actions
from qifu.experts.models import Achievement, Conflict, Cooperation, Expert, Need, Pairing, Visit
from qifu.imports.actions import import_file
from qifu.registry.models import Entity
from qifu.service_requests import actions as requests
from qifu.service_requests.models import ServiceRequest
from tests.factories import portal_client

pytestmark = pytest.mark.django_db
NEED = ("注塑外壳缩痕", "家电注塑外壳表面出现缩痕和翘曲，想请专家做模流分析，优化冷却水路和模具设计")


@pytest.fixture
def county(checked_county):
    if not Expert.objects.exists():
        import_file("experts", checked_county["folder"] / "experts.csv")
    yield checked_county
    for model in (Conflict, Cooperation, Visit, Pairing, Need, Achievement):
        model.objects.all().delete()


def firm(town=None) -> Entity:
    qs = Entity.objects.filter(entity_type="enterprise", status="active")
    return (qs.filter(town=town) if town is not None else qs).order_by("uscc").first()


def test_the_library_is_imported_and_a_bad_sheet_changes_nothing(county, tmp_path):
    rows = pl.read_csv(county["folder"] / "experts.csv", infer_schema=False)
    assert Expert.objects.count() == rows.height
    again = import_file("experts", county["folder"] / "experts.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, rows.height)
    bad = rows.with_columns(pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("随时")).otherwise(pl.col("availability"))
                            .alias("availability"), pl.lit("新名字").alias("name"))
    bad.write_csv(tmp_path / "experts.csv")
    with pytest.raises(InvalidFile) as err:
        import_file("experts", tmp_path / "experts.csv")
    assert [(e.row, e.field) for e in err.value.errors] == [(3, "availability")]
    assert not Expert.objects.filter(name="新名字").exists()


def test_a_need_is_matched_to_experts_with_the_words_that_matched(county):
    need = actions.do_submit_need(firm(), *NEED, Need.Source.STAFF)
    proposals = list(need.pairings.select_related("expert").order_by("rank"))
    assert len(proposals) == actions.PROPOSALS
    top = proposals[0]
    assert "注塑" in top.expert.fields and {"注塑", "模流"} & set(top.words)
    assert all(p.expert.availability != "unavailable" for p in proposals)
    assert [p.score for p in proposals] == sorted((p.score for p in proposals), reverse=True)
    # the retrieval agrees with a plain count: the best has at least as many of the need's words as the last
    assert len(top.words) >= len(proposals[-1].words)
    more = actions.propose(need)
    assert more and not {p.expert_id for p in more} & {p.expert_id for p in proposals}
    with pytest.raises(actions.ExpertActionError):
        actions.do_submit_need(firm(), "短", "太短", Need.Source.STAFF)


def test_confirmation_visits_and_a_cooperation_project(county):
    need = actions.do_submit_need(firm(), *NEED, Need.Source.STAFF)
    first, second = need.pairings.order_by("rank")[:2]
    with pytest.raises(actions.ExpertActionError, match="先确认"):
        actions.do_agree(need, first.expert, "缩痕改善项目", timezone.localdate())
    actions.do_decide(second, False)
    actions.do_decide(first, True)
    need.refresh_from_db()
    assert need.status == "paired"
    with pytest.raises(actions.ExpertActionError, match="晚于今天"):
        actions.do_log_visit(need.entity, timezone.localdate() + dt.timedelta(days=1), "上门了解", need=need)
    # what the visit found, the project and its outcome are written out, and hold nothing unprintable
    for notes, why in (("看了", "至少4个字"), ("专家上门\x07查看模具", "控制字符")):
        with pytest.raises(actions.ExpertActionError, match=why):
            actions.do_log_visit(need.entity, timezone.localdate(), notes, need=need)
    with pytest.raises(actions.ExpertActionError, match="合作项目名称含有无法保存的控制字符"):
        actions.do_agree(need, first.expert, "外壳缩痕\x1b改善", timezone.localdate())
    actions.do_log_visit(need.entity, timezone.localdate(), "  专家上门查看模具 ", need=need, expert=first.expert)
    assert Visit.objects.get().notes == "专家上门查看模具"
    coop = actions.do_agree(need, first.expert, "外壳缩痕改善", timezone.localdate(), "12.5",
                            [("模流分析报告", timezone.localdate() + dt.timedelta(days=30))])
    need.refresh_from_db()
    assert need.status == "cooperating" and coop.amount == 12.5 and coop.milestones[0]["done_on"] is None
    with pytest.raises(actions.ExpertActionError, match="已有合作项目"):
        actions.do_agree(need, first.expert, "另一个项目", timezone.localdate())
    actions.do_reach_milestone(coop, 0, timezone.localdate())
    actions.do_finish(coop, "缩痕消除，良率提高 8 个百分点")
    need.refresh_from_db()
    assert need.status == "closed" and Cooperation.objects.get().status == "completed"


def test_a_technology_request_becomes_a_need_once(county):
    e = firm()
    req = requests.do_submit_request(text="我们想找高校专家解决注塑件缩痕问题，需要模流分析", channel="portal",
                                     actor=requests.ENTERPRISE, entity=e, category="technology")
    need = actions.do_need_from_request(req)
    assert need.request_id == req.pk and need.source == "request" and need.pairings.exists()
    with pytest.raises(actions.ExpertActionError, match="已经转为"):
        actions.do_need_from_request(ServiceRequest.objects.get(pk=req.pk))
    anonymous = requests.do_submit_request(text="有没有做检测的实验室推荐一下", channel="hotline", actor=requests.SYSTEM,
                                           town_id=e.town_id, category="technology")
    with pytest.raises(actions.ExpertActionError, match="没有关联企业"):
        actions.do_need_from_request(anonymous)


def staff(county, name: str) -> Client:
    c = Client()
    c.force_login(county["users"][name])
    return c


def test_staff_pages_keep_to_the_township_and_hide_confidential_text(county):
    mine, other = firm(county["own_town"]), firm(county["other_town"])
    a = actions.do_submit_need(mine, "本镇企业需求", NEED[1], Need.Source.STAFF, confidential=True)
    b = actions.do_submit_need(other, "外镇企业需求", NEED[1], Need.Source.STAFF)
    officer, leader = staff(county, "officer"), staff(county, "leader")
    page = officer.get("/experts/").content.decode()
    assert "本镇企业需求" in page and "外镇企业需求" not in page
    assert officer.get(f"/experts/needs/{b.number}/").status_code == 404
    assert NEED[1] in officer.get(f"/experts/needs/{a.number}/").content.decode()
    hidden = leader.get(f"/experts/needs/{a.number}/").content.decode()
    assert NEED[1] not in hidden and "保密需求" in hidden
    sheet = openpyxl.load_workbook(io.BytesIO(leader.get("/experts/?format=xlsx").content))["技术需求"]
    texts = {r[0]: r[5] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert texts[a.number] == "（保密需求，内容不公开）" and texts[b.number] == NEED[1]
    assert AuditEvent.objects.filter(user=county["users"]["leader"], action="export").exists()
    # staff confirm a proposal through the page; a leader cannot
    p = a.pairings.order_by("rank").first()
    assert leader.post(f"/experts/needs/{a.number}/act/", {"action": "confirm", "pairing": p.pk}).status_code == 403
    officer.post(f"/experts/needs/{a.number}/act/", {"action": "confirm", "pairing": p.pk})
    assert Pairing.objects.get(pk=p.pk).status == "confirmed"
    officer.post(f"/experts/needs/{a.number}/act/", {"action": "visit", "visited_on": timezone.localdate().isoformat(),
                                                     "notes": "专家上门", "expert": p.expert_id})
    assert Visit.objects.filter(need=a, expert=p.expert).exists()
    assert "本镇企业需求" in officer.get(f"/entities/{mine.uscc}/").content.decode()
    assert 'id="experts-panel"' in staff(county, "admin").get("/").content.decode()
    found = staff(county, "admin").get("/experts/library/", {"q": "注塑 模流分析"}).content.decode()
    assert "模流" in found


def test_the_portal_and_the_api_take_a_need_and_show_experts_by_consent(county):
    e = firm()
    c = portal_client(e.uscc)
    r = c.post("/portal/experts/needs/", {"title": NEED[0], "text": NEED[1]}, follow=True)
    assert "已提交" in r.content.decode()
    need = Need.objects.get(entity=e)
    assert need.source == "portal"
    p = need.pairings.order_by("rank").select_related("expert").first()
    actions.do_decide(p, True)
    Expert.objects.filter(pk=p.expert_id).update(consent=False)
    listed = c.get("/api/v1/experts/needs").json()
    assert listed[0]["number"] == need.number and listed[0]["experts"] == [f"{p.expert.institution}的一位专家"]
    Expert.objects.filter(pk=p.expert_id).update(consent=True)
    assert p.expert.name in c.get("/portal/experts/").content.decode()
    r = c.post("/api/v1/experts/needs", {"title": "电源电磁兼容整改", "text": "家电电源板传导发射超标，需要EMC整改方案"},
               content_type="application/json", HTTP_X_CSRFTOKEN="x")
    assert r.status_code == 201 and r.json()["status"] == "open"
    assert c.post("/api/v1/experts/needs", {"title": "短", "text": "x"}, content_type="application/json",
                  HTTP_X_CSRFTOKEN="x").status_code == 422


def test_the_firm_rates_an_ended_project_once_and_staff_see_the_satisfaction(county):
    e = firm(county["own_town"])
    need = actions.do_submit_need(e, *NEED, Need.Source.STAFF)
    first = need.pairings.order_by("rank").first()
    actions.do_decide(first, True)
    coop = actions.do_agree(need, first.expert, "外壳缩痕改善", timezone.localdate(), "8")
    c = portal_client(e.uscc)
    assert 'class="coop-rate"' not in c.get("/portal/experts/").content.decode()  # still going on
    r = c.post(f"/portal/experts/cooperations/{coop.pk}/rate/", {"rating": "satisfied"}, follow=True)
    assert "结束后才能评价" in r.content.decode() and not Cooperation.objects.get().rating
    assert f'id="home-coop-{coop.pk}"' not in c.get("/portal/").content.decode()
    actions.do_finish(coop, "缩痕消除，良率提高 8 个百分点")
    assert 'class="coop-rate"' in c.get("/portal/experts/").content.decode()
    assert f'id="home-coop-{coop.pk}"' in c.get("/portal/").content.decode()  # the firm's home asks for it
    # 不满意 needs a reason; another firm cannot rate it
    r = c.post(f"/portal/experts/cooperations/{coop.pk}/rate/", {"rating": "dissatisfied", "comment": ""}, follow=True)
    assert "写明原因" in r.content.decode() and not Cooperation.objects.get().rating
    stranger = firm(county["other_town"])
    assert portal_client(stranger.uscc).post(f"/portal/experts/cooperations/{coop.pk}/rate/",
                                             {"rating": "satisfied"}).status_code == 404
    c.post(f"/portal/experts/cooperations/{coop.pk}/rate/", {"rating": "dissatisfied", "comment": "专家只来了一次"})
    rated = Cooperation.objects.get()
    assert (rated.rating, rated.rating_comment) == ("dissatisfied", "专家只来了一次") and rated.rated_at is not None
    r = c.post(f"/portal/experts/cooperations/{coop.pk}/rate/", {"rating": "satisfied"}, follow=True)
    assert "已经评价过" in r.content.decode() and Cooperation.objects.get().rating == "dissatisfied"
    assert "您的评价：不满意" in c.get("/portal/experts/").content.decode()
    assert f'id="home-coop-{coop.pk}"' not in c.get("/portal/").content.decode()
    # staff see it on the need, in the measures and in the XLSX
    admin = staff(county, "admin")
    assert "专家只来了一次" in admin.get(f"/experts/needs/{need.number}/").content.decode()
    page = admin.get("/experts/").content.decode()
    assert '<b id="tile-satisfaction">0%</b>' in page and "1 个已评价，1 个不满意" in page
    sheet = openpyxl.load_workbook(io.BytesIO(admin.get("/experts/?format=xlsx").content))["合作项目"]
    assert list(sheet.iter_rows(min_row=2, values_only=True))[0][-4:] == ("不满意", "专家只来了一次", None, None)


def test_an_expert_signs_in_to_their_own_desk_and_sees_nothing_else(county):
    officer_user = county["users"]["officer"]
    need = actions.do_submit_need(firm(county["own_town"]), *NEED, Need.Source.STAFF, confidential=True)
    mine = need.pairings.order_by("rank").select_related("expert").first()
    actions.do_decide(mine, True, by=officer_user)
    other_need = actions.do_submit_need(firm(county["other_town"]), "外镇电源整改", "家电电源板传导发射超标，需要EMC整改方案",
                                        Need.Source.STAFF)
    theirs = other_need.pairings.exclude(expert=mine.expert).order_by("rank").first()
    actions.do_decide(theirs, True)
    expert = mine.expert
    user, password = actions.do_open_account(expert, "zhuanjia-a")
    with pytest.raises(actions.ExpertActionError, match="已有登录账号"):
        actions.do_open_account(Expert.objects.get(pk=expert.pk), "zhuanjia-b")
    with pytest.raises(actions.ExpertActionError, match="已被占用"):
        actions.do_open_account(theirs.expert, "zhuanjia-a")

    c = Client()
    r = c.post("/login/", {"username": "zhuanjia-a", "password": password}, follow=True)
    assert r.redirect_chain[-1][0] == "/password/"  # a first password is replaced before anything else
    assert c.get("/expert/").url == "/password/"
    r = c.post("/password/", {"old_password": password, "new_password1": "zj-desk-2026-own", "new_password2": "zj-desk-2026-own"},
               follow=True)
    assert r.redirect_chain[-1][0] == "/expert/"  # then an expert lands on their desk
    for staff_page in ("/entities/", "/experts/", f"/experts/needs/{need.number}/", "/policies/"):
        assert c.get(staff_page).url == "/expert/", staff_page
    page = c.get("/expert/").content.decode()
    assert need.title in page and NEED[1] in page and "外镇电源整改" not in page
    assert firm(county["own_town"]).phone not in page  # no firm's contact details: the broker arranges
    assert AuditEvent.objects.filter(user=user, action="view_entity", detail=f"专家工作台查看保密需求 {need.number}").exists()
    # staff cannot use an expert's desk
    assert staff(county, "admin").get("/expert/").status_code == 403

    # the answer: a decline needs its reason; only one's own confirmed pairings; a visit once accepted
    today = timezone.localdate().isoformat()
    r = c.post("/expert/act/", {"action": "visit", "pairing": mine.pk, "visited_on": today, "notes": "先去看看"}, follow=True)
    assert "请选择您愿意对接的需求" in r.content.decode() and not Visit.objects.exists()
    r = c.post("/expert/act/", {"action": "decline", "pairing": mine.pk, "note": ""}, follow=True)
    assert "写明原因" in r.content.decode() and not Pairing.objects.get(pk=mine.pk).answer
    c.post("/expert/act/", {"action": "accept", "pairing": theirs.pk})
    assert not Pairing.objects.get(pk=theirs.pk).answer
    c.post("/expert/act/", {"action": "accept", "pairing": mine.pk})
    assert Pairing.objects.get(pk=mine.pk).answer == "accepted"
    r = c.post("/expert/act/", {"action": "decline", "pairing": mine.pk, "note": "改变主意了"}, follow=True)
    assert "已经答复过" in r.content.decode() and Pairing.objects.get(pk=mine.pk).answer == "accepted"
    assert "专家愿意对接" in staff(county, "officer").get(f"/experts/needs/{need.number}/").content.decode()

    # a visit to the firm of an accepted need, not to another's
    c.post("/expert/act/", {"action": "visit", "pairing": theirs.pk, "visited_on": today, "notes": "上门看了产线"})
    assert not Visit.objects.exists()
    c.post("/expert/act/", {"action": "visit", "pairing": mine.pk, "visited_on": today, "notes": "上门看了模具和冷却水路"})
    v = Visit.objects.get()
    assert (v.need, v.expert, v.by, v.entity_id) == (need, expert, user, need.entity_id)

    # availability: staff's next proposals leave the expert out while they take no new needs
    c.post("/expert/act/", {"action": "availability", "availability": "unavailable"})
    assert Expert.objects.get(pk=expert.pk).availability == "unavailable"
    again = actions.do_submit_need(firm(county["own_town"]), "注塑缩痕再改善", NEED[1], Need.Source.STAFF)
    assert not again.pairings.filter(expert=expert).exists()

    # the cooperation: the expert reaches a milestone, and gives their side once it has ended
    coop = actions.do_agree(need, expert, "外壳缩痕改善", timezone.localdate(), "5",
                            [("模流分析报告", timezone.localdate() + dt.timedelta(days=30))])
    other_coop = actions.do_agree(other_need, theirs.expert, "电源整改", timezone.localdate())
    future = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    r = c.post("/expert/act/", {"action": "milestone", "coop": coop.pk, "index": 0, "done_on": future}, follow=True)
    assert "不能晚于今天" in r.content.decode()
    c.post("/expert/act/", {"action": "milestone", "coop": coop.pk, "index": 0, "done_on": today})
    assert Cooperation.objects.get(pk=coop.pk).milestones[0]["done_on"] == today
    r = c.post("/expert/act/", {"action": "feedback", "coop": coop.pk, "rating": "satisfied"}, follow=True)
    assert "结束后才能评价" in r.content.decode()
    actions.do_finish(coop, "缩痕消除，良率提高 8 个百分点")
    actions.do_finish(other_coop, "整改完成")
    r = c.post("/expert/act/", {"action": "feedback", "coop": other_coop.pk, "rating": "satisfied"}, follow=True)
    assert "不是您的" in r.content.decode() and not Cooperation.objects.get(pk=other_coop.pk).expert_rating
    r = c.post("/expert/act/", {"action": "feedback", "coop": coop.pk, "rating": "dissatisfied"}, follow=True)
    assert "写明原因" in r.content.decode()
    c.post("/expert/act/", {"action": "feedback", "coop": coop.pk, "rating": "basically", "comment": "样件提供较慢"})
    done = Cooperation.objects.get(pk=coop.pk)
    assert (done.expert_rating, done.expert_comment) == ("basically", "样件提供较慢") and done.expert_rated_at
    assert "我的评价：基本满意" in c.get("/expert/").content.decode()
    admin = staff(county, "admin")
    assert "专家评价企业配合：<strong>基本满意</strong>" in admin.get(f"/experts/needs/{need.number}/").content.decode()
    sheet = openpyxl.load_workbook(io.BytesIO(admin.get("/experts/?format=xlsx").content))["合作项目"]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["外壳缩痕改善"][-2:] == ("基本满意", "样件提供较慢")
    assert "已开通账号" in admin.get("/experts/library/").content.decode()
    # the expert changes their own password on a page of their own
    assert "专家工作台" in c.get("/password/").content.decode()


def test_an_expert_with_a_desk_is_asked_once_to_answer_a_confirmed_pairing(county, smtp_server):
    from zoneinfo import ZoneInfo

    from qifu.reminders.models import OutboxMessage
    from qifu.reminders.sender import send_due

    e = firm(county["own_town"])
    need = actions.do_submit_need(e, *NEED, Need.Source.STAFF)
    first, second = need.pairings.order_by("rank").select_related("expert")[:2]
    Expert.objects.filter(pk=first.expert_id).update(phone="", email="mould.expert@example.edu.cn")
    actions.do_open_account(Expert.objects.get(pk=first.expert_id), "zhuanjia-mail")
    actions.do_decide(first, True)
    actions.do_decide(Pairing.objects.get(pk=first.pk), True)  # confirmed again: asked once
    actions.do_decide(second, True)  # no desk: the broker calls
    sent = OutboxMessage.objects.filter(purpose="expert")
    message = sent.get()
    assert (message.channel, message.recipient, message.entity_id) == ("email", "mould.expert@example.edu.cn", e.uscc)
    assert need.title in message.body and "专家工作台" in message.body and e.name not in message.body
    daytime = dt.datetime(2027, 5, 17, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert send_due(now=daytime)["sent"] == 1
    (to, content), = smtp_server.messages
    assert to == ["mould.expert@example.edu.cn"]
    # the broker sees what waits for the expert, and a need whose expert declined
    admin = staff(county, "admin")
    shown = admin.get(f"/experts/needs/{need.number}/").content.decode()
    assert shown.count("待专家在工作台答复") == 1 and shown.count("专家未开通工作台，请电话联系") == 1
    assert '<b id="tile-awaiting">1</b>' in admin.get("/experts/").content.decode()
    actions.do_answer(first, first.expert, False, "近期出差，时间不够")
    page = admin.get("/experts/").content.decode()
    assert '<b id="tile-awaiting">0</b>' in page and "1 条专家婉拒，待另荐" in page
    assert "专家婉拒：近期出差，时间不够" in admin.get(f"/experts/needs/{need.number}/").content.decode()
    # a confidential need's title stays out of the message
    secret = actions.do_submit_need(e, "保密注塑工艺", NEED[1], Need.Source.STAFF, confidential=True)
    pairing = secret.pairings.get(expert_id=first.expert_id) if secret.pairings.filter(expert_id=first.expert_id).exists() \
        else Pairing.objects.create(need=secret, expert_id=first.expert_id, rank=99, score=0.1)
    actions.do_decide(pairing, True)
    body = sent.get(key=f"expert:{pairing.pk}:confirmed").body
    assert "保密技术需求" in body and "保密注塑工艺" not in body


def desk(expert: Expert, username: str) -> Client:
    user, _ = actions.do_open_account(expert, username)
    user.set_password(f"{username}-own-pw")  # past the first password
    user.save()
    c = Client()
    c.force_login(user)
    return c


def test_an_expert_who_declares_a_tie_to_a_firm_is_not_proposed_for_it_nor_confirmed(county):
    mine, other = firm(county["own_town"]), firm(county["other_town"])
    need = actions.do_submit_need(mine, *NEED, Need.Source.STAFF)
    top, second = list(need.pairings.order_by("rank").select_related("expert"))[:2]
    actions.do_decide(second, True)  # confirmed, not yet answered
    c = desk(top.expert, "zhuanjia-tie")

    for form, error in (({"firm": "没有这家企业的名字", "reason": "曾任顾问"}, "没有找到企业"),
                        ({"firm": mine.uscc, "reason": ""}, "请写明与企业的关系")):
        r = c.post("/expert/act/", {"action": "conflict", **form}, follow=True)
        assert error in r.content.decode()
    assert not Conflict.objects.exists()
    r = c.post("/expert/act/", {"action": "conflict", "firm": mine.uscc.lower(), "reason": "曾任该企业技术顾问"}, follow=True)
    assert f"已申报与“{mine.name}”的利益关系" in r.content.decode()
    tie = Conflict.objects.get()
    assert (tie.expert, tie.entity, tie.declared_by) == (top.expert, mine, top.expert.user)
    assert mine.name in c.get("/expert/").content.decode()
    assert Pairing.objects.get(pk=top.pk).status == Pairing.Status.DECLINED  # the open proposal set aside
    r = c.post("/expert/act/", {"action": "conflict", "firm": mine.uscc, "reason": "再申报一次"}, follow=True)
    assert "已申报过" in r.content.decode()

    again = actions.do_submit_need(mine, *NEED, Need.Source.STAFF)
    assert top.expert_id not in set(again.pairings.values_list("expert_id", flat=True))
    elsewhere = actions.do_submit_need(other, *NEED, Need.Source.STAFF)
    assert top.expert_id in set(elsewhere.pairings.values_list("expert_id", flat=True))
    with pytest.raises(actions.ExpertActionError, match="应当回避"):
        actions.do_decide(Pairing.objects.get(pk=top.pk), True)

    # the confirmed expert declines on their desk, saying they are tied to the firm
    c2 = desk(second.expert, "zhuanjia-tie2")
    r = c2.post("/expert/act/", {"action": "decline", "pairing": second.pk, "note": "亲属在该企业任职", "conflict": "1"},
                follow=True)
    assert "已答复婉拒并申报回避" in r.content.decode()
    answered = Pairing.objects.get(pk=second.pk)
    assert (answered.answer, answered.answer_note) == (Pairing.Answer.DECLINED, "利益回避：亲属在该企业任职")
    assert Conflict.objects.filter(expert=second.expert, entity=mine).exists()
    assert second.expert_id not in set(actions.do_submit_need(mine, *NEED, Need.Source.STAFF)
                                       .pairings.values_list("expert_id", flat=True))

    admin = staff(county, "admin")
    page = admin.get(f"/experts/needs/{need.number}/").content.decode()
    assert "利益回避，不推荐" in page and "曾任该企业技术顾问" in page and top.expert.name in page

    # the broker knows of a tie of a proposed expert (who has no desk) and records it
    third = need.pairings.filter(status=Pairing.Status.PROPOSED).select_related("expert").first()
    admin.post(f"/experts/needs/{need.number}/act/", {"action": "tie", "pairing": third.pk, "reason": "专家之子在该企业任职"})
    recorded = Conflict.objects.get(expert=third.expert)
    assert recorded.declared_by == county["users"]["admin"] and recorded.entity == mine
    assert Pairing.objects.get(pk=third.pk).status == Pairing.Status.DECLINED

    # withdrawn (the tie has ended): kept as a record, and the expert may be proposed again
    r = c.post("/expert/act/", {"action": "withdraw", "conflict": recorded.pk}, follow=True)
    assert "不是您申报的" in r.content.decode() and Conflict.objects.get(pk=recorded.pk).withdrawn_at is None
    c.post("/expert/act/", {"action": "withdraw", "conflict": tie.pk})
    tie.refresh_from_db()
    assert tie.withdrawn_at is not None and tie.withdrawn_by == top.expert.user
    assert mine.name not in c.get("/expert/").content.decode().split('id="conflicts"')[1].split("</section>")[0]
    assert top.expert_id in set(actions.do_submit_need(mine, *NEED, Need.Source.STAFF).pairings.values_list("expert_id", flat=True))
    actions.do_declare_conflict(top.expert, mine.uscc, "又担任顾问")  # declared again: a new record beside the old
    assert Conflict.objects.filter(expert=top.expert, entity=mine).count() == 2

    # staff withdraw a tie staff recorded; one the expert declared on their desk is the expert's
    page = admin.get(f"/experts/needs/{need.number}/").content.decode().split('id="ties"')[1]
    assert "专家本人申报，由专家在工作台撤回" in page and "admin登记" in page
    own = Conflict.objects.standing().get(expert=second.expert, entity=mine)
    r = admin.post(f"/experts/needs/{need.number}/act/", {"action": "untie", "conflict": own.pk}, follow=True)
    assert "由专家在工作台撤回" in r.content.decode() and Conflict.objects.get(pk=own.pk).withdrawn_at is None
    r = admin.post(f"/experts/needs/{need.number}/act/", {"action": "untie", "conflict": recorded.pk}, follow=True)
    assert f"已撤回 {third.expert.name} 与本企业的回避" in r.content.decode()
    recorded.refresh_from_db()
    assert recorded.withdrawn_at is not None and recorded.withdrawn_by == county["users"]["admin"]
    assert third.expert_id in set(actions.do_submit_need(mine, *NEED, Need.Source.STAFF)
                                  .pairings.values_list("expert_id", flat=True))


def newcomer(like: Expert, code: str) -> Expert:
    """An expert in ``like``'s line, new to the library (proposed for no need yet)."""
    return Expert.objects.create(code=code, name=f"新专家{code[-1]}", institution="宁波某研究院", fields=like.fields,
                                 skills=like.skills, projects=like.projects, consent=True, updated_at=timezone.now())


def offers(c: Client) -> str:
    """The desk's list of open needs the expert may offer to take."""
    return c.get("/expert/").content.decode().split('id="offers"')[1].split("</section>")[0]


def test_an_expert_offers_to_take_an_open_need_in_their_line_and_the_broker_decides(county):
    mine = firm(county["own_town"])
    need = actions.do_submit_need(mine, *NEED, Need.Source.STAFF)
    secret = actions.do_submit_need(mine, "注塑模具保密改造", NEED[1] + "，涉及尚未公开的新品", Need.Source.STAFF,
                                    confidential=True)
    best = need.pairings.order_by("rank").first().expert
    # an expert in the same line who joined the library after the need was registered
    expert = newcomer(best, "E-NEW-1")
    c = desk(expert, "zhuanjia-offer")
    listed = offers(c)
    assert need.number in listed and NEED[0] in listed
    assert secret.number not in listed  # confidential needs go only to the experts staff choose
    assert mine.name not in listed and mine.uscc not in listed  # the firm, once the broker confirms
    # experts who share a word or two with the need but whom its matching scores far below the
    # best (the ones proposed after the first, here, and the next one) are not offered it
    for far, score, words in actions.rank(f"{NEED[0]} {NEED[1]}", 8)[2:]:
        assert words and score < actions.VOLUNTEER_SHARE * actions.rank(f"{NEED[0]} {NEED[1]}", 1)[0][1]
        assert need.number not in offers(desk(Expert.objects.get(pk=far), f"zhuanjia-far-{far}"))

    # a confidential need and one that is not there get one answer: the desk does not say which
    for number, note, error in ((need.number, "可以", "至少4个字"), (secret.number, "做过注塑模流分析", actions.NOT_OPEN_TO_OFFERS),
                                ("N-NONE", "做过注塑模流分析", actions.NOT_OPEN_TO_OFFERS)):
        r = c.post("/expert/act/", {"action": "volunteer", "need": number, "note": note}, follow=True)
        assert error in r.content.decode()
    assert not Pairing.objects.filter(expert=expert).exists()
    r = c.post("/expert/act/", {"action": "volunteer", "need": need.number, "note": "做过家电外壳模流分析，可先看样件"},
               follow=True)
    assert "已自荐" in r.content.decode()
    offer = Pairing.objects.get(need=need, expert=expert)
    assert (offer.status, offer.volunteer_note) == (Pairing.Status.PROPOSED, "做过家电外壳模流分析，可先看样件")
    assert offer.volunteered_at is not None and offer.rank == need.pairings.count()
    listed = offers(c)
    assert f'id="offer-{need.number}"' not in listed and "待技术经纪人确认" in listed
    r = c.post("/expert/act/", {"action": "volunteer", "need": need.number, "note": "再自荐一次试试"}, follow=True)
    assert "已自荐过" in r.content.decode()

    admin = staff(county, "admin")
    assert '<b id="tile-volunteered">1</b>' in admin.get("/experts/").content.decode()
    offered = admin.get("/experts/", {"status": "offered"}).content.decode().split('id="need-table"')[1]
    assert need.number in offered and secret.number not in offered  # the needs with an offer, for the broker
    page = admin.get(f"/experts/needs/{need.number}/").content.decode()
    assert "专家自荐" in page and "做过家电外壳模流分析，可先看样件" in page
    actions.do_decide(offer, True, by=county["users"]["admin"])
    waiting = c.get("/expert/").content.decode().split('id="waiting"')[1].split("</section>")[0]
    assert mine.name in waiting and NEED[0] in waiting
    assert '<b id="tile-volunteered">0</b>' in admin.get("/experts/").content.decode()

    # one who takes no new needs sees none and offers none; one tied to the firm, not its needs
    later = actions.do_submit_need(mine, "注塑件冷却水路优化", NEED[1], Need.Source.STAFF)
    other = newcomer(best, "E-NEW-2")
    c2 = desk(other, "zhuanjia-other")
    assert later.number in offers(c2)
    actions.do_set_availability(other, Expert.Availability.UNAVAILABLE)
    assert later.number not in offers(c2) and "暂不对接" in offers(c2)
    with pytest.raises(actions.ExpertActionError, match="暂不对接"):
        actions.do_volunteer(later, Expert.objects.get(pk=other.pk), "做过注塑模流分析")
    actions.do_set_availability(other, Expert.Availability.AVAILABLE)
    assert later.number in offers(c2)
    actions.do_declare_conflict(other, mine.uscc, "曾任该企业技术顾问")
    assert later.number not in offers(c2)
    with pytest.raises(actions.ExpertActionError, match="应当回避"):
        actions.do_volunteer(later, Expert.objects.get(pk=other.pk), "做过注塑模流分析")


def test_an_expert_with_a_desk_hears_each_morning_of_the_new_needs_they_could_take(county):
    from qifu.experts import notices
    from qifu.reminders.models import OutboxMessage

    mine = firm(county["own_town"])
    start = timezone.now() - dt.timedelta(days=3)
    need = actions.do_submit_need(mine, *NEED, Need.Source.STAFF, now=start)
    secret = actions.do_submit_need(mine, "注塑模具保密改造", NEED[1] + "，涉及尚未公开的新品", Need.Source.STAFF,
                                    confidential=True, now=start)
    best = need.pairings.order_by("rank").first().expert
    # five experts in the same line who joined before them take the proposals of the needs to
    # come (equal scores go in the order experts joined)
    for k in range(1, 6):
        newcomer(best, f"E-EARLY-{k}")
    expert, no_desk = newcomer(best, "E-NEW-1"), newcomer(best, "E-NEW-2")
    Expert.objects.filter(pk__in=[expert.pk, no_desk.pk]).update(phone="", email="new.expert@example.edu.cn")
    desk(Expert.objects.get(pk=expert.pk), "zhuanjia-news")
    mail = OutboxMessage.objects.filter(purpose="expert", recipient="new.expert@example.edu.cn")

    morning = start + dt.timedelta(hours=20)
    assert notices.new_needs(morning) == 1
    told = mail.get()
    assert "1 条新的企业技术需求" in told.body and f"“{NEED[0]}”（编号{need.number}）" in told.body
    assert secret.number not in told.body and "保密" not in told.body  # confidential needs go only to those staff choose
    assert mine.name not in told.body and mine.uscc not in told.body  # the firm, once the broker confirms
    assert told.channel == "email" and told.entity_id == mine.uscc and told.addressee == "expert"
    # filed under the firm of the first need, it is no contact of that firm's: not on its page
    page = staff(county, "admin").get(f"/entities/{mine.uscc}/").content.decode()
    assert told.reason not in page and "专家通知" not in page
    assert notices.new_needs(morning + dt.timedelta(minutes=5)) == 0  # told once

    # the next morning: only what was registered since; a need they offered to take or were
    # proposed for is not news
    later = actions.do_submit_need(mine, "注塑件冷却水路优化", NEED[1], Need.Source.STAFF, now=morning + dt.timedelta(hours=2))
    offered = actions.do_submit_need(mine, "注塑外壳翘曲分析", NEED[1], Need.Source.STAFF, now=morning + dt.timedelta(hours=3))
    actions.do_volunteer(offered, Expert.objects.get(pk=expert.pk), "做过家电外壳模流分析")
    assert not later.pairings.filter(expert=expert).exists()
    assert notices.new_needs(morning + dt.timedelta(days=1)) == 1
    news = mail.exclude(pk=told.pk).get()
    assert later.number in news.body and need.number not in news.body and offered.number not in news.body

    # one who unticks the box on their desk, takes no new needs, or is tied to the firm hears
    # nothing of its needs
    c = Client()
    c.force_login(Expert.objects.get(pk=expert.pk).user)
    r = c.post("/expert/act/", {"action": "news"}, follow=True)
    assert "不再每天告诉您新需求" in r.content.decode() and 'name="news" value="on" >' in r.content.decode()
    actions.do_submit_need(mine, "注塑模具冷却改进", NEED[1], Need.Source.STAFF, now=morning + dt.timedelta(days=1, hours=2))
    assert notices.new_needs(morning + dt.timedelta(days=2)) == 0
    r = c.post("/expert/act/", {"action": "news", "news": "on"}, follow=True)
    assert 'name="news" value="on" checked' in r.content.decode()
    actions.do_set_availability(Expert.objects.get(pk=expert.pk), Expert.Availability.UNAVAILABLE)
    assert notices.new_needs(morning + dt.timedelta(days=2, hours=1)) == 0
    actions.do_set_availability(Expert.objects.get(pk=expert.pk), Expert.Availability.AVAILABLE)
    actions.do_declare_conflict(Expert.objects.get(pk=expert.pk), mine.uscc, "曾任该企业技术顾问")
    actions.do_submit_need(mine, "注塑冷却水路设计", NEED[1], Need.Source.STAFF, now=morning + dt.timedelta(days=2, hours=2))
    assert notices.new_needs(morning + dt.timedelta(days=3)) == 0
    assert mail.count() == 2  # and the expert without a desk heard nothing at all


def test_the_morning_message_searches_each_new_need_once_however_many_experts_hear_of_it(county, monkeypatch):
    from qifu.engine.assistant.textindex import TextIndex
    from qifu.experts import notices
    from qifu.reminders.models import OutboxMessage

    mine = firm(county["own_town"])
    best = actions.rank(f"{NEED[0]} {NEED[1]}", 1)[0][0]
    for k in range(1, 6):
        newcomer(Expert.objects.get(pk=best), f"E-EARLY-{k}")
    told = []
    for k in range(1, 4):
        e = newcomer(Expert.objects.get(pk=best), f"E-DESK-{k}")
        Expert.objects.filter(pk=e.pk).update(phone="", email=f"desk{k}@example.edu.cn")
        desk(Expert.objects.get(pk=e.pk), f"zhuanjia-desk-{k}")
        told.append(f"desk{k}@example.edu.cn")
    start = timezone.now() - dt.timedelta(days=1)
    needs = [actions.do_submit_need(mine, *NEED, Need.Source.STAFF, now=start),
             actions.do_submit_need(mine, "注塑件冷却水路优化", NEED[1], Need.Source.STAFF, now=start)]

    searched = []
    search = TextIndex.search
    monkeypatch.setattr(TextIndex, "search", lambda self, query, limit=20: searched.append(query) or search(self, query, limit))
    assert notices.new_needs(start + dt.timedelta(hours=20)) == 3
    for recipient in told:
        body = OutboxMessage.objects.get(purpose="expert", recipient=recipient).body
        assert "2 条新的企业技术需求" in body and all(n.number in body for n in needs)
    for n in needs:  # one search of the expert index per need, not one per expert
        assert searched.count(f"{n.title} {n.text}") <= 1


# --- the results library (科技成果) ----------------------------------------------------------------


@pytest.fixture
def library(county):
    if not Achievement.objects.exists():
        import_file("achievements", county["folder"] / "achievements.csv")
    yield county
    Achievement.objects.all().delete()


def test_the_results_library_is_imported_and_a_bad_sheet_changes_nothing(library, tmp_path):
    rows = pl.read_csv(library["folder"] / "achievements.csv", infer_schema=False)
    assert Achievement.objects.count() == rows.height and Achievement.objects.filter(expert__isnull=False).count() == rows.height
    assert Achievement.objects.filter(public=False).exists() and Achievement.objects.filter(price__isnull=True).exists()
    again = import_file("achievements", library["folder"] / "achievements.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, rows.height)
    bad = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("EX99999")).otherwise(pl.col("expert_code")).alias("expert_code"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("快好了")).otherwise(pl.col("maturity")).alias("maturity"),
        pl.lit("新名称").alias("title"))
    bad.write_csv(tmp_path / "achievements.csv")
    with pytest.raises(InvalidFile) as err:
        import_file("achievements", tmp_path / "achievements.csv")
    assert sorted((e.row, e.field) for e in err.value.errors) == [(2, "expert_code"), (4, "maturity")]
    assert not Achievement.objects.filter(title="新名称").exists()


def test_an_achievement_finds_the_needs_it_could_answer_and_a_need_its_achievements(library):
    a = Achievement.objects.filter(public=True).order_by("code").first()
    mine, theirs = firm(library["own_town"]), firm(library["other_town"])
    text = f"我们想解决{a.fields}方面的问题：{a.summary[:60]}"
    need = actions.do_submit_need(mine, a.title[:30], text, Need.Source.STAFF)
    other = actions.do_submit_need(theirs, a.title[:30], text, Need.Source.STAFF)
    unrelated = actions.do_submit_need(mine, "杨梅保鲜", "杨梅深加工产品保鲜期太短，想改进保鲜工艺和冷链", Need.Source.STAFF)
    assert a in [x for x, _ in actions.achievements_for(need)]
    admin, officer = staff(library, "admin"), staff(library, "officer")
    page = admin.get(f"/experts/needs/{need.number}/").content.decode()
    assert 'id="need-achievements"' in page and a.title in page
    page = admin.get(f"/experts/achievements/{a.code}/").content.decode().split('id="achievement-matches"')[1]
    assert need.number in page and other.number in page and unrelated.number not in page
    page = officer.get(f"/experts/achievements/{a.code}/").content.decode().split('id="achievement-matches"')[1]
    assert need.number in page and other.number not in page  # the officer's township only
    found = officer.get("/experts/achievements/", {"q": a.title[:8]}).content.decode()
    assert a.code in found and "匹配词" in found
    assert '<b id="tile-achievements">' in officer.get("/experts/").content.decode()


def test_a_firm_asks_about_an_achievement_and_its_expert_is_proposed_first(library):
    a = Achievement.objects.filter(public=True, expert__availability="available").order_by("code").first()
    shown = set(Achievement.objects.filter(public=True).values_list("title", flat=True))
    hidden = next(h for h in Achievement.objects.filter(public=False) if h.title not in shown)
    f = firm(library["own_town"])
    anonymous = Client().get("/portal/experts/achievements/").content.decode()
    assert a.title in anonymous and hidden.title not in anonymous and "<summary>我想了解" not in anonymous
    c = portal_client(f.uscc)
    assert "<summary>我想了解" in c.get("/portal/experts/achievements/").content.decode()
    r = c.post(f"/portal/experts/achievements/{a.code}/ask/", {"note": "好"}, follow=True)
    assert "至少4个字" in r.content.decode() and not Need.objects.exists()
    assert c.post(f"/portal/experts/achievements/{hidden.code}/ask/", {"note": "想了解转化费用"}).status_code == 404
    r = c.post(f"/portal/experts/achievements/{a.code}/ask/", {"note": "想用在我们的产品上，了解转化费用"}, follow=True)
    need = Need.objects.get()
    assert "已提交" in r.content.decode() and (need.achievement, need.source, need.entity) == (a, "portal", f)
    first = need.pairings.order_by("rank").first()
    assert first.expert == a.expert and first.rank == 0 and "成果联系专家" in first.words
    assert a.code in need.text and need.title.startswith("了解科技成果")
    r = c.post(f"/portal/experts/achievements/{a.code}/ask/", {"note": "再问一次这项成果"}, follow=True)
    assert "正在对接" in r.content.decode() and Need.objects.count() == 1
    assert "已提出，正在对接" in c.get("/portal/experts/achievements/").content.decode()
    admin = staff(library, "admin")
    assert need.number in admin.get(f"/experts/achievements/{a.code}/").content.decode().split('id="achievement-asked"')[1]
    assert "企业提出了解科技成果 1 条" in admin.get("/").content.decode()  # the home dashboard
    book = openpyxl.load_workbook(io.BytesIO(admin.get("/experts/?format=xlsx").content))
    rows = {r[0]: r[9] for r in book["科技成果"].iter_rows(min_row=2, values_only=True)}
    assert rows[a.code] == 1 and len(rows) == Achievement.objects.count()
    # an expert who declared a tie to the firm is not put first for it
    other = Achievement.objects.filter(public=True, expert__availability="available").exclude(expert=a.expert).first()
    actions.do_declare_conflict(other.expert, f.uscc, "曾任该企业技术顾问")
    tied = actions.do_ask_about(f, other, "想了解这项成果的应用")
    assert not tied.pairings.filter(expert=other.expert).exists()
    assert staff(library, "noroles").get("/experts/achievements/").status_code in (302, 403)


def test_the_api_searches_the_public_library_and_asks_about_an_achievement(library):
    a = Achievement.objects.filter(public=True, expert__isnull=False).order_by("code").first()
    hidden = Achievement.objects.filter(public=False).order_by("code").first()
    f = firm(library["own_town"])
    c = portal_client(f.uscc)
    assert Client().get("/api/v1/experts/achievements").status_code == 401
    listed = c.get("/api/v1/experts/achievements").json()
    codes = [x["code"] for x in listed]
    assert a.code in codes and hidden.code not in codes and codes == sorted(codes)
    shown = next(x for x in listed if x["code"] == a.code)
    assert (shown["title"], shown["maturity"], shown["asked"], shown["matched"]) == (a.title, a.maturity, False, [])
    assert shown["expert"] == (f"{a.expert.name}（{a.expert.institution}）" if a.expert.consent else None)
    found = c.get("/api/v1/experts/achievements", {"q": a.title}).json()
    assert found[0]["code"] == a.code and found[0]["matched"]
    assert hidden.code not in [x["code"] for x in c.get("/api/v1/experts/achievements", {"q": hidden.title}).json()]
    # asking: bad input and a hidden achievement refused, nothing stored; then a need, once
    post = lambda code, note: c.post(f"/api/v1/experts/achievements/{code}/ask", {"note": note},  # noqa: E731
                                     content_type="application/json", HTTP_X_CSRFTOKEN="x")
    assert post(a.code, "好").status_code == 422 and post(hidden.code, "想了解转化费用").status_code == 404
    assert not Need.objects.exists()
    r = post(a.code, "想用在我们的产品上，了解转化费用")
    need = Need.objects.get()
    assert r.status_code == 201 and r.json()["number"] == need.number and need.achievement == a
    again = post(a.code, "再问一次这项成果")
    assert again.status_code == 400 and "正在对接" in again.json()["detail"] and Need.objects.count() == 1
    assert next(x for x in c.get("/api/v1/experts/achievements").json() if x["code"] == a.code)["asked"] is True
