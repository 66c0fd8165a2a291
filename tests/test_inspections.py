"""Spot checks of the annual reports (年报抽查): who may be drawn, the draw by a kept seed (the
same entities again from the same seed), two inspectors each from the township's officers and
the county's administrators, a targeted check by an expression of the policies' language, the
inspectors' results (an address found empty lists the entity), the township scope, the pages,
the workbook, the entity's page, the home dashboard and the portal."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from qifu.abnormal.models import Listing
from qifu.accounts.models import StaffProfile
from qifu.checks.models import Finding
from qifu.inspections import actions
from qifu.inspections.models import Inspection, Sample
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage
from qifu.reports.models import AnnualReport
from tests.factories import portal_client

pytestmark = pytest.mark.django_db
YEAR = 2025


def staff(county, name: str) -> Client:
    c = Client()
    c.force_login(county["users"][name])
    return c


def filed_and_trading(year: int) -> set[str]:
    """Worked out apart from the query under test: a report of the year, and still active."""
    filed = set(AnnualReport.objects.filter(report_year=year).values_list("entity_id", flat=True))
    return {u for u, status in Entity.objects.values_list("uscc", "status") if status == "active" and u in filed}


def test_a_random_draw_takes_the_rate_of_those_that_filed_by_its_seed_and_never_the_same_entity_twice(checked_county):
    admin, officer = checked_county["users"]["admin"], checked_county["users"]["officer"]
    own = checked_county["own_town"].code
    pool = filed_and_trading(YEAR)
    assert actions.population(YEAR) == sorted(pool)
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "10", by=admin, seed="abc123")
    drawn = list(x.samples.values_list("entity_id", flat=True))
    assert x.population == len(pool) and len(drawn) == math.ceil(len(pool) * 0.1) > 1
    assert x.number == f"抽〔{timezone.localdate().year}〕001号" and x.rate == Decimal("10.00")
    # anyone can draw the same entities again from the same population and seed: the smallest
    # SHA-256 tickets of seed + credit code, worked out here apart from the code under test
    tickets = sorted(pool, key=lambda u: hashlib.sha256(("abc123" + u).encode()).hexdigest())
    assert set(drawn) == set(tickets[:len(drawn)]) == set(actions.draw(list(pool), len(drawn), "abc123"))
    assert set(actions.draw(list(pool), len(drawn), "abc124")) != set(drawn)
    # two inspectors: the township's one officer, topped up with the county's administrator
    for s in x.samples.prefetch_related("inspectors"):
        people = {u.username for u in s.inspectors.all()}
        assert people == ({"officer", "admin"} if s.town_id == own else {"admin"}), s.entity_id
    # the next draw of the year leaves out those drawn already
    assert set(actions.population(YEAR)) == pool - set(drawn)
    y = actions.do_draw(YEAR, "random", "补充抽查", "100", by=admin, town=own)
    again = set(y.samples.values_list("entity_id", flat=True))
    assert again and not again & set(drawn) and y.number.endswith("002号")
    assert again == {u for u in pool - set(drawn) if Entity.objects.get(pk=u).town_id == own}
    with pytest.raises(actions.InspectionError, match="没有可抽取的主体"):
        actions.do_draw(YEAR, "random", "再抽", "5", by=admin, town=own)
    # mistakes are refused before anything is drawn
    for kwargs, why in (({"rate": "0"}, "大于 0"), ({"rate": "abc"}, "百分数"), ({"kind": "x"}, "抽查方式"),
                        ({"criteria": "open_findings > 0"}, "不设定向条件"), ({"title": ""}, "任务名称"),
                        ({"year": timezone.localdate().year}, "报告年度")):
        args = {"year": YEAR, "kind": "random", "title": "抽查", "rate": "5"} | kwargs
        with pytest.raises(actions.InspectionError, match=why):
            actions.do_draw(args.pop("year"), args.pop("kind"), args.pop("title"), args.pop("rate"), by=officer, **args)
    assert Inspection.objects.count() == 2


def test_a_targeted_draw_reads_the_profile_through_the_policies_language(checked_county):
    admin = checked_county["users"]["admin"]
    with_findings = set(Finding.objects.filter(report_year=YEAR, status="open", severity__in=["block", "high"])
                        .values_list("entity_id", flat=True))
    expected = filed_and_trading(YEAR) & with_findings
    assert expected  # the small county's reports have serious findings
    x = actions.do_draw(YEAR, "targeted", "严重校验问题定向抽查", "100", by=admin, criteria="open_findings > 0")
    assert set(x.samples.values_list("entity_id", flat=True)) == expected and x.population == len(expected)
    assert x.criteria == "open_findings > 0" and x.get_kind_display() == "定向抽查"
    with pytest.raises(actions.InspectionError, match="定向条件"):
        actions.do_draw(YEAR, "targeted", "错条件", "5", by=admin, criteria="no_such_field > 1")
    with pytest.raises(actions.InspectionError, match="请写明定向条件"):
        actions.do_draw(YEAR, "targeted", "无条件", "5", by=admin)


def test_inspectors_record_results_and_an_empty_address_lists_the_entity(checked_county):
    admin = checked_county["users"]["admin"]
    own = checked_county["own_town"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=own.code, seed="s1")
    samples = list(x.samples.select_related("entity").order_by("entity_id"))
    ok, empty, wrong = samples[0], samples[1], samples[2]
    officer = staff(checked_county, "officer")
    today = timezone.localdate()
    page = officer.get(f"/inspections/{x.pk}/").content.decode()
    assert f'id="sample-{ok.pk}"' in page and f'action="/inspections/samples/{ok.pk}/record/"' in page
    r = officer.post(f"/inspections/samples/{ok.pk}/record/", {"result": "ok", "checked_on": today.isoformat()},
                     follow=True)
    assert "已录入检查结果：未发现问题" in r.content.decode()
    ok.refresh_from_db()
    assert (ok.result, ok.checked_on, ok.recorded_by.username) == ("ok", today, "officer")
    # a problem is described; a day in the future is refused
    r = officer.post(f"/inspections/samples/{wrong.pk}/record/", {"result": "corrected", "checked_on": today.isoformat(),
                                                                 "found": "无"}, follow=True)
    assert "至少4个字" in r.content.decode()
    r = officer.post(f"/inspections/samples/{wrong.pk}/record/",
                     {"result": "corrected", "found": "从业人数填写有误", "checked_on": (today + dt.timedelta(days=1)).isoformat()},
                     follow=True)
    assert "不能晚于今天" in r.content.decode()
    officer.post(f"/inspections/samples/{wrong.pk}/record/", {"result": "corrected", "checked_on": today.isoformat(),
                                                             "found": "年报从业人数与社保参保人数不符，已责令更正"})
    wrong.refresh_from_db()
    assert wrong.result == "corrected"
    told = OutboxMessage.objects.filter(key=f"inspection-corrected:{wrong.pk}")
    assert told.count() == (1 if wrong.entity.phone or wrong.entity.email else 0)
    if told:
        assert "年报从业人数与社保参保人数不符" in told.get().body and x.number in told.get().body
    # an address found empty lists the entity at once, on the unreachable ground, with the check's words
    officer.post(f"/inspections/samples/{empty.pk}/record/", {"result": "unreachable", "checked_on": today.isoformat(),
                                                             "found": "实地核查，登记住所为空置厂房"})
    empty.refresh_from_db()
    listing = Listing.objects.get(entity=empty.entity)
    assert empty.listing == listing and listing.ground == "unreachable" and listing.found_on == today
    assert x.number in listing.found and "空置厂房" in listing.found and listing.listed_by.username == "officer"
    r = officer.post(f"/inspections/samples/{empty.pk}/record/", {"result": "ok", "checked_on": today.isoformat()},
                     follow=True)
    assert "请先在经营异常名录中撤销" in r.content.decode()
    empty.refresh_from_db()
    assert empty.result == "unreachable"
    # another officer of the township who was not sent may not record; the leader reads only;
    # another township's officer does not see it
    User = get_user_model()
    other = User.objects.create_user("second-officer", password="second-pw-for-tests")
    StaffProfile.objects.create(user=other, role="officer", town=own)
    c = Client()
    c.force_login(other)
    r = c.post(f"/inspections/samples/{samples[3].pk}/record/", {"result": "ok", "checked_on": today.isoformat()},
               follow=True)
    assert "只有被选派的检查人员" in r.content.decode()
    assert staff(checked_county, "leader").post(f"/inspections/samples/{samples[3].pk}/record/",
                                                {"result": "ok", "checked_on": today.isoformat()}).status_code == 403
    stranger = User.objects.create_user("elsewhere", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=stranger, role="officer", town=checked_county["other_town"])
    c.force_login(stranger)
    assert c.get(f"/inspections/{x.pk}/").status_code == 404
    assert c.post(f"/inspections/samples/{samples[3].pk}/record/", {"result": "ok"}).status_code == 404
    samples[3].refresh_from_db()
    assert samples[3].result == ""
    # the measures, the workbook, the entity's page, the dashboard and the portal
    page = officer.get("/inspections/").content.decode()
    assert '<b id="tile-checked">3</b>' in page and '<b id="tile-listed">1</b>' in page
    assert f'<b id="tile-waiting">{len(samples) - 3}</b>' in page and 'id="inspections-mine"' in page
    book = openpyxl.load_workbook(io.BytesIO(officer.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    rows = {r[0]: r for r in book["抽查对象"].iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {s.entity_id for s in samples}
    assert rows[empty.entity_id][5] == "通过登记的住所或者经营场所无法联系" and rows[empty.entity_id][14] == listing.number
    assert dict(book["抽查任务"].iter_rows(values_only=True))["随机种子"] == "s1"
    page = officer.get(f"/entities/{wrong.entity_id}/").content.decode()
    assert f'id="entity-sample-{wrong.pk}"' in page and "发现问题已责令改正" in page
    dashboard = officer.get("/").content.decode()
    assert "待我检查" in dashboard and 'id="chart-inspection-results"' in dashboard
    chart = json.loads(dashboard.split('<script id="inspection-chart-data" type="application/json">')[1].split("</script>")[0])
    checked = dict(Sample.objects.exclude(result="").values_list("result").annotate(n=Count("id")))
    assert chart["inspection-results"]["values"] == [checked.get(r.value, 0) for r in Sample.Result]
    home = portal_client(wrong.entity_id).get("/portal/").content.decode()
    assert f'id="check-{wrong.pk}"' in home and "年报从业人数与社保参保人数不符" in home
    home = portal_client(samples[3].entity_id).get("/portal/").content.decode()
    assert f'id="check-{samples[3].pk}"' in home and "检查人员将在" in home


def test_only_administrators_draw_on_the_page(checked_county):
    form = {"year": YEAR, "kind": "random", "title": "页面抽查", "rate": "5", "town": "", "finish_by": "", "criteria": ""}
    r = staff(checked_county, "officer").post("/inspections/draw/", form, follow=True)
    assert "只有局管理员可以抽取" in r.content.decode() and not Inspection.objects.exists()
    assert staff(checked_county, "leader").post("/inspections/draw/", form).status_code == 403
    r = staff(checked_county, "admin").post("/inspections/draw/", form, follow=True)
    x = Inspection.objects.get()
    assert r.redirect_chain[-1][0] == f"/inspections/{x.pk}/" and "已抽取" in r.content.decode()
    assert f'id="inspection-seed">{x.seed}<' in r.content.decode()
    r = staff(checked_county, "admin").post("/inspections/draw/", form | {"kind": "targeted", "criteria": "x >"},
                                            follow=True)
    assert "定向条件" in r.content.decode() and Inspection.objects.count() == 1
    # an officer sees the check only through its own township's samples
    own = Sample.objects.filter(inspection=x, town=checked_county["own_town"]).count()
    page = staff(checked_county, "officer").get("/inspections/").content.decode()
    assert (f'id="inspection-{x.pk}"' in page) == bool(own)
    # a department member sees no check and no entity drawn
    from qifu.service_requests.models import Department

    clerk = get_user_model().objects.create_user("clerk", password="clerk-pw-for-tests")
    StaffProfile.objects.create(user=clerk, role="department", department=Department.objects.first())
    c = Client()
    c.force_login(clerk)
    assert f'id="inspection-{x.pk}"' not in c.get("/inspections/").content.decode()
    assert c.get(f"/inspections/{x.pk}/").status_code == 404


def test_a_report_found_false_lists_the_entity_until_it_has_corrected_what_it_published(checked_county):
    from qifu.abnormal import actions as abnormal
    from qifu.abnormal import documents

    admin = checked_county["users"]["admin"]
    own = checked_county["own_town"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=own.code, seed="s2")
    s = x.samples.select_related("entity").filter(entity__entity_type="enterprise").order_by("entity_id").first()
    officer = staff(checked_county, "officer")
    today = timezone.localdate()
    officer.post(f"/inspections/samples/{s.pk}/record/", {"result": "false_info", "checked_on": today.isoformat(),
                                                         "found": "年报从业人数30人，社保参保记录为3人"})
    s.refresh_from_db()
    listing = s.listing
    assert listing is not None and listing.ground == "false_info" and listing.report_year is None
    assert listing.found_on == today and "社保参保记录为3人" in listing.found and listing.address == ""
    assert listing.because == "公示企业信息隐瞒真实情况、弄虚作假" and listing.about == "信息不实"
    told = OutboxMessage.objects.filter(key=abnormal.told_key(listing))
    if s.entity.phone or s.entity.email:
        assert "弄虚作假" in told.get().body and "更正公示的信息后" in told.get().body
    d = documents.decision(Listing.objects.select_related("entity").get(pk=listing.pk))
    assert "隐瞒真实情况、弄虚作假" in d.paragraphs[0] and "社保参保记录为3人" in d.paragraphs[0]
    assert "更正公示的信息后" in d.paragraphs[1]
    # a second result of the same kind for the same entity keeps the standing listing
    with pytest.raises(abnormal.ListingError, match="尚未移出"):
        abnormal.do_list_false(s.entity, today, "再次查实年报信息不实", by=admin)
    # the list's page counts and filters it; the firm sees it and applies with what it corrected
    page = officer.get("/abnormal/", {"status": "false_info"}).content.decode()
    assert '<b id="tile-false-info">1</b>' in page and f'id="listing-{listing.pk}"' in page
    firm = portal_client(s.entity_id)
    home = firm.get("/portal/").content.decode()
    assert "公示的信息隐瞒真实情况、弄虚作假" in home and f'id="abnormal-apply-{listing.pk}"' in home
    api = firm.get("/api/v1/abnormal").json()
    assert [(r["ground"], r["report_year"], r["found_on"]) for r in api] == [("false_info", None, today.isoformat())]
    r = firm.post(f"/api/v1/abnormal/{listing.pk}/apply", {"statement": "改"}, content_type="application/json")
    assert r.status_code == 400 and "更正了哪些" in r.json()["detail"]
    r = firm.post(f"/api/v1/abnormal/{listing.pk}/apply", {"statement": "已更正2025年度年报的从业人数"},
                  content_type="application/json")
    assert r.status_code == 200 and r.json()["status"] == "applied"
    # staff remove it saying what they checked; the removal's decision says it was corrected
    listing.refresh_from_db()
    with pytest.raises(abnormal.ListingError, match="核实的情况"):
        abnormal.do_remove(listing, admin, "")
    abnormal.do_remove(listing, admin, "已核对更正后的年报与社保记录一致")
    listing.refresh_from_db()
    assert listing.status == "removed"
    r = listing.rulings.get()
    assert "已更正公示的信息" in documents.ruling(r).paragraphs[1]
    # the result cannot change while the listing stands; once off, it can be recorded again
    s.refresh_from_db()
    actions.do_record(s, "corrected", "已责令更正从业人数", today, admin)
    s.refresh_from_db()
    assert s.result == "corrected" and s.listing is None


def test_an_order_to_correct_is_followed_up_and_not_correcting_by_its_last_day_lists_the_entity(checked_county):
    from qifu.abnormal import actions as abnormal
    from qifu.abnormal import documents

    admin = checked_county["users"]["admin"]
    own = checked_county["own_town"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=own.code, seed="s3")
    told, late = x.samples.select_related("entity").order_by("entity_id")[:2]
    officer = staff(checked_county, "officer")
    today = timezone.localdate()
    for s in (told, late):
        officer.post(f"/inspections/samples/{s.pk}/record/", {"result": "corrected", "checked_on": today.isoformat(),
                                                             "found": "年报从业人数与社保参保人数不符"})
        s.refresh_from_db()
        assert s.correct_by == today + dt.timedelta(days=10) and s.correction(today) == "waiting"
    last = told.correct_by
    message = OutboxMessage.objects.filter(key=f"inspection-corrected:{told.pk}")
    if told.entity.phone or told.entity.email:
        assert f"请于{last.month}月{last.day}日前更正" in message.get().body
    # the firm sees by when, and says what it corrected (at least four characters)
    firm = portal_client(told.entity_id)
    home = firm.get("/portal/").content.decode()
    assert f'id="check-{told.pk}-correction"' in home and f"{last.year}年{last.month}月{last.day}日 前更正" in home
    r = firm.post(f"/portal/inspections/{told.pk}/correction/", {"statement": "改了"}, follow=True)
    assert "至少4个字" in r.content.decode()
    firm.post(f"/portal/inspections/{told.pk}/correction/", {"statement": "已在公示系统更正从业人数为28人"})
    told.refresh_from_db()
    assert told.statement == "已在公示系统更正从业人数为28人" and told.correction(today) == "stated"
    assert portal_client(late.entity_id).post(f"/portal/inspections/{told.pk}/correction/",
                                              {"statement": "别人的检查"}).status_code == 404
    # the inspectors see it waiting for their follow-up
    page = officer.get(f"/inspections/{x.pk}/", {"status": "follow_up"}).content.decode()
    assert f'id="sample-{told.pk}"' in page and f'id="sample-{late.pk}"' not in page
    assert '<b id="tile-follow-up">1</b>' in page and "企业已说明更正，待复查" in page
    assert f'id="follow-{told.pk}"' in officer.get("/inspections/").content.decode()
    assert 'id="inspections-follow-up-count">责令改正待我复查 1 户' in officer.get("/").content.decode()
    # before the last day an entity that has not corrected still has time
    r = officer.post(f"/inspections/samples/{late.pk}/follow-up/", {"corrected": "0", "note": "复查仍未更正"}, follow=True)
    assert "未满" in r.content.decode()
    late.refresh_from_db()
    assert late.listing is None and not Listing.objects.filter(entity=late.entity).exists()
    # only its inspectors (or an administrator) follow it up
    other = get_user_model().objects.create_user("not-sent", password="not-sent-pw-for-tests")
    StaffProfile.objects.create(user=other, role="officer", town=own)
    c = Client()
    c.force_login(other)
    r = c.post(f"/inspections/samples/{told.pk}/follow-up/", {"corrected": "1", "note": "复查已改正的情况"}, follow=True)
    assert "只有被选派的检查人员或局管理员可以复查" in r.content.decode()
    told.refresh_from_db()
    assert told.corrected_on is None
    # corrected: recorded and the firm told; a second follow-up is refused
    officer.post(f"/inspections/samples/{told.pk}/follow-up/", {"corrected": "1", "note": "已核对公示系统，从业人数已更正"})
    told.refresh_from_db()
    assert told.corrected_on == today and told.followed_by.username == "officer" and told.correction(today) == "done"
    done = OutboxMessage.objects.filter(key=f"inspection-corrected-done:{told.pk}")
    assert done.count() == (1 if told.entity.phone or told.entity.email else 0)
    with pytest.raises(actions.InspectionError, match="已经复查"):
        actions.do_follow_up(told, False, "再次复查的情况", admin)
    assert "复查已改正" in firm.get("/portal/").content.decode()
    # the last day passed (as ten days later) and still not corrected: listed on the fourth ground
    Sample.objects.filter(pk=late.pk).update(correct_by=today - dt.timedelta(days=1))
    page = officer.get(f"/inspections/{x.pk}/").content.decode()
    assert "逾期未改正，列入经营异常名录" in page and "逾期未确认改正，待复查" in page
    officer.post(f"/inspections/samples/{late.pk}/follow-up/", {"corrected": "0", "note": "期满复查，从业人数仍未更正"})
    late.refresh_from_db()
    listing = late.listing
    assert listing is not None and listing.ground == "uncorrected" and listing.report_year is None
    assert x.number in listing.found and "期满复查，从业人数仍未更正" in listing.found and listing.found_on == today
    assert late.correction(today) == "listed" and listing.about == "逾期未改正"
    if late.entity.phone or late.entity.email:
        assert "未在责令的期限内更正" in OutboxMessage.objects.get(key=abnormal.told_key(listing)).body
    d = documents.decision(Listing.objects.select_related("entity").get(pk=listing.pk))
    assert "未在责令的期限内公示" in d.paragraphs[0] and "期满复查" in d.paragraphs[0]
    assert "按责令更正公示的信息后" in d.paragraphs[1]
    # the result stands while the listing does
    with pytest.raises(actions.InspectionError, match="请先在经营异常名录中撤销"):
        actions.do_record(late, "ok", "", today, admin)
    # the list's page, the API, and the way off: corrected, applied for, checked, removed
    page = officer.get("/abnormal/", {"status": "uncorrected"}).content.decode()
    assert '<b id="tile-uncorrected">1</b>' in page and f'id="listing-{listing.pk}"' in page
    firm = portal_client(late.entity_id)
    assert "未在责令的期限内更正公示的信息" in firm.get("/portal/").content.decode()
    assert [r["ground"] for r in firm.get("/api/v1/abnormal").json()] == ["uncorrected"]
    abnormal.do_apply(listing, statement="已更正2025年度年报的从业人数")
    abnormal.do_remove(listing, admin, "已核对更正后的年报与社保记录一致")
    listing.refresh_from_db()
    assert listing.status == "removed" and "已更正公示的信息" in documents.ruling(listing.rulings.get()).paragraphs[1]
    # the JSON API says the same to each firm, and takes a firm's word while the order stands
    checks = portal_client(told.entity_id).get("/api/v1/inspections").json()
    assert [(c["id"], c["result"], c["correction"], c["correct_by"], c["statement"]) for c in checks] == [
        (told.pk, "corrected", "done", told.correct_by.isoformat(), told.statement)]
    late_firm = portal_client(late.entity_id)
    assert [(c["correction"], c["listing_number"]) for c in late_firm.get("/api/v1/inspections").json()] == [
        ("listed", listing.number)]
    r = late_firm.post(f"/api/v1/inspections/{late.pk}/correction", {"statement": "已更正从业人数为28人"},
                       content_type="application/json")
    assert r.status_code == 400 and "已经复查" in r.json()["detail"]
    r = late_firm.post(f"/api/v1/inspections/{told.pk}/correction", {"statement": "别人的检查结果"},
                       content_type="application/json")
    assert r.status_code == 404
    # the workbook, the entity's page and its file say where each order stands
    book = openpyxl.load_workbook(io.BytesIO(officer.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    sheet = book["抽查对象"]
    head = [c.value for c in sheet[1]]
    rows = {r[0]: dict(zip(head, r)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows[told.entity_id]["改正情况"] == "复查已改正" and rows[told.entity_id]["企业说明"] == told.statement
    assert rows[late.entity_id]["改正情况"] == "逾期未改正，已列入经营异常名录"
    assert rows[late.entity_id]["列入经营异常名录决定书"] == listing.number
    assert "复查已改正" in officer.get(f"/entities/{told.entity_id}/").content.decode()


def test_an_entity_ordered_to_correct_that_has_said_nothing_is_reminded_once_before_its_last_day(checked_county):
    from qifu import worker

    admin = checked_county["users"]["admin"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=checked_county["own_town"].code,
                        seed="s5")
    silent, said = [s for s in x.samples.select_related("entity").order_by("entity_id")
                    if s.entity.phone or s.entity.email][:2]
    now = timezone.now()
    for s in (silent, said):
        actions.do_record(s, "corrected", "年报从业人数与社保参保人数不符", timezone.localdate(now), admin, now=now)
    # one says through the JSON API what it corrected
    r = portal_client(said.entity_id).post(f"/api/v1/inspections/{said.pk}/correction",
                                           {"statement": "已在公示系统更正从业人数为28人"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["correction"] == "stated" and r.json()["statement"] == "已在公示系统更正从业人数为28人"
    silent.refresh_from_db()
    days = actions.CORRECT_WITHIN_DAYS - actions.REMIND_DAYS_BEFORE
    assert actions.remind_corrections(now) == 0
    assert actions.remind_corrections(now + dt.timedelta(days=days - 1)) == 0  # four days before: not yet
    assert actions.remind_corrections(now + dt.timedelta(days=days)) == 1
    body = OutboxMessage.objects.get(key=f"inspection-correct-soon:{silent.pk}").body
    assert f"改正期限为{silent.correct_by.month}月{silent.correct_by.day}日" in body and x.number in body
    assert actions.remind_corrections(now + dt.timedelta(days=days + 1)) == 0  # once
    assert not OutboxMessage.objects.filter(key=f"inspection-correct-soon:{said.pk}").exists()
    assert any(j.id == "inspection_corrections" and j.handler.endswith(":remind_corrections") for j in worker.JOBS)


def test_a_firm_sends_the_documents_behind_its_report_and_its_inspectors_read_them(checked_county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from qifu.accounts.models import AuditEvent
    from qifu.inspections.models import Evidence

    admin, officer_user = checked_county["users"]["admin"], checked_county["users"]["officer"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=checked_county["own_town"].code,
                        seed="s6")
    s, other = x.samples.order_by("entity_id")[:2]
    pdf = "%PDF-1.4\n2025年12月工资表\n%%EOF".encode()
    firm = portal_client(s.entity_id)
    assert f'id="check-{s.pk}-send"' in firm.get("/portal/").content.decode()
    # all or none: a file that is neither an image nor a PDF is refused by name, and nothing is kept
    r = firm.post(f"/portal/inspections/{s.pk}/evidence/", {"files": [SimpleUploadedFile("工资表.pdf", pdf),
                                                                     SimpleUploadedFile("说明.txt", b"hello")]}, follow=True)
    assert "附件“说明.txt”不是图片或 PDF" in r.content.decode() and not Evidence.objects.exists()
    r = firm.post(f"/portal/inspections/{s.pk}/evidence/", {"files": [SimpleUploadedFile("工资表.pdf", pdf)],
                                                           "note": "2025年12月工资表"}, follow=True)
    assert "已上传 1 份材料" in r.content.decode()
    e = Evidence.objects.get()
    assert (e.sample_id, e.name, e.sent_by, e.note, e.size, e.content_type) == (
        s.pk, "工资表.pdf", None, "2025年12月工资表", len(pdf), "application/pdf")
    assert "工资表.pdf" in firm.get("/portal/").content.decode()
    assert b"".join(firm.get(f"/portal/inspections/{s.pk}/evidence/{e.pk}/").streaming_content) == pdf
    # another firm neither reads it nor sends for this check
    stranger_firm = portal_client(other.entity_id)
    assert stranger_firm.get(f"/portal/inspections/{s.pk}/evidence/{e.pk}/").status_code == 404
    assert stranger_firm.post(f"/portal/inspections/{s.pk}/evidence/",
                              {"files": [SimpleUploadedFile("a.pdf", pdf)]}).status_code == 404
    # its inspectors see it on the check's page and read it, the reading audited; another township does not
    officer = staff(checked_county, "officer")
    page = officer.get(f"/inspections/{x.pk}/").content.decode()
    assert f'id="sample-{s.pk}-evidence"' in page and f"/inspections/evidence/{e.pk}/" in page
    assert b"".join(officer.get(f"/inspections/evidence/{e.pk}/").streaming_content) == pdf
    assert "工资表.pdf（2025年12月工资表）" in officer.get(f"/inspections/{x.pk}/sheets/", {"sample": s.pk}).content.decode()
    assert AuditEvent.objects.filter(user=officer_user, action=AuditEvent.Action.VIEW_ENTITY, uscc=s.entity_id,
                                     detail__contains="工资表.pdf").exists()
    elsewhere = get_user_model().objects.create_user("elsewhere-evidence", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=elsewhere, role="officer", town=checked_county["other_town"])
    c = Client()
    c.force_login(elsewhere)
    assert c.get(f"/inspections/evidence/{e.pk}/").status_code == 404
    # at most ten for a check (a request takes five): the firm is told so before it chooses them
    assert "共不超过 10 份" in firm.get("/portal/").content.decode()
    assert "每户共不超过 10 份" in page
    actions.do_send_evidence(s, [SimpleUploadedFile(f"{i}.pdf", pdf) for i in range(9)], by=officer_user)
    with pytest.raises(actions.InspectionError, match="每次抽查最多 10 个"):
        actions.do_send_evidence(s, [SimpleUploadedFile("11.pdf", pdf)])
    # checked and nothing to correct: the check takes no more; an order to correct opens it again
    today = timezone.localdate()
    actions.do_record(other, "ok", "", today, admin)
    with pytest.raises(actions.InspectionError, match="已经办结"):
        actions.do_send_evidence(other, [SimpleUploadedFile("a.pdf", pdf)])
    assert f'id="check-{other.pk}-send"' not in stranger_firm.get("/portal/").content.decode()
    actions.do_record(other, "corrected", "年报从业人数与社保参保人数不符", today, admin)
    assert [x.name for x in actions.do_send_evidence(other, [SimpleUploadedFile("更正后.pdf", pdf)])] == ["更正后.pdf"]


def test_the_inspection_records_print_what_the_report_published_for_the_inspectors_to_check(checked_county):
    import re

    from qifu.accounts.models import AuditEvent

    admin, officer_user = checked_county["users"]["admin"], checked_county["users"]["officer"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=checked_county["own_town"].code,
                        seed="s4")
    mine = Sample.objects.filter(inspection=x, inspectors=officer_user).select_related("entity").order_by("entity_id")
    first = mine.first()
    actions.do_record(first, "ok", "", timezone.localdate(), officer_user)
    officer = staff(checked_county, "officer")
    page = officer.get(f"/inspections/{x.pk}/sheets/").content.decode()
    shown = {int(n) for n in re.findall(r'id="sheet-(\d+)"', page)}
    assert shown == set(mine.exclude(pk=first.pk).values_list("pk", flat=True)) and len(shown) > 1
    # each lists what the report published, the year's open findings, and the inspectors to sign
    for s in mine.exclude(pk=first.pk):
        report = AnnualReport.objects.get(entity=s.entity, report_year=YEAR, is_current=True)
        block = page[page.index(f'id="sheet-{s.pk}"'):]
        block = block[:block.index("</article>")]
        # the people it reports: a cooperative its members, others their employees
        label, people = (("成员人数", report.coop_members) if s.entity.entity_type == "cooperative"
                         else ("从业人数", report.employees))
        assert s.entity.name in block and f"<td>{label}</td><td>{'未填报' if people is None else people}</td>" in block
        for f in Finding.objects.filter(entity=s.entity, report_year=YEAR, status="open"):
            assert f"{f.rule_id}：" in block
        assert all(u.username in block or (u.get_full_name() and u.get_full_name() in block) for u in s.inspectors.all())
        # contacts in full for the officer, each entity's sight of them audited
        if s.entity.phone:
            assert s.entity.phone in block
        assert AuditEvent.objects.filter(user=officer_user, action=AuditEvent.Action.VIEW_CONTACT, uscc=s.entity_id,
                                         detail__contains=x.number).exists()
    # one sample alone; a leader reads them masked, and nothing is audited for a masked sight
    one = officer.get(f"/inspections/{x.pk}/sheets/", {"sample": first.pk}).content.decode()
    assert re.findall(r'id="sheet-(\d+)"', one) == [str(first.pk)]
    leader = staff(checked_county, "leader")
    page = leader.get(f"/inspections/{x.pk}/sheets/", {"status": "waiting"}).content.decode()
    assert len(re.findall(r'id="sheet-(\d+)"', page)) == len(shown)
    assert not any(s.entity.phone and s.entity.phone in page for s in mine)
    assert not AuditEvent.objects.filter(user=checked_county["users"]["leader"], action=AuditEvent.Action.VIEW_CONTACT).exists()
    # another township's officer sees no record of this check
    stranger = get_user_model().objects.create_user("elsewhere-sheets", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=stranger, role="officer", town=checked_county["other_town"])
    c = Client()
    c.force_login(stranger)
    assert c.get(f"/inspections/{x.pk}/sheets/").status_code == 404


def test_the_inspectors_fill_in_the_workbook_and_it_is_read_back_all_or_nothing(checked_county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    admin = checked_county["users"]["admin"]
    own = checked_county["own_town"]
    x = actions.do_draw(YEAR, "random", "2025年度年报双随机抽查", "100", by=admin, town=own.code, seed="s3")
    officer = staff(checked_county, "officer")
    today = timezone.localdate()
    book = openpyxl.load_workbook(io.BytesIO(officer.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    rows = [list(r) for r in book["抽查对象"].iter_rows(values_only=True)]
    header, body = rows[0], rows[1:]
    col = {h: i for i, h in enumerate(header)}
    assert len(body) == x.samples.count() >= 4

    def filled(changes: dict[int, tuple]) -> SimpleUploadedFile:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "抽查对象"
        ws.append(header)
        for i, r in enumerate(body):
            r = list(r)
            if i in changes:
                r[col["检查结果"]], r[col["检查情况"]], r[col["检查日期"]] = changes[i]
            ws.append(r)
        buf = io.BytesIO()
        wb.save(buf)
        return SimpleUploadedFile("results.xlsx", buf.getvalue())

    # one bad row stops every row, and each problem names its row, column, value and reason
    bad = {0: ("未发现问题", "", today), 1: ("发现问题已责令改正", "改", today), 2: ("查无", "厂房空置无人", today),
           3: ("ok", "", today + dt.timedelta(days=1))}
    r = officer.post(f"/inspections/{x.pk}/results/", {"file": filled(bad)}, follow=True)
    page = r.content.decode()
    assert "3 处问题，未录入任何一行" in page and "第 3 行“检查情况”（改）" in page
    assert "第 4 行“检查结果”（查无）" in page and "第 5 行“检查日期”" in page and "不能晚于今天" in page
    assert not x.samples.exclude(result="").exists()
    # filled in well: recorded, by code or by label, an empty address listed at once
    good = {0: ("未发现问题", "", today), 1: ("corrected", "年报营业收入填写有误，已责令更正", today),
            2: ("通过登记的住所或者经营场所无法联系", "实地核查，厂房空置无人", today)}
    r = officer.post(f"/inspections/{x.pk}/results/", {"file": filled(good)}, follow=True)
    assert "已录入检查结果 3 户" in r.content.decode()
    got = {s.entity_id: (s.result, s.found, s.checked_on) for s in x.samples.exclude(result="")}
    assert got == {body[0][0]: ("ok", "", today), body[1][0]: ("corrected", "年报营业收入填写有误，已责令更正", today),
                   body[2][0]: ("unreachable", "实地核查，厂房空置无人", today)}
    assert Listing.objects.filter(entity_id=body[2][0], ground="unreachable").count() == 1
    # the same workbook again changes nothing and lists nobody twice
    r = officer.post(f"/inspections/{x.pk}/results/", {"file": filled(good)}, follow=True)
    assert "已录入检查结果 0 户，3 户与已录入的相同" in r.content.decode()
    assert Listing.objects.filter(entity_id=body[2][0]).count() == 1
    # an officer who was not sent to these entities may read but not record them
    User = get_user_model()
    other = User.objects.create_user("not-sent", password="not-sent-pw-for-tests")
    StaffProfile.objects.create(user=other, role="officer", town=own)
    c = Client()
    c.force_login(other)
    r = c.post(f"/inspections/{x.pk}/results/", {"file": filled({3: ("ok", "", today)})}, follow=True)
    assert "您不是该主体的检查人员" in r.content.decode()
    assert x.samples.get(entity_id=body[3][0]).result == ""
    r = c.post(f"/inspections/{x.pk}/results/", {"file": SimpleUploadedFile("x.csv", "名称,住所\n甲,乙\n".encode())}, follow=True)
    assert "缺少“统一社会信用代码”" in r.content.decode()


def test_a_written_check_tells_each_entity_drawn_once_what_to_send_and_by_when(checked_county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from qifu import worker

    admin = staff(checked_county, "admin")
    today = timezone.localdate()
    own = checked_county["own_town"].code
    form = {"year": YEAR, "kind": "random", "title": "书面检查", "rate": "100", "town": own, "criteria": "",
            "finish_by": (today + dt.timedelta(days=30)).isoformat(), "written": "1"}
    # the firms get at least five days, and the inspectors see the documents before their last day
    for day, why in ((today + dt.timedelta(days=2), "至少 5 天"), (today + dt.timedelta(days=31), "不能晚于检查完成期限")):
        r = admin.post("/inspections/draw/", form | {"documents_by": day.isoformat()}, follow=True)
        assert why in r.content.decode() and not Inspection.objects.exists()
    by_day = today + dt.timedelta(days=15)
    r = admin.post("/inspections/draw/", form | {"documents_by": by_day.isoformat()}, follow=True)
    assert "将以短信或邮件告知被抽中的主体" in r.content.decode()
    x = Inspection.objects.get()
    assert x.documents_by == by_day and x.told_at is None
    samples = list(x.samples.select_related("entity").order_by("entity_id"))
    checked, deaf = samples[0], samples[1]
    # one checked before the notice goes, one with neither a mobile nor an email: neither is told
    actions.do_record(checked, "ok", "", today, checked_county["users"]["admin"])
    Entity.objects.filter(pk=deaf.entity_id).update(phone="", email="")
    now = timezone.now()
    n = actions.tell_drawn(now)
    told = {m.entity_id: m for m in OutboxMessage.objects.filter(key__startswith="inspection-drawn:")}
    assert n == len(told) and set(told) <= {s.entity_id for s in samples[2:]} and len(told) >= 2
    body = told[samples[2].entity_id].body
    assert x.number in body and f"请于{by_day.month}月{by_day.day}日前" in body and "检查不收费" in body
    x.refresh_from_db()
    assert x.told_at is not None
    assert set(x.samples.filter(notified_at=now).values_list("entity_id", flat=True)) == set(told)
    # a run cut short and started again tells nobody twice (nor would one that lost its marks: the
    # outbox keeps one message a key); a check done with is not gone through again
    Inspection.objects.filter(pk=x.pk).update(told_at=None)
    assert actions.tell_drawn(now) == 0 and actions.tell_drawn(now + dt.timedelta(minutes=10)) == 0
    Inspection.objects.filter(pk=x.pk).update(told_at=None)
    x.samples.update(notified_at=None)
    actions.tell_drawn(now)
    assert OutboxMessage.objects.filter(key__startswith="inspection-drawn:").count() == n
    # the inspectors see who was told, who was not (to phone or visit), and who sent nothing
    sent = samples[2]
    portal = portal_client(sent.entity_id)
    home = portal.get("/portal/").content.decode()
    assert f'id="check-{sent.pk}-documents-by">请于 {by_day.year}年{by_day.month}月{by_day.day}日 前' in home
    yesterday = today - dt.timedelta(days=1)  # once the day has passed, the firm is told so
    Inspection.objects.filter(pk=x.pk).update(documents_by=yesterday)
    late = portal.get("/portal/").content.decode()
    assert f"材料提交期限（{yesterday.year}年{yesterday.month}月{yesterday.day}日）已过" in late
    Inspection.objects.filter(pk=x.pk).update(documents_by=by_day)
    pdf = "%PDF-1.4\n工资表\n%%EOF".encode()
    portal.post(f"/portal/inspections/{sent.pk}/evidence/", {"files": [SimpleUploadedFile("工资表.pdf", pdf)]})
    assert portal_client(sent.entity_id).get("/api/v1/inspections").json()[0]["documents_by"] == by_day.isoformat()
    officer = staff(checked_county, "admin")
    page = officer.get(f"/inspections/{x.pk}/").content.decode()
    untold = {s.entity_id for s in samples[1:] if s.entity_id not in told}
    assert f'id="inspection-documents-by">{by_day:%Y-%m-%d}<' in page and 'id="tile-documents">1<' in page
    assert f'id="inspection-untold">{len(untold)} 户未能告知' in page and f"已短信或邮件告知 {n} 户" in page
    listed = officer.get(f"/inspections/{x.pk}/", {"status": "untold"}).content.decode()
    assert all((f">{s.entity_id}<" in listed) == (s.entity_id in untold) for s in samples)
    sheet = officer.get(f"/inspections/{x.pk}/sheets/", {"sample": deaf.pk}).content.decode()
    assert f'id="sheet-{deaf.pk}-written">材料提交期限 {by_day:%Y-%m-%d}；未能短信或邮件告知' in sheet
    sheet = officer.get(f"/inspections/{x.pk}/sheets/", {"sample": sent.pk}).content.decode()
    assert f"材料提交期限 {by_day:%Y-%m-%d}；已于 {timezone.localdate(now):%Y-%m-%d} 短信或邮件告知<" in sheet
    overview = officer.get("/inspections/").content.decode()  # the administrator is one of the inspectors
    assert f'id="inspection-{x.pk}-written">书面检查，材料 {by_day:%Y-%m-%d} 前<' in overview
    assert '已上传 1 份</a></td></tr>' in overview.split(f'id="mine-{sent.pk}-documents">')[1].split("\n")[0]
    assert overview.split(f'id="mine-{deaf.pk}-documents">')[1].startswith(f"未上传（书面检查，{by_day:%Y-%m-%d} 前）")
    listed = officer.get(f"/inspections/{x.pk}/", {"status": "no_documents"}).content.decode()
    assert f">{sent.entity_id}<" not in listed and f">{deaf.entity_id}<" in listed and f">{checked.entity_id}<" not in listed
    # the entity no notice reached, phoned, brings its payroll on paper: its inspector uploads the scan
    # for it (a township's officer not sent to it may not)
    assert f'id="sample-{deaf.pk}-send"' in listed and f'id="sample-{checked.pk}-send"' not in listed
    form = {"files": [SimpleUploadedFile("工资表扫描件.pdf", pdf)], "note": "企业送来的工资表"}
    outsider = get_user_model().objects.create_user("not-sent", password="not-sent-pw-for-tests")
    StaffProfile.objects.create(user=outsider, role="officer", town=deaf.town)
    c = Client()
    c.force_login(outsider)
    assert "只有被选派的检查人员或局管理员可以代企业上传材料" in c.post(
        f"/inspections/samples/{deaf.pk}/evidence/", form, follow=True).content.decode()
    form = {"files": [SimpleUploadedFile("工资表扫描件.pdf", pdf)], "note": "企业送来的工资表"}
    r = officer.post(f"/inspections/samples/{deaf.pk}/evidence/", form, follow=True)
    assert "已代企业上传 1 份材料" in r.content.decode() and "（admin代传）" in r.content.decode()
    assert deaf.evidence.get().sent_by == checked_county["users"]["admin"]
    wb = openpyxl.load_workbook(io.BytesIO(officer.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    assert dict(wb["抽查任务"].iter_rows(values_only=True))["材料提交期限"].date() == by_day
    rows = list(wb["抽查对象"].iter_rows(values_only=True))
    assert {r[0]: r[-1] for r in rows[1:]}[sent.entity_id] == 1 and rows[0][-1] == "依据材料（份）"
    # three days before the day, those told that have sent nothing are reminded, once
    days = (by_day - today).days - actions.REMIND_DAYS_BEFORE
    assert actions.remind_documents(now + dt.timedelta(days=days - 1)) == 0
    assert actions.remind_documents(now + dt.timedelta(days=days)) == n - 1
    reminded = set(OutboxMessage.objects.filter(key__startswith="inspection-documents-soon:").values_list("entity_id", flat=True))
    assert reminded == set(told) - {sent.entity_id}
    assert f"请于{by_day.month}月{by_day.day}日前" in OutboxMessage.objects.filter(key__startswith="inspection-documents-soon:")[0].body
    assert actions.remind_documents(now + dt.timedelta(days=days + 1)) == 0
    assert any(j.id == "inspection_documents" and j.handler.endswith(":remind_documents") for j in worker.JOBS)
    # a check reached only after its day (the worker was down) tells nobody: all left to the inspectors;
    # a check with no day is not told at all
    y = actions.do_draw(YEAR, "random", "书面检查二", "30", by=checked_county["users"]["admin"],
                        documents_by=today + dt.timedelta(days=6))
    z = actions.do_draw(YEAR, "random", "实地检查", "100", by=checked_county["users"]["admin"])
    assert z.samples.exists() and actions.tell_drawn(now + dt.timedelta(days=7)) == 0
    y.refresh_from_db()
    assert y.told_at is not None and not y.samples.filter(notified_at__isnull=False).exists()
    assert OutboxMessage.objects.filter(key__startswith="inspection-drawn:").count() == n
    assert any(j.id == "inspection_notices" and j.handler.endswith(":tell_drawn") for j in worker.JOBS)


def test_a_written_checks_day_is_put_later_and_those_owing_documents_are_told_the_new_day(checked_county):
    from django.core.files.uploadedfile import SimpleUploadedFile

    admin_user = checked_county["users"]["admin"]
    today = timezone.localdate()
    now = timezone.now()
    first_day = today + dt.timedelta(days=10)
    x = actions.do_draw(YEAR, "random", "书面检查", "100", by=admin_user, town=checked_county["own_town"].code,
                        finish_by=today + dt.timedelta(days=30), documents_by=first_day, now=now)
    samples = list(x.samples.select_related("entity").order_by("entity_id"))
    deaf = samples[0]
    Entity.objects.filter(pk=deaf.entity_id).update(phone="", email="")
    n = actions.tell_drawn(now)
    told = set(OutboxMessage.objects.filter(key__startswith="inspection-drawn:").values_list("entity_id", flat=True))
    assert n == len(told) >= 4 and deaf.entity_id not in told
    sent, checked = [s for s in samples if s.entity_id in told][:2]
    owing = told - {sent.entity_id, checked.entity_id}
    portal_client(sent.entity_id).post(f"/portal/inspections/{sent.pk}/evidence/",
                                       {"files": [SimpleUploadedFile("工资表.pdf", b"%PDF-1.4\n%%EOF")]})
    actions.do_record(checked, "ok", "", today, admin_user)
    # three days before the first day those that sent nothing are reminded
    assert actions.remind_documents(now + dt.timedelta(days=7)) == len(owing)
    # only the county's administrators put the day later, only later, leaving the firms time,
    # not after the checks' last day, and saying why
    officer = staff(checked_county, "officer")
    assert "只有局管理员可以延长材料提交期限" in officer.post(
        f"/inspections/{x.pk}/extend/", {"to_day": (today + dt.timedelta(days=20)).isoformat(), "reason": "元旦假期顺延"},
        follow=True).content.decode()
    admin = staff(checked_county, "admin")
    for day, reason, why in ((first_day, "元旦假期顺延", "只能延长"), (today + dt.timedelta(days=31), "元旦假期顺延", "不能晚于检查完成期限"),
                             (today + dt.timedelta(days=20), "假期", "至少4个字")):
        r = admin.post(f"/inspections/{x.pk}/extend/", {"to_day": day.isoformat(), "reason": reason}, follow=True)
        assert why in r.content.decode()
    with pytest.raises(actions.InspectionError, match="至少 3 天"):  # nine days on, the day after is 2 days away
        actions.do_extend_documents(x, first_day + dt.timedelta(days=1), "企业普遍申请延期", admin_user,
                                    now=now + dt.timedelta(days=9))
    x.refresh_from_db()
    assert x.documents_by == first_day and x.told_at is not None and not x.extensions.exists()
    # put later, a week on: the notices go again through the worker
    new_day = today + dt.timedelta(days=20)
    later = now + dt.timedelta(days=7, hours=1)
    e = actions.do_extend_documents(x, new_day, "元旦假期，顺延材料提交期限", admin_user, now=later)
    x.refresh_from_db()
    assert (e.from_day, e.to_day, x.documents_by, x.told_at, x.extended_at) == (first_day, new_day, new_day, None, later)
    # the entity no notice reached now has a mobile: it gets the first notice, with the new day
    Entity.objects.filter(pk=deaf.entity_id).update(phone="13905740001")
    n = actions.tell_drawn(later + dt.timedelta(minutes=10))
    extended = {m.entity_id: m.body for m in OutboxMessage.objects.filter(key__startswith="inspection-extended:")}
    assert set(extended) == owing and n == len(owing) + 1
    assert all(f"延长至{new_day.month}月{new_day.day}日" in b and x.number in b for b in extended.values())
    first = OutboxMessage.objects.get(key=f"inspection-drawn:{deaf.pk}")
    assert f"请于{new_day.month}月{new_day.day}日前" in first.body and "被抽中" in first.body
    x.refresh_from_db()
    assert x.told_at is not None and actions.tell_drawn(later + dt.timedelta(minutes=20)) == 0
    # a run that lost its marks tells nobody twice: one message a sample and day
    stored = OutboxMessage.objects.count()
    Inspection.objects.filter(pk=x.pk).update(told_at=None)
    x.samples.update(notified_at=None)
    actions.tell_drawn(later + dt.timedelta(minutes=30))
    assert OutboxMessage.objects.count() == stored
    # the reminder comes again before the new day, once
    soon = now + dt.timedelta(days=17)
    assert actions.remind_documents(soon) == len(owing) + 1 and actions.remind_documents(soon) == 0
    # the pages, the workbook and the portal say it
    page = admin.get(f"/inspections/{x.pk}/").content.decode()
    assert f'id="inspection-documents-by">{new_day:%Y-%m-%d}<' in page and 'id="inspection-extend"' in page
    assert 'id="inspection-extend"' not in officer.get(f"/inspections/{x.pk}/").content.decode()
    assert f"材料提交期限由 {first_day:%Y-%m-%d} 延长至 {new_day:%Y-%m-%d}：元旦假期，顺延材料提交期限（admin）" in page
    wb = openpyxl.load_workbook(io.BytesIO(admin.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    about = dict(wb["抽查任务"].iter_rows(values_only=True))
    assert about["材料提交期限"].date() == new_day
    assert about["材料提交期限延长"].startswith(f"{first_day:%Y-%m-%d} → {new_day:%Y-%m-%d}：元旦假期")
    home = portal_client(min(owing)).get("/portal/").content.decode()
    assert f"请于 {new_day.year}年{new_day.month}月{new_day.day}日（已延长） 前" in home
    # put later again: told again, under the new day's key
    again = later + dt.timedelta(days=1)
    actions.do_extend_documents(x, new_day + dt.timedelta(days=5), "系统维护，再顺延五天", admin_user, now=again)
    assert actions.tell_drawn(again + dt.timedelta(minutes=10)) == len(owing) + 1
    assert OutboxMessage.objects.filter(key__startswith="inspection-extended:").count() == 2 * len(owing) + 1
    # once every entity drawn has been checked there is nothing to put later
    x.samples.filter(result="").update(result="ok", checked_on=today)
    with pytest.raises(actions.InspectionError, match="都已检查"):
        actions.do_extend_documents(x, new_day + dt.timedelta(days=6), "企业普遍申请延期", admin_user)
    on_site = actions.do_draw(YEAR, "random", "实地检查", "10", by=admin_user)
    with pytest.raises(actions.InspectionError, match="实地检查"):
        actions.do_extend_documents(on_site, new_day, "企业普遍申请延期", admin_user)
    # on the page
    y = actions.do_draw(YEAR, "random", "书面检查二", "10", by=admin_user, documents_by=first_day)
    r = admin.post(f"/inspections/{y.pk}/extend/", {"to_day": new_day.isoformat(), "reason": "企业普遍申请延期"}, follow=True)
    assert f"材料提交期限已由 {first_day:%Y-%m-%d} 延长至 {new_day:%Y-%m-%d}" in r.content.decode()
    y.refresh_from_db()
    assert y.documents_by == new_day and y.extensions.get().by == admin_user


def written_check_told(county, now: dt.datetime) -> tuple[Inspection, set[str]]:
    """A written check of every entity of the own township that may be drawn (documents due in
    ten days, the checks in thirty), its notices stored: the check, and the codes of those told."""
    today = timezone.localdate(now)
    x = actions.do_draw(YEAR, "random", "书面检查", "100", by=county["users"]["admin"], town=county["own_town"].code,
                        finish_by=today + dt.timedelta(days=30), documents_by=today + dt.timedelta(days=10), now=now)
    actions.tell_drawn(now)
    return x, set(OutboxMessage.objects.filter(key__startswith="inspection-drawn:").values_list("entity_id", flat=True))


def test_one_firm_is_given_more_time_for_its_documents_and_told_the_day_it_has(checked_county):
    import openpyxl as xl

    from qifu.inspections.models import Extension

    admin_user = checked_county["users"]["admin"]
    today = timezone.localdate()
    now = timezone.now()
    x, told = written_check_told(checked_county, now)
    first_day, finish_by = x.documents_by, x.finish_by
    samples = list(x.samples.select_related("entity").order_by("entity_id"))
    asked, others = next(s for s in samples if s.entity_id in told), [s for s in samples if s.entity_id in told]
    others.remove(asked)
    assert len(others) >= 2
    # its inspector (the township's officer) gives it a week more, on the check's page; a
    # township officer not sent to it may not
    officer = staff(checked_county, "officer")
    page = officer.get(f"/inspections/{x.pk}/").content.decode()
    assert f'id="sample-{asked.pk}-extend"' in page
    own_day = first_day + dt.timedelta(days=7)
    form = {"to_day": own_day.isoformat(), "reason": "企业来电，会计休假，申请延后一周提交"}
    outsider = get_user_model().objects.create_user("not-sent", password="not-sent-pw-for-tests")
    StaffProfile.objects.create(user=outsider, role="officer", town=asked.town)
    c = Client()
    c.force_login(outsider)
    r = c.post(f"/inspections/samples/{asked.pk}/extend/", form, follow=True)
    assert "只有被选派的检查人员或局管理员可以为该主体延长材料提交期限" in r.content.decode()
    assert f'id="sample-{asked.pk}-extend"' not in r.content.decode()
    for to_day, reason, why in ((first_day, form["reason"], "只能延长"), (finish_by + dt.timedelta(days=1), form["reason"],
                                "不能晚于检查完成期限"), (own_day, "延期", "至少4个字")):
        r = officer.post(f"/inspections/samples/{asked.pk}/extend/", {"to_day": to_day.isoformat(), "reason": reason},
                         follow=True)
        assert why in r.content.decode()
    assert not Extension.objects.exists()
    r = officer.post(f"/inspections/samples/{asked.pk}/extend/", form, follow=True)
    page = r.content.decode()
    assert f"材料提交期限已由 {first_day:%Y-%m-%d} 延长至 {own_day:%Y-%m-%d}；已以短信或邮件告知企业" in page
    assert f"该户材料提交期限由 {first_day:%Y-%m-%d} 延长至 {own_day:%Y-%m-%d}：{form['reason']}（" in page
    e = Extension.objects.get()
    asked.refresh_from_db()
    assert (e.sample, e.inspection, e.from_day, e.to_day, e.by) == (asked, x, first_day, own_day, checked_county["users"]["officer"])
    assert asked.documents_by == own_day and asked.documents_due == own_day and asked.documents_extended
    x.refresh_from_db()
    assert x.documents_by == first_day and x.extended_at is None  # the others keep the check's day
    assert all(s.documents_due == first_day and not s.documents_extended for s in others)
    # told at once, once for the day
    message = OutboxMessage.objects.get(key=f"inspection-extended-one:{asked.pk}:{own_day.isoformat()}")
    assert message.entity_id == asked.entity_id and f"延长至{own_day.month}月{own_day.day}日" in message.body
    assert x.number in message.body and "检查不收费" in message.body
    # only later than the day it has now
    with pytest.raises(actions.InspectionError, match=f"现在的材料提交期限（{own_day:%Y-%m-%d}）"):
        actions.do_extend_sample_documents(asked, own_day, "企业再次申请延期", admin_user)
    # the reminder three days before: the others before the check's day, this one before its own
    assert actions.remind_documents(now + dt.timedelta(days=7)) == len(others)
    reminded = OutboxMessage.objects.filter(key__startswith="inspection-documents-soon:")
    assert asked.entity_id not in set(reminded.values_list("entity_id", flat=True))
    assert actions.remind_documents(now + dt.timedelta(days=14)) == 1
    own = reminded.get(entity_id=asked.entity_id)
    assert own.key == f"inspection-documents-soon:{asked.pk}:{own_day.isoformat()}"
    assert f"请于{own_day.month}月{own_day.day}日前" in own.body
    # the firm sees its own day, in the portal and its API; staff on the entity's page, the
    # inspection record and the workbook
    portal = portal_client(asked.entity_id)
    home = portal.get("/portal/").content.decode()
    assert f'id="check-{asked.pk}-documents-by">请于 {own_day.year}年{own_day.month}月{own_day.day}日（已延长） 前' in home
    assert portal.get("/api/v1/inspections").json()[0]["documents_by"] == own_day.isoformat()
    other = portal_client(others[0].entity_id).get("/portal/").content.decode()
    assert f'id="check-{others[0].pk}-documents-by">请于 {first_day.year}年{first_day.month}月{first_day.day}日 前' in other
    admin = staff(checked_county, "admin")
    assert f"（书面检查，材料提交期限 {own_day:%Y-%m-%d}，" in admin.get(f"/entities/{asked.entity_id}/").content.decode()
    sheet = admin.get(f"/inspections/{x.pk}/sheets/", {"sample": asked.pk}).content.decode()
    assert f'id="sheet-{asked.pk}-written">材料提交期限 {own_day:%Y-%m-%d}（该户单独延长）；' in sheet
    wb = xl.load_workbook(io.BytesIO(admin.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    rows = list(wb["抽查对象"].iter_rows(values_only=True))
    due = {r[0]: r[rows[0].index("材料提交期限")] for r in rows[1:]}
    assert due[asked.entity_id].date() == own_day and due[others[0].entity_id].date() == first_day
    about = [r for r in wb["抽查任务"].iter_rows(values_only=True) if r[0] == "材料提交期限延长（单户）"]
    assert about and about[0][1].startswith(f"{asked.entity_id} {first_day:%Y-%m-%d} → {own_day:%Y-%m-%d}：")
    # the day put later for all, but not as late as its own: the others are told the new day, it
    # is not (nothing changed for it); put later again past its own, it is told too
    for_all = first_day + dt.timedelta(days=3)
    later = now + dt.timedelta(days=1)
    actions.do_extend_documents(x, for_all, "系统维护，顺延三天", admin_user, now=later)
    asked.refresh_from_db()
    assert asked.documents_due == own_day
    actions.tell_drawn(later + dt.timedelta(minutes=10))
    extended = set(OutboxMessage.objects.filter(key__startswith="inspection-extended:").values_list("entity_id", flat=True))
    assert extended == {s.entity_id for s in others}
    past_own = own_day + dt.timedelta(days=2)
    actions.do_extend_documents(x, past_own, "元旦假期，再顺延", admin_user, now=later + dt.timedelta(hours=1))
    actions.tell_drawn(later + dt.timedelta(hours=2))
    assert OutboxMessage.objects.filter(key=f"inspection-extended:{asked.pk}:{past_own.isoformat()}").exists()
    asked.refresh_from_db()
    assert asked.documents_due == past_own
    # the check's page lists the extensions for all at its top, and this one in its row only
    page = admin.get(f"/inspections/{x.pk}/").content.decode()
    top = page.split('<table id="samples">')[0]
    assert "系统维护，顺延三天" in top and form["reason"] not in top
    # once checked, or for an on-site check, there is nothing to put later
    actions.do_record(asked, "ok", "", today, admin_user)
    with pytest.raises(actions.InspectionError, match="已检查"):
        actions.do_extend_sample_documents(asked, finish_by, "企业申请延期提交", admin_user)
    assert f'id="sample-{asked.pk}-extend"' not in admin.get(f"/inspections/{x.pk}/").content.decode()
    on_site = actions.do_draw(YEAR, "random", "实地检查", "10", by=admin_user)
    with pytest.raises(actions.InspectionError, match="实地检查"):
        actions.do_extend_sample_documents(on_site.samples.first(), finish_by, "企业申请延期提交", admin_user)


def test_a_firm_asks_in_its_portal_for_more_time_and_its_inspectors_answer(checked_county):
    admin_user, officer_user = checked_county["users"]["admin"], checked_county["users"]["officer"]
    today = timezone.localdate()
    now = timezone.now()
    x, told = written_check_told(checked_county, now)
    first_day, finish_by = x.documents_by, x.finish_by
    s = x.samples.filter(entity_id__in=told).order_by("entity_id").first()
    portal = portal_client(s.entity_id)
    home = portal.get("/portal/").content.decode()
    assert f'id="check-{s.pk}-ask"' in home and f'id="check-{s.pk}-more-time"' not in home
    # a day after the one it has, not after the checks' last day, and why
    for to_day, why, reason in ((first_day, "会计休假，工资表下周才能打印", "应晚于现在的材料提交期限"),
                                (finish_by + dt.timedelta(days=1), "会计休假，工资表下周才能打印", "不能晚于检查完成期限"),
                                (first_day + dt.timedelta(days=5), "休假", "至少4个字"), ("", "会计休假", "请选择希望延长到哪一天")):
        r = portal.post(f"/portal/inspections/{s.pk}/more-time/", {"to_day": to_day and to_day.isoformat(), "why": why},
                        follow=True)
        assert reason in r.content.decode()
    s.refresh_from_db()
    assert s.more_time_asked_at is None and not s.more_time_waiting
    asked_day = first_day + dt.timedelta(days=5)
    r = portal.post(f"/portal/inspections/{s.pk}/more-time/", {"to_day": asked_day.isoformat(), "why": "会计休假，工资表下周才能打印"},
                    follow=True)
    page = r.content.decode()
    assert "已向检查人员申请延长" in page
    assert f'id="check-{s.pk}-more-time">您已于' in page and f"申请延长至 {asked_day.year}年{asked_day.month}月{asked_day.day}日" in page
    s.refresh_from_db()
    assert (s.more_time_to, s.more_time_why, s.more_time_waiting) == (asked_day, "会计休假，工资表下周才能打印", True)
    assert s.documents_due == first_day  # asking gives nothing by itself
    # its inspectors see it: on the home dashboard, in their list, the check's tile and filter, its row
    officer = staff(checked_county, "officer")
    assert 'id="inspections-more-time-count" class="warn">1 户申请延长材料提交期限待我答复' in officer.get("/").content.decode()
    assert f'id="mine-{s.pk}-asked" class="warn">申请延长至 {asked_day:%Y-%m-%d}，待答复' in officer.get("/inspections/").content.decode()
    page = officer.get(f"/inspections/{x.pk}/").content.decode()
    assert 'id="inspection-more-time" class="warn">1 户申请延长待答复' in page
    entity_page = officer.get(f"/entities/{s.entity_id}/").content.decode()
    assert f'id="entity-sample-{s.pk}-asked" class="warn">企业申请延长至 {asked_day:%Y-%m-%d}，待答复' in entity_page
    listed = officer.get(f"/inspections/{x.pk}/", {"status": "more_time"}).content.decode()
    assert listed.count('<tr id="sample-') == 1 and f'<tr id="sample-{s.pk}"' in listed
    row = listed.split(f'<tr id="sample-{s.pk}"')[1]
    assert f"申请延长材料提交期限至 {asked_day:%Y-%m-%d}</b>：会计休假" in row
    assert f'value="{asked_day:%Y-%m-%d}"' in row and f'id="sample-{s.pk}-refuse"' in row
    book = openpyxl.load_workbook(io.BytesIO(officer.get(f"/inspections/{x.pk}/", {"format": "xlsx"}).content))
    rows = list(book["抽查对象"].iter_rows(values_only=True))
    asks = {r[0]: r[rows[0].index("企业申请延长")] for r in rows[1:]}
    assert asks[s.entity_id] == f"申请延长至 {asked_day:%Y-%m-%d}（会计休假，工资表下周才能打印）；待答复"
    assert all(v is None for u, v in asks.items() if u != s.entity_id)
    # not granted, saying why: the firm is told and keeps its day
    r = officer.post(f"/inspections/samples/{s.pk}/refuse-more-time/", {"note": "不行"}, follow=True)
    assert "至少4个字" in r.content.decode()
    r = officer.post(f"/inspections/samples/{s.pk}/refuse-more-time/", {"note": "检查完成期限将至，请先上传已有的材料"}, follow=True)
    assert "已答复不予延长" in r.content.decode()
    s.refresh_from_db()
    assert not s.more_time_waiting and s.more_time_answer == "不予延长：检查完成期限将至，请先上传已有的材料"
    assert s.more_time_answered_by == officer_user and s.documents_due == first_day
    refused = OutboxMessage.objects.get(key__startswith=f"inspection-more-time-refused:{s.pk}:")
    assert "不予延长：检查完成期限将至" in refused.body and f"请于{first_day.month}月{first_day.day}日前" in refused.body
    with pytest.raises(actions.InspectionError, match="没有待答复"):
        actions.do_refuse_more_time(s, "再次不予延长", officer_user)
    home = portal.get("/portal/").content.decode()
    assert f'id="check-{s.pk}-more-time">检查人员对延长申请的答复' in home and "不予延长：检查完成期限将至" in home
    assert 'id="inspections-more-time-count"' not in officer.get("/").content.decode()
    # asked again, granted: the answer says so, the day is its own
    portal.post(f"/portal/inspections/{s.pk}/more-time/", {"to_day": (first_day + dt.timedelta(days=3)).isoformat(),
                                                            "why": "财务报表下周一才能出具"})
    s.refresh_from_db()
    assert s.more_time_waiting and s.more_time_answer == ""
    granted = first_day + dt.timedelta(days=3)
    officer.post(f"/inspections/samples/{s.pk}/extend/", {"to_day": granted.isoformat(), "reason": "企业申请：财务报表下周一才能出具"})
    s.refresh_from_db()
    assert not s.more_time_waiting and s.more_time_answer == f"同意延长至{granted.year}年{granted.month}月{granted.day}日"
    assert s.documents_due == granted and s.extensions.get().by == officer_user
    assert OutboxMessage.objects.filter(key=f"inspection-extended-one:{s.pk}:{granted.isoformat()}").exists()
    # the JSON API says the same and takes an ask as the portal does
    api = portal.get("/api/v1/inspections").json()[0]
    assert (api["more_time_to"], api["more_time_waiting"], api["more_time_answer"]) == (
        granted.isoformat(), False, s.more_time_answer)
    r = portal.post(f"/api/v1/inspections/{s.pk}/more-time", {"to_day": granted.isoformat(), "why": "再晚三天"},
                    content_type="application/json")
    assert r.status_code == 400 and "应晚于现在的材料提交期限" in r.json()["detail"]
    later_still = granted + dt.timedelta(days=3)
    r = portal.post(f"/api/v1/inspections/{s.pk}/more-time", {"to_day": later_still.isoformat(), "why": "报表还需审计"},
                    content_type="application/json")
    assert r.status_code == 200 and r.json()["more_time_waiting"] and r.json()["more_time_to"] == later_still.isoformat()
    other = x.samples.exclude(pk=s.pk).first()
    assert portal.post(f"/api/v1/inspections/{other.pk}/more-time", {"to_day": later_still.isoformat(), "why": "报表还需审计"},
                       content_type="application/json").status_code == 404
    # once checked, there is nothing to ask
    actions.do_record(s, "ok", "", today, admin_user)
    with pytest.raises(actions.InspectionError, match="已经检查"):
        actions.do_ask_more_time(s, finish_by, "会计休假，工资表下周才能打印")
    assert f'id="check-{s.pk}-ask"' not in portal.get("/portal/").content.decode()
