"""The abnormal-operation list (经营异常名录): who is due once a season has closed, the decision
that lists them and tells them, the way off after a late report (补报, 申请移出, 移出 or 不予移出),
the staff page with its township scope and workbook, the entity's page, the home dashboard and
the portal."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zoneinfo

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from qifu.abnormal import actions, queries
from qifu.abnormal.models import Listing, Ruling
from qifu.accounts.models import StaffProfile
from qifu.imports.models import ImportRun
from qifu.registry.models import Entity, Township
from qifu.reminders.models import OutboxMessage
from qifu.reports.models import AnnualReport
from tests.factories import portal_client

pytestmark = pytest.mark.django_db
YEAR = 2025  # the small county's report year; its season closed on 30 June 2026
LOCAL = zoneinfo.ZoneInfo("Asia/Shanghai")
AFTER = dt.datetime(2026, 7, 2, 9, 0, tzinfo=LOCAL)


def staff(county, name: str) -> Client:
    c = Client()
    c.force_login(county["users"][name])
    return c


def expected_due(year: int) -> set[str]:
    """Worked out row by row, apart from the query under test: active, registered by the year's
    end, and no report of the year filed by 30 June of the next (in the county's time)."""
    on_time = set()
    for uscc, filed in AnnualReport.objects.filter(report_year=year).values_list("entity_id", "filed_at"):
        if timezone.localtime(filed, LOCAL).date() <= dt.date(year + 1, 6, 30):
            on_time.add(uscc)
    return {u for u, status, born in Entity.objects.values_list("uscc", "status", "established_on")
            if status == "active" and born <= dt.date(year, 12, 31) and u not in on_time}


def report(entity: Entity, filed: dt.datetime) -> AnnualReport:
    return AnnualReport.objects.create(entity=entity, report_year=YEAR, filed_at=filed, imported_at=filed)


def test_the_due_are_those_that_did_not_file_by_30_june_and_nobody_before_that_day(checked_county):
    # one that filed a day late (one minute past midnight, county time) becomes due, all its revisions late
    late = AnnualReport.objects.filter(report_year=YEAR, is_current=True).order_by("entity_id").first()
    AnnualReport.objects.filter(entity_id=late.entity_id, report_year=YEAR).update(
        filed_at=dt.datetime(2026, 7, 1, 0, 1, tzinfo=LOCAL))
    # one that filed at the last minute of 30 June is not
    last = AnnualReport.objects.filter(report_year=YEAR, is_current=True).order_by("-entity_id").first()
    AnnualReport.objects.filter(entity_id=last.entity_id, report_year=YEAR).update(
        filed_at=dt.datetime(2026, 6, 30, 23, 59, tzinfo=LOCAL))
    got = set(actions.candidates(YEAR, AFTER.date()).values_list("uscc", flat=True))
    assert got == expected_due(YEAR) and late.entity_id in got and last.entity_id not in got
    assert got and not Entity.objects.filter(uscc__in=got).exclude(status="active").exists()
    assert not actions.candidates(YEAR, dt.date(2026, 6, 30)).exists()
    with pytest.raises(actions.ListingError, match="尚未届满"):
        actions.do_list(YEAR, now=dt.datetime(2026, 6, 30, 20, 0, tzinfo=LOCAL))
    # reports last imported before the deadline would list everyone who filed in June: refused
    ImportRun.objects.filter(kind="reports").update(finished_at=dt.datetime(2026, 6, 20, 9, 0, tzinfo=LOCAL))
    assert not actions.candidates(YEAR, AFTER.date()).exists()
    with pytest.raises(actions.ListingError, match="请先导入截止后的年报数据"):
        actions.do_list(YEAR, now=AFTER)
    assert not Listing.objects.exists()
    page = staff(checked_county, "admin").get("/abnormal/", {"year": YEAR}).content.decode()
    assert 'id="abnormal-not-ready"' in page and "abnormal-list-form" not in page


def test_a_township_lists_its_own_the_county_the_rest_each_told_once(checked_county):
    officer, admin = checked_county["users"]["officer"], checked_county["users"]["admin"]
    own = checked_county["own_town"]
    due = expected_due(YEAR)
    in_town = set(Entity.objects.filter(uscc__in=due, town=own).values_list("uscc", flat=True))
    assert 0 < len(in_town) < len(due)
    assert actions.do_list(YEAR, by=officer, town=own.code, now=AFTER) == len(in_town)
    assert set(Listing.objects.values_list("entity_id", flat=True)) == in_town
    assert actions.do_list(YEAR, by=admin, now=AFTER + dt.timedelta(hours=1)) == len(due) - len(in_town)
    assert actions.do_list(YEAR, by=admin, now=AFTER + dt.timedelta(hours=2)) == 0  # nobody twice
    listings = list(Listing.objects.select_related("entity").order_by("number"))
    assert len(listings) == len(due) and len({x.number for x in listings}) == len(due)
    assert [x.number for x in listings] == [f"异列〔2026〕{i:05d}号" for i in range(1, len(due) + 1)]
    for x in listings:
        assert x.kind == ("mark" if x.entity.entity_type == "individual" else "list"), x.entity.entity_type
        assert (x.status, x.report_year, x.town_id) == ("listed", YEAR, x.entity.town_id)
    # told in writing, once, where a text or an email reaches; no link in a bureau's text
    told = OutboxMessage.objects.filter(purpose="abnormal")
    assert 0 < told.count() <= len(due) and told.count() == told.values("entity").distinct().count()
    one = told.select_related("entity").first()
    x = Listing.objects.get(entity=one.entity)
    assert x.number in one.body and f"{YEAR}年度年报" in one.body and "http" not in one.body
    assert ("经营异常名录" if x.kind == "list" else "经营异常状态") in one.body


@pytest.mark.parametrize(("applied", "answer_by"), [
    (dt.date(2026, 7, 6), dt.date(2026, 7, 13)),  # a Monday: the next five working days
    (dt.date(2026, 7, 10), dt.date(2026, 7, 17)),  # a Friday: the weekend does not count
    (dt.date(2026, 7, 11), dt.date(2026, 7, 17)),  # a Saturday
])
def test_an_application_is_answered_within_five_working_days(applied, answer_by):
    assert actions.answer_by(applied) == answer_by
    # overdue from the day after the last day, not on it
    assert actions.overdue_from(answer_by) <= applied < actions.overdue_from(answer_by + dt.timedelta(days=1))


def test_numbers_run_on_from_the_highest_given_not_from_a_count(checked_county):
    own = checked_county["own_town"]
    first = actions.do_list(YEAR, town=own.code, now=AFTER)
    assert first >= 2 and actions.last_number(2026) == first
    # one deleted in admin (a count would give its number again), two imported this year under the
    # national system's numbering (a count would skip two)
    Listing.objects.get(number=actions.numbered(2026, 1)).delete()
    for i, other in enumerate(Entity.objects.exclude(town=own).order_by("uscc")[:2]):
        Listing.objects.create(entity=other, town=other.town, report_year=YEAR - 1, kind="list", reason=actions.REASON,
                               number=f"慈市监异列〔2026〕{i + 1}号", listed_on=AFTER.date())
    rest = actions.do_list(YEAR, now=AFTER + dt.timedelta(hours=1))
    assert rest > 0
    later = sorted(Listing.objects.filter(number__startswith="异列").values_list("number", flat=True))
    assert later == [actions.numbered(2026, i) for i in range(2, first + rest + 1)]
    assert actions.last_number(2027) == 0


def test_a_late_filer_applies_and_is_removed_or_refused_and_told(checked_county):
    actions.do_list(YEAR, now=AFTER)
    x = (Listing.objects.filter(kind="list", entity__phone__startswith="1").exclude(entity__reports__report_year=YEAR)
         .select_related("entity").order_by("number").first())
    c = portal_client(x.entity_id)
    home = c.get("/portal/").content.decode()
    assert 'id="abnormal"' in home and x.number in home and "请先登录国家企业信用信息公示系统补报" in home
    r = c.post(f"/portal/abnormal/{x.pk}/apply/", follow=True)
    assert "补报后再申请移出" in r.content.decode() and Listing.objects.get(pk=x.pk).status == "listed"
    officer = staff(checked_county, "officer" if x.town == checked_county["own_town"] else "admin")
    r = officer.post(f"/abnormal/{x.pk}/act/", {"action": "remove"}, follow=True)
    assert "尚未补报" in r.content.decode() and Listing.objects.get(pk=x.pk).status == "listed"
    # it files late; the portal offers the application, which staff refuse with a reason, then remove
    report(x.entity, dt.datetime(2026, 8, 3, 10, 0, tzinfo=LOCAL))
    assert "申请移出</button>" in c.get("/portal/").content.decode()
    c.post(f"/portal/abnormal/{x.pk}/apply/")
    x.refresh_from_db()
    assert (x.status, x.applied_channel) == ("applied", "portal") and x.applied_at is not None
    due = actions.answer_by(timezone.localdate(x.applied_at))
    assert f"市场监管部门将在 {due.month}月{due.day}日 前（5 个工作日内）办理" in c.get("/portal/").content.decode()
    r = officer.post(f"/abnormal/{x.pk}/act/", {"action": "refuse", "reason": "否"}, follow=True)
    assert "至少4个字" in r.content.decode() and Listing.objects.get(pk=x.pk).status == "applied"
    applied_on = timezone.localdate(x.applied_at)
    officer.post(f"/abnormal/{x.pk}/act/", {"action": "refuse", "reason": "补报的从业人数与社保记录不符，请更正"})
    x.refresh_from_db()
    assert (x.status, x.note, x.applied_at) == ("listed", "补报的从业人数与社保记录不符，请更正", None)
    assert x.removed_by is not None  # who refused
    refused = OutboxMessage.objects.get(entity=x.entity, key__startswith=f"abnormal-refused:{x.pk}:")
    assert "社保记录不符" in refused.body
    # the refusal is a decision in writing with its own number, the reason and the way to appeal
    this_year = timezone.localdate().year
    refusal = x.rulings.get()
    assert (refusal.kind, refusal.number, refusal.reason) == ("refuse", f"异不移〔{this_year}〕00001号", x.note)
    assert refusal.number in refused.body
    home = c.get("/portal/").content.decode()
    assert "上次申请未获同意" in home and f"/portal/abnormal/{x.pk}/decision/{refusal.pk}/" in home
    doc = c.get(f"/portal/abnormal/{x.pk}/decision/{refusal.pk}/").content.decode()
    assert "不予移出经营异常名录决定书" in doc and refusal.number in doc and x.number in doc and x.entity.uscc in doc
    assert f"于{applied_on.year}年{applied_on.month}月{applied_on.day}日申请移出经营异常名录" in doc
    assert "经审查，补报的从业人数与社保记录不符，请更正，不符合移出经营异常名录的条件" in doc
    assert "行政复议" in doc and "可以再次申请" in doc
    c.post(f"/portal/abnormal/{x.pk}/apply/")
    officer.post(f"/abnormal/{x.pk}/act/", {"action": "remove", "note": "已更正"})
    x.refresh_from_db()
    assert (x.status, x.removed_on) == ("removed", timezone.localdate())
    removal = x.rulings.get(kind="remove")
    assert removal.number == f"异移〔{this_year}〕00001号" and removal.applied_at is not None
    body = OutboxMessage.objects.get(key=f"abnormal-removed:{x.pk}").body
    assert "移出经营异常名录" in body and removal.number in body and "决定书可登录企服平台查看打印" in body
    home = c.get("/portal/").content.decode()
    assert 'id="abnormal"' not in home and 'id="abnormal-past"' in home and removal.number in home
    doc = c.get(f"/portal/abnormal/{x.pk}/decision/{removal.pk}/").content.decode()
    assert "移出经营异常名录决定书" in doc and f"本局决定自{x.removed_on.year}年{x.removed_on.month}月{x.removed_on.day}日起将你单位移出经营异常名录" in doc
    assert "行政复议" not in doc  # nothing to appeal against
    page = officer.get(f"/abnormal/{x.pk}/decision/").content.decode()
    assert f"/abnormal/{x.pk}/decision/{refusal.pk}/" in page and f"/abnormal/{x.pk}/decision/{removal.pk}/" in page
    row = officer.get("/abnormal/", {"year": YEAR, "status": "removed"}).content.decode().split(f'id="listing-{x.pk}"')[1]
    assert f"/abnormal/{x.pk}/decision/{removal.pk}/" in row.split("</tr>")[0]
    assert "移出经营异常名录决定书" in officer.get(f"/abnormal/{x.pk}/decision/{removal.pk}/").content.decode()
    api = c.get("/api/v1/abnormal").json()
    assert [(r["kind"], r["number"]) for r in next(a for a in api if a["id"] == x.pk)["rulings"]] == [
        ("refuse", refusal.number), ("remove", removal.number)]
    # nobody else reads them: another firm, an officer of another township
    other_firm = portal_client(Listing.objects.exclude(entity=x.entity).first().entity_id)
    assert other_firm.get(f"/portal/abnormal/{x.pk}/decision/{removal.pk}/").status_code == 404
    elsewhere = Township.objects.exclude(pk=x.town_id).first()
    stranger = get_user_model().objects.create_user("elsewhere", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=stranger, role="officer", town=elsewhere)
    stranger_client = Client()
    stranger_client.force_login(stranger)
    assert stranger_client.get(f"/abnormal/{x.pk}/decision/{removal.pk}/").status_code == 404
    r = officer.post(f"/abnormal/{x.pk}/act/", {"action": "remove"}, follow=True)
    assert "已经移出" in r.content.decode()
    page = officer.get(f"/entities/{x.entity_id}/").content.decode()
    assert f'id="entity-listing-{x.pk}"' in page and "已移出" in page
    # the entity list filters those on the list now; the export holds the same
    standing = set(Listing.objects.filter(status__in=actions.STANDING).values_list("entity_id", flat=True))
    admin = staff(checked_county, "admin")
    book = openpyxl.load_workbook(io.BytesIO(admin.get("/entities/export.xlsx", {"abnormal": "standing"}).content))
    assert {r[0] for r in list(book.worksheets[0].iter_rows(min_row=2, values_only=True))} == standing
    assert x.entity_id not in standing and standing
    # another firm cannot apply for it
    other = Listing.objects.exclude(entity=x.entity).first()
    assert c.post(f"/portal/abnormal/{other.pk}/apply/").status_code == 404


def test_staff_see_their_township_act_by_role_and_export_and_the_dashboard_counts(checked_county):
    actions.do_list(YEAR, now=AFTER)
    own = checked_county["own_town"]
    officer, leader, admin = (staff(checked_county, n) for n in ("officer", "leader", "admin"))
    page = officer.get("/abnormal/", {"year": YEAR}).content.decode()
    mine = Listing.objects.filter(town=own)
    assert f'<b id="tile-standing">{mine.count()}</b>' in page
    theirs = Listing.objects.exclude(town=own).first()
    assert f'id="listing-{theirs.pk}"' not in page and f'id="listing-{mine.first().pk}"' in page
    assert officer.post(f"/abnormal/{theirs.pk}/act/", {"action": "remove"}).status_code == 404
    assert leader.post(f"/abnormal/{theirs.pk}/act/", {"action": "remove"}).status_code == 403
    # one filed late and has not applied, one applied three weeks ago, one listed nearly three years
    # (some of the county's listed firms filed late already: the synthetic county has late filers)
    filed = set(AnnualReport.objects.filter(report_year=YEAR).values_list("entity_id", flat=True))
    already = sum(x.entity_id in filed for x in mine)
    back, waiting, old = list(mine.exclude(entity__in=filed).order_by("number")[:3])
    for x in (back, waiting):
        report(x.entity, dt.datetime(2026, 9, 1, 9, 0, tzinfo=LOCAL))
    actions.do_apply(waiting, now=timezone.now() - dt.timedelta(days=21))  # five working days, any holidays
    Listing.objects.filter(pk=old.pk).update(listed_on=timezone.localdate().replace(year=timezone.localdate().year - 3)
                                             + dt.timedelta(days=30))
    m = queries.measures(Listing.objects.filter(town=own))
    assert (m["back_filed"], m["applied"], m["overdue"], m["warn"]) == (already + 1, 1, 1, 1)
    page = officer.get("/abnormal/", {"year": YEAR, "status": "back_filed"}).content.decode()
    assert f'id="listing-{back.pk}"' in page and f'id="listing-{waiting.pk}"' not in page
    assert f'id="listing-{old.pk}"' in officer.get("/abnormal/", {"status": "warn"}).content.decode()
    page = officer.get("/abnormal/", {"year": YEAR, "status": "overdue"}).content.decode()
    due = actions.answer_by(timezone.localdate(Listing.objects.get(pk=waiting.pk).applied_at))
    assert f'id="listing-{waiting.pk}"' in page and f'<span class="warn">应于 {due.month}月{due.day}日 前办理</span>' in page
    home = officer.get("/").content.decode()
    assert 'id="abnormal-panel"' in home and "移出申请 1 件待办" in home and "1 件超期" in home
    assert f"已补报未申请移出 {already + 1} 户" in home
    # the workbook: the reader's listings, each row as stored, and the township's due not yet listed
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/", {"year": YEAR, "format": "xlsx"}).content))
    rows = list(book["经营异常名录"].iter_rows(min_row=2, values_only=True))
    assert sorted(r[0] for r in rows) == sorted(mine.values_list("number", flat=True))
    row = next(r for r in rows if r[0] == waiting.number)
    assert (row[1], row[9], row[10], row[12]) == (waiting.entity_id, "已申请移出", "是", "企业在线")
    assert not list(book["拟列入"].iter_rows(min_row=2, values_only=True))  # all listed already
    assert admin.get("/abnormal/", {"year": YEAR}).status_code == 200


def test_an_entity_listed_for_two_years_is_one_entity_with_two_decisions(checked_county):
    actions.do_list(YEAR, now=AFTER)
    own = checked_county["own_town"]
    mine = Listing.objects.filter(town=own)
    entities = mine.values("entity").distinct().count()
    assert entities == mine.count() >= 2
    x = mine.order_by("number").first()  # it did not file the year before either
    Listing.objects.create(entity=x.entity, town=own, report_year=YEAR - 1, kind=x.kind, reason=actions.REASON,
                           number="慈市监异列〔2025〕1号", listed_on=AFTER.date() - dt.timedelta(days=365))
    m = queries.measures(Listing.objects.filter(town=own))
    assert (m["standing"], m["standing_decisions"], m["listed"] + m["marked"]) == (entities, entities + 1, entities)
    page = staff(checked_county, "officer").get("/abnormal/").content.decode()
    assert f'<b id="tile-standing">{entities}</b>' in page and f'id="tile-standing-decisions">列入决定 {entities + 1} 份' in page
    home = staff(checked_county, "officer").get("/").content.decode()
    assert f"列入中 {entities} 户" in home and 'id="chart-abnormal-years"' in home
    chart = json.loads(home.split('<script id="abnormal-chart-data" type="application/json">')[1].split("</script>")[0])
    years = dict(zip(chart["abnormal-years"]["labels"], chart["abnormal-years"]["series"][0]["values"]))
    assert years == {f"{YEAR - 1} 年度": 1, f"{YEAR} 年度": entities}


def test_the_written_decisions_of_those_no_text_or_email_reached_are_printed_by_township(checked_county, data_dir):
    own = checked_county["own_town"]
    due = actions.candidates(YEAR, AFTER.date()).filter(town=own).order_by("uscc")
    Entity.objects.filter(uscc__in=list(due.values_list("uscc", flat=True)[:2])).update(phone="", email="")
    actions.do_list(YEAR, now=AFTER)
    officer, admin = staff(checked_county, "officer"), staff(checked_county, "admin")
    told = set(OutboxMessage.objects.filter(key__startswith="abnormal-listed:").values_list("entity_id", flat=True))
    mine = Listing.objects.filter(town=own).select_related("entity")
    unreached = {x.number for x in mine if x.entity_id not in told}
    assert unreached and len(unreached) < mine.count()  # some reached by text or email, some not
    # a text that failed to arrive counts as not reached
    failed = next(x for x in mine if x.entity_id in told)
    OutboxMessage.objects.filter(key=f"abnormal-listed:{failed.entity_id}:{YEAR}").update(status="failed")
    unreached.add(failed.number)
    page = officer.get("/abnormal/", {"year": YEAR}).content.decode()
    assert f"未能以短信或邮件告知的 {len(unreached)} 户" in page
    assert f"决定书待送达 {len(unreached)} 户" in officer.get("/").content.decode()
    page = officer.get("/abnormal/decisions/", {"year": YEAR}).content.decode()
    assert set(re.findall(r'id="decision-([^"]+)"', page)) == unreached  # the officer's township only
    # and the service list, for the post and the stations: each one's registered address
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/decisions/", {"year": YEAR, "format": "xlsx"}).content))
    rows = list(book["送达清单"].iter_rows(min_row=2, values_only=True))
    assert {r[0] for r in rows} == unreached
    assert all(r[5] == (Listing.objects.get(number=r[0]).entity.address or "") for r in rows)
    # served on paper: recorded one by one, or from the service list filled in, all or nothing
    first, second, third = sorted(unreached)[:3]
    one = Listing.objects.get(number=first)
    r = officer.post(f"/abnormal/{one.pk}/serve/", {"way": "hand", "served_on": timezone.localdate().isoformat(),
                                                     "note": ""}, follow=True)
    assert "请写明签收人" in r.content.decode() and Listing.objects.get(pk=one.pk).served_on is None
    early = (one.listed_on - dt.timedelta(days=1)).isoformat()
    r = officer.post(f"/abnormal/{one.pk}/serve/", {"way": "hand", "served_on": early, "note": "张三"}, follow=True)
    assert "送达日期应在列入日期" in r.content.decode()
    officer.post(f"/abnormal/{one.pk}/serve/", {"way": "hand", "served_on": timezone.localdate().isoformat(),
                                                 "note": "法定代表人张三签收"})
    one.refresh_from_db()
    assert (one.served_way, one.served_note, one.served_by) == ("hand", "法定代表人张三签收", checked_county["users"]["officer"])
    assert "已于" in officer.get(f"/abnormal/{one.pk}/decision/").content.decode()
    # the signed proof of service, scanned, kept with it: an image or a PDF by its content
    r = officer.post(f"/abnormal/{one.pk}/proof/upload/", {"proof": SimpleUploadedFile("回证.pdf", b"not a pdf")},
                     follow=True)
    assert "不是图片或 PDF" in r.content.decode() and Listing.objects.get(pk=one.pk).proof_sha256 == ""
    scan = b"%PDF-1.4\n% signed proof of service\n%%EOF\n"
    officer.post(f"/abnormal/{one.pk}/proof/upload/", {"proof": SimpleUploadedFile("回证.pdf", scan)})
    one.refresh_from_db()
    assert one.proof_name == "回证.pdf"
    assert b"".join(officer.get(f"/abnormal/{one.pk}/proof/").streaming_content) == scan
    assert "送达回证扫描件：" in officer.get(f"/abnormal/{one.pk}/decision/").content.decode()
    elsewhere = get_user_model().objects.create_user("proof-elsewhere", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=elsewhere, role="officer", town=Township.objects.exclude(pk=one.town_id).first())
    stranger = Client()
    stranger.force_login(elsewhere)
    assert stranger.get(f"/abnormal/{one.pk}/proof/").status_code == 404
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/decisions/", {"year": YEAR, "format": "xlsx"}).content))
    sheet = book["送达清单"]
    numbers = [c.value for c in sheet["A"][1:]]
    assert first not in numbers and {second, third} <= set(numbers)
    rows = {n: i + 2 for i, n in enumerate(numbers)}
    day = one.listed_on + dt.timedelta(days=3)
    sheet.cell(rows[second], 8, "邮寄送达")
    sheet.cell(rows[second], 9, dt.datetime.combine(day, dt.time()))  # an Excel date
    sheet.cell(rows[second], 10, "EMS 1100123456789")
    sheet.cell(rows[third], 8, "当面送达")  # not a way
    sheet.cell(rows[third], 9, "2026/13/40")

    def upload(workbook):
        buf = io.BytesIO()
        workbook.save(buf)
        f = SimpleUploadedFile("送达清单.xlsx", buf.getvalue())
        return officer.post(f"/abnormal/decisions/service/?year={YEAR}", {"file": f}, follow=True).content.decode()

    page = upload(book)
    assert "未登记任何一行" in page and f"第 {rows[third]} 行“送达方式”" in page and f"第 {rows[third]} 行“送达日期”" in page
    assert Listing.objects.get(number=second).served_on is None  # all or nothing
    sheet.cell(rows[third], 8, "公告送达")
    sheet.cell(rows[third], 9, day.isoformat())
    sheet.cell(rows[third], 10, "慈市监公告〔2026〕3号")
    assert "已登记送达 2 户" in upload(book)
    assert Listing.objects.get(number=second).served_way == "post" and Listing.objects.get(number=third).served_on == day
    assert "已登记送达 0 户，2 户此前已登记" in upload(book)  # again: nothing changes
    assert queries.unreached(Listing.objects.filter(number__in=[first, second, third])).count() == 0
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/", {"year": YEAR, "format": "xlsx"}).content))
    rows = list(book["经营异常名录"].iter_rows(values_only=True))
    served = {r[0]: r[rows[0].index("纸质送达")] for r in rows[1:]}
    assert served[second] == f"{day:%Y-%m-%d} 邮寄送达：EMS 1100123456789"
    assert served[first].endswith("直接送达：法定代表人张三签收（有送达回证扫描件）")
    assert f"已纸质送达（{day:%Y-%m-%d} 邮寄送达）" in admin.get(f"/entities/{Listing.objects.get(number=second).entity_id}/").content.decode()
    unreached -= {first, second, third}
    # an enterprise's decision: what, on what basis, the way off, objection and appeal, the bureau and day
    x = mine.filter(entity__entity_type="enterprise").first()
    page = admin.get(f"/abnormal/{x.pk}/decision/").content.decode()
    for words in ("列入经营异常名录决定书", x.number, x.entity.name, x.entity.uscc, f"未在{YEAR + 1}年6月30日前报送并公示{YEAR}年度年度报告",
                  "《企业信息公示暂行条例》", "5个工作日内作出决定", "严重违法失信名单", "提出异议", "六十日内向慈溪市人民政府申请行政复议",
                  "六个月内依法向人民法院提起行政诉讼", "慈溪市市场监督管理局",
                  f"{x.listed_on.year}年{x.listed_on.month}月{x.listed_on.day}日"):
        assert words in page, words
    # an individual business is marked, not listed: its own title and measure, no serious list
    marked = Listing.objects.filter(kind="mark").select_related("entity").first()
    page = admin.get(f"/abnormal/{marked.pk}/decision/").content.decode()
    assert "标注经营异常状态决定书" in page and "《个体工商户年度报告办法》" in page and "严重违法失信名单" not in page
    assert "恢复正常记载状态" in page
    assert f'href="/abnormal/{x.pk}/decision/"' in admin.get(f"/entities/{x.entity_id}/").content.decode()
    # another township's is not the officer's; the firm reads its own in the portal, no other's
    theirs = Listing.objects.exclude(town=own).first()
    assert officer.get(f"/abnormal/{theirs.pk}/decision/").status_code == 404
    c = portal_client(x.entity_id)
    assert f'href="/portal/abnormal/{x.pk}/decision/"' in c.get("/portal/").content.decode()
    assert x.number in c.get(f"/portal/abnormal/{x.pk}/decision/").content.decode()
    assert c.get(f"/portal/abnormal/{theirs.pk}/decision/").status_code == 404
    # annulled: the decision says so, and it is no longer to be served
    actions.do_annul(x, checked_county["users"]["admin"], "企业已于6月20日报送纸质年报")
    annulment = x.rulings.get(kind="annul")
    assert f"撤销（列入有误，{annulment.number}）" in admin.get(f"/abnormal/{x.pk}/decision/").content.decode()
    page = admin.get("/abnormal/decisions/", {"year": YEAR, "town": own.pk}).content.decode()
    assert f'id="decision-{x.number}"' not in page


def test_the_decision_needs_the_list_checked_and_keeps_to_the_officers_township(checked_county, monkeypatch):
    monkeypatch.setattr("qifu.abnormal.actions.closed_year", lambda today=None: YEAR)  # the dashboard's year, any day
    officer = staff(checked_county, "officer")
    mine = len([u for u in expected_due(YEAR) if Entity.objects.get(pk=u).town_id == checked_county["own_town"].code])
    home = officer.get("/").content.decode()  # the dashboard, before the decision
    # ten working days from 1 July 2026 (a Wednesday), long past on any day this suite runs
    assert f"拟列入 {mine} 户</a>（<strong class=\"warn\">应于 7月14日 前决定，已逾期</strong>）" in home
    assert actions.decide_by(YEAR) == dt.date(2026, 7, 14) and actions.decide_by(2023) == dt.date(2024, 7, 12)
    page = officer.get("/abnormal/", {"year": YEAR}).content.decode()
    assert '<p id="abnormal-decide-by" class="warn">' in page and "即 2026年7月14日 前：已逾期" in page
    monkeypatch.setattr(actions, "decide_by", lambda year: dt.date(2099, 1, 2))
    page = officer.get("/abnormal/", {"year": YEAR}).content.decode()
    assert '<p id="abnormal-decide-by">' in page and "即 2099年1月2日 前。" in page
    r = officer.post("/abnormal/list/", {"year": YEAR}, follow=True)
    assert "请先核对" in r.content.decode() and not Listing.objects.exists()
    r = officer.post("/abnormal/list/", {"year": YEAR, "checked": "on"}, follow=True)
    assert "已作出列入决定" in r.content.decode() and Listing.objects.count() == mine
    home = officer.get("/").content.decode()
    assert 'id="abnormal-due"' not in home and f"列入中 {mine} 户" in home  # the count it kept is forgotten
    assert set(Listing.objects.values_list("town", flat=True)) == {checked_county["own_town"].code}
    assert staff(checked_county, "leader").post("/abnormal/list/", {"year": YEAR, "checked": "on"}).status_code == 403


def test_a_long_list_is_exported_in_the_background_as_the_direct_download(checked_county, data_dir, monkeypatch):
    from qifu.web import downloads, export_jobs
    from qifu.web.models import Export

    monkeypatch.setattr(export_jobs.QUEUE, "recovered", False)
    monkeypatch.setattr(downloads, "LONG_LIST", 1)
    actions.do_list(YEAR, now=AFTER)
    admin = staff(checked_county, "admin")
    path = f"/abnormal/?year={YEAR}&status=listed&format=xlsx"
    page = admin.get("/abnormal/", {"year": YEAR, "status": "listed"}).content.decode()
    assert 'id="export-background"' in page and f'value="{path}"'.replace("&", "&amp;") in page
    r = admin.post("/exports/new/", {"path": path, "rows": "9"}, follow=True)
    assert f"经营异常名录 {YEAR} 年度（Excel）" in r.content.decode()
    assert export_jobs.run_pending() == 1
    export = Export.objects.get()
    made = openpyxl.load_workbook(io.BytesIO(b"".join(admin.get(f"/exports/{export.pk}/file/").streaming_content)))
    direct = openpyxl.load_workbook(io.BytesIO(admin.get(path).content))
    rows = list(made["经营异常名录"].iter_rows(values_only=True))
    assert rows == list(direct["经营异常名录"].iter_rows(values_only=True))
    assert export.status == "done" and len(rows) - 1 == Listing.objects.filter(status="listed").count()


def test_the_national_list_is_imported_all_or_nothing_and_its_removals_taken_over(checked_county, tmp_path):
    import polars as pl

    from qifu.engine.errors import InvalidFile
    from qifu.imports.actions import import_file

    rows = pl.read_csv(checked_county["folder"] / "abnormal.csv", infer_schema=False)
    assert rows.height and set(rows["report_year"]) == {"2023", "2024"}  # the seasons before the last
    # the synthetic county's list is the data's own: listed = due and not filed by 30 June
    for year in (2023, 2024):
        listed = set(rows.filter(pl.col("report_year") == str(year))["uscc"])
        assert listed == expected_due(year), year
        filed_since = set(AnnualReport.objects.filter(report_year=year, entity__in=listed).values_list("entity_id", flat=True))
        removed = set(rows.filter((pl.col("report_year") == str(year)) & pl.col("removed_on").is_not_null())["uscc"])
        assert removed == filed_since, year
    result = import_file("abnormal", checked_county["folder"] / "abnormal.csv")
    assert (result.inserted, result.updated) == (rows.height, 0)
    assert Listing.objects.filter(status="removed").count() == rows["removed_on"].is_not_null().sum()
    assert not OutboxMessage.objects.filter(purpose="abnormal").exists()  # the national system told them
    # and served its decisions: none is on a list to serve here, though no text reached anyone
    assert Listing.objects.filter(imported=True).count() == rows.height
    assert not queries.unreached(Listing.objects.all()).exists()
    x = Listing.objects.filter(status="listed").select_related("entity").first()
    assert x.kind == ("mark" if x.entity.entity_type == "individual" else "list") and x.town_id == x.entity.town_id
    again = import_file("abnormal", checked_county["folder"] / "abnormal.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, rows.height)
    # a removal made there since is taken over; qifu's own later listing keeps its number
    i = next(k for k, (u, y) in enumerate(rows.select("uscc", "report_year").iter_rows())
             if (u, int(y)) == (x.entity_id, x.report_year))
    off = x.listed_on + dt.timedelta(days=40)
    later = rows.with_columns(pl.when(pl.int_range(pl.len()) == i).then(pl.lit(off.isoformat()))
                              .otherwise(pl.col("removed_on")).alias("removed_on"))
    later.write_csv(tmp_path / "abnormal.csv")
    assert import_file("abnormal", tmp_path / "abnormal.csv").updated == 1
    x.refresh_from_db()
    assert (x.status, x.removed_on, x.note) == ("removed", off, actions.NATIONAL)
    # bad rows: each named with its line, nothing stored
    before = list(Listing.objects.order_by("pk").values_list("number", "status", "removed_on"))
    row = pl.int_range(pl.len())
    unreadable = rows.with_columns(
        pl.when(row == 0).then(pl.lit("91330282MA00000000")).otherwise(pl.col("uscc")).alias("uscc"),
        pl.when(row == 4).then(pl.lit("七月")).otherwise(pl.col("listed_on")).alias("listed_on"))
    impossible = rows.with_columns(
        pl.when(row == 2).then(pl.col("number").shift(1)).otherwise(pl.col("number")).alias("number"),
        pl.when(row == 3).then(pl.lit("2020-01-01")).otherwise(pl.col("removed_on")).alias("removed_on"))
    # a number already stored for another year of the same entity (or another entity)
    other = Listing.objects.exclude(entity_id=rows["uscc"][0], report_year=int(rows["report_year"][0])).first()
    reused = rows.with_columns(pl.when(row == 0).then(pl.lit(other.number)).otherwise(pl.col("number")).alias("number"))
    for bad, expected in ((unreadable, {(2, "uscc"), (6, "listed_on")}), (impossible, {(4, "number"), (5, "removed_on")}),
                          (reused, {(2, "number")})):
        bad.write_csv(tmp_path / "abnormal.csv")
        with pytest.raises(InvalidFile) as err:
            import_file("abnormal", tmp_path / "abnormal.csv")
        assert {(e.row, e.field) for e in err.value.errors} >= expected
        assert list(Listing.objects.order_by("pk").values_list("number", "status", "removed_on")) == before


def test_a_listing_the_firm_objects_to_is_annulled_when_found_wrong_and_the_firm_told(checked_county):
    from qifu.service_requests.models import ServiceRequest

    actions.do_list(YEAR, now=AFTER)
    x = (Listing.objects.filter(entity__phone__startswith="1").exclude(entity__reports__report_year=YEAR)
         .select_related("entity").order_by("number").first())
    c = portal_client(x.entity_id)
    assert "提出异议" in c.get("/portal/").content.decode()
    r = c.post(f"/portal/abnormal/{x.pk}/object/", {"text": "按期"}, follow=True)
    assert "请写明异议的理由" in r.content.decode() and not ServiceRequest.objects.exists()
    r = c.post(f"/portal/abnormal/{x.pk}/object/", {"text": "已于6月20日到市场监管所报送纸质年报"}, follow=True)
    req = ServiceRequest.objects.get()
    assert (req.entity_id, req.category, req.channel) == (x.entity_id, "annual_report", "portal")
    assert x.number in req.text and "已于6月20日到市场监管所报送纸质年报" in req.text
    assert f"诉求编号 {req.number}" in r.content.decode() and Listing.objects.get(pk=x.pk).objection_id == req.pk
    home = c.get("/portal/").content.decode()
    assert f'id="abnormal-objection-{x.pk}"' in home and "提交异议</button>" not in home
    with pytest.raises(actions.ListingError, match=f"已就这条记录提出异议（诉求编号 {req.number}）"):
        actions.do_object(x, "再提一次异议")
    # staff see it waiting, on the list, its tile and the dashboard
    officer = staff(checked_county, "officer" if x.town == checked_county["own_town"] else "admin")
    page = officer.get("/abnormal/", {"status": "objected"}).content.decode()
    assert f'id="listing-{x.pk}"' in page and '<b id="tile-objected">1</b>' in page and req.number in page
    assert "异议 1 件待办" in officer.get("/").content.decode()
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/", {"status": "objected", "format": "xlsx"}).content))
    rows = list(book["经营异常名录"].iter_rows(values_only=True))
    assert [(r[0], r[rows[0].index("异议（诉求编号）")]) for r in rows[1:]] == [(x.number, req.number)]
    detail = officer.get(f"/requests/{req.number}/").content.decode()
    assert 'id="request-listing"' in detail and x.number in detail[detail.index('id="request-listing"'):]
    # found wrong: annulled with what was found, the firm told once, off its home, not due again
    r = officer.post(f"/abnormal/{x.pk}/act/", {"action": "annul", "reason": "核实"}, follow=True)
    assert "撤销须写明核实的情况" in r.content.decode() and Listing.objects.get(pk=x.pk).status == "listed"
    officer.post(f"/abnormal/{x.pk}/act/", {"action": "annul", "reason": "企业已于6月20日报送纸质年报"})
    x.refresh_from_db()
    assert (x.status, x.note, x.removed_on) == ("annulled", "企业已于6月20日报送纸质年报", timezone.localdate())
    # the objection is answered by it, signed first by the same officer; the firm gets one
    # message saying both, and rates the answer as any other
    req.refresh_from_db()
    answer = f"经核实，经营异常名录 {x.number} 列入有误，已撤销：企业已于6月20日报送纸质年报"
    assert (req.status, req.answer) == ("answered", answer) and req.signed_at == req.answered_at
    assert [(e.move, e.user_id) for e in req.events.order_by("id")][-2:] == [
        ("sign", x.removed_by_id), ("answer", x.removed_by_id)]
    assert x.removed_by is not None
    told = OutboxMessage.objects.get(key=f"abnormal-annulled:{x.pk}")
    assert x.number in told.body and "有误" in told.body and "http" not in told.body
    assert f"您提出的异议（诉求编号{req.number}）已据此答复" in told.body
    to_firm = OutboxMessage.objects.filter(entity=x.entity, addressee="entity").exclude(purpose="signin")
    assert list(to_firm.order_by("id").values_list("key", flat=True)) == [
        f"abnormal-listed:{x.entity_id}:{YEAR}", f"abnormal-annulled:{x.pk}"]
    assert "对办理结果评价" in c.get(f"/portal/requests/{req.number}/").content.decode()
    assert f'id="abnormal-{x.pk}"' not in c.get("/portal/").content.decode()
    m = queries.measures(Listing.objects.filter(pk=x.pk))
    assert (m["standing"], m["removed"], m["annulled"], m["objected"]) == (0, 0, 1, 0)
    assert not actions.candidates(YEAR, AFTER.date()).filter(uscc=x.entity_id).exists()
    for act in (lambda: actions.do_annul(x, None, "再撤销一次"), lambda: actions.do_object(x, "再提一次异议"),
                lambda: actions.do_remove(x, None)):
        with pytest.raises(actions.ListingError, match="撤销"):
            act()
    assert OutboxMessage.objects.filter(key__startswith="abnormal-annulled:").count() == 1
    # the API: the same objection for another listing, and a annulled one refused
    other = Listing.objects.filter(entity__entity_type="enterprise", status="listed").exclude(pk=x.pk).first()
    api = portal_client(other.entity_id)
    post = lambda pk, text: api.post(f"/api/v1/abnormal/{pk}/object", {"text": text},  # noqa: E731
                                     content_type="application/json", HTTP_X_CSRFTOKEN="x")
    r = post(other.pk, "本企业已于2026年3月注销，不应列入")
    assert r.status_code == 201 and Listing.objects.get(pk=other.pk).objection.number == r.json()["request_number"]
    assert post(x.pk, "这条不是本企业的").status_code == 404
    assert c.post(f"/api/v1/abnormal/{x.pk}/object", {"text": "已撤销的再提异议"}, content_type="application/json",
                  HTTP_X_CSRFTOKEN="x").status_code == 400
    assert c.get("/api/v1/abnormal").json()[0]["status"] == "annulled"
    # the national system's list, imported later with a removal for it, leaves it annulled
    row = {"__row": 2, "uscc": x.entity_id, "report_year": YEAR, "number": x.number, "listed_on": x.listed_on,
           "removed_on": x.listed_on + dt.timedelta(days=30)}
    assert actions.import_listings([row])[:3] == (0, 0, 1)
    assert Listing.objects.get(pk=x.pk).status == "annulled"


def test_the_api_lists_the_firms_listings_and_applies_once_it_has_filed(checked_county):
    actions.do_list(YEAR, now=AFTER)
    x = (Listing.objects.exclude(entity__reports__report_year=YEAR).select_related("entity").order_by("number").first())
    c = portal_client(x.entity_id)
    assert Client().get("/api/v1/abnormal").status_code == 401
    got = c.get("/api/v1/abnormal").json()
    assert [(g["id"], g["number"], g["status"], g["back_filed"]) for g in got] == [(x.pk, x.number, "listed", False)]
    post = lambda pk: c.post(f"/api/v1/abnormal/{pk}/apply", content_type="application/json",  # noqa: E731
                             HTTP_X_CSRFTOKEN="x")
    r = post(x.pk)
    assert r.status_code == 400 and "补报" in r.json()["detail"] and Listing.objects.get(pk=x.pk).status == "listed"
    assert post(Listing.objects.exclude(entity=x.entity).first().pk).status_code == 404
    report(x.entity, dt.datetime(2026, 8, 3, 10, 0, tzinfo=LOCAL))
    r = post(x.pk)
    assert r.status_code == 200 and (r.json()["status"], r.json()["back_filed"]) == ("applied", True)
    assert r.json()["answer_by"] == actions.answer_by(timezone.localdate()).isoformat()
    assert got[0]["answer_by"] is None  # not applied for then
    assert post(x.pk).status_code == 400  # once


def test_a_listing_near_three_years_is_warned_once_by_the_morning_job(checked_county):
    from qifu import worker

    actions.do_list(YEAR, now=AFTER)
    today = timezone.localdate()
    near, far, removed = list(Listing.objects.filter(entity__phone__startswith="1").order_by("number")[:3])
    listed = actions.warn_before(today) - dt.timedelta(days=40)  # three years up in about twenty days
    Listing.objects.filter(pk__in=[near.pk, removed.pk]).update(listed_on=listed)
    Listing.objects.filter(pk=removed.pk).update(status="removed")
    job = next(j for j in worker.JOBS if j.id == "abnormal_serious")
    assert worker.handler(job)() == 1 and worker.handler(job)() == 0  # once
    told = OutboxMessage.objects.get(key=f"abnormal-serious:{near.pk}")
    near.refresh_from_db()
    on = actions.serious_on(near)
    assert today < on <= today + dt.timedelta(days=actions.WARN_DAYS)
    assert f"将于{on.year}年{on.month}月{on.day}日满三年" in told.body and "严重违法失信名单" in told.body
    assert not OutboxMessage.objects.filter(key__in=[f"abnormal-serious:{far.pk}", f"abnormal-serious:{removed.pk}"]).exists()


def test_removals_refusals_and_annulments_are_numbered_decisions_worded_for_an_individual_business(checked_county):
    from qifu.abnormal import documents

    actions.do_list(YEAR, now=AFTER)
    marks = list(Listing.objects.filter(kind="mark").select_related("entity").order_by("number")[:3])
    first, second, third = marks
    year = timezone.localdate().year
    # numbers run on from the highest of their kind and year, each kind apart
    Ruling.objects.create(listing=third, kind="remove", number=f"异移〔{year}〕00041号", decided_on=timezone.localdate(),
                          decided_at=timezone.now())
    report(first.entity, dt.datetime(2026, 8, 3, 10, 0, tzinfo=LOCAL))
    actions.do_remove(first, checked_county["users"]["admin"])  # of the bureau's own motion: no application
    removal = first.rulings.get()
    assert removal.number == f"异移〔{year}〕00042号" and removal.applied_at is None
    d = documents.ruling(removal)
    text = "".join(d.paragraphs)
    assert d.title == "恢复正常记载状态决定书" and d.number == removal.number
    assert "本局决定自" in text and "起恢复你户的正常记载状态" in text and "你户已补报" in text
    assert "申请" not in text and "你单位" not in text and first.number in text
    actions.do_annul(second, checked_county["users"]["admin"], "该户已于6月20日报送纸质年报。")
    annulment = second.rulings.get()
    assert annulment.number == f"异撤〔{year}〕00001号"
    d = documents.ruling(annulment)
    text = "".join(d.paragraphs)
    assert d.title == "撤销标注经营异常状态决定书"
    assert "经核实，该户已于6月20日报送纸质年报，该决定有误" in text and f"撤销{second.number}决定" in text
    assert annulment.number in OutboxMessage.objects.get(key=f"abnormal-annulled:{second.pk}").body
    # the listing's own decision says it was annulled; the entity's file lists both later decisions
    admin = staff(checked_county, "admin")
    assert f"本决定已于{annulment.decided_on.year}年" in admin.get(f"/abnormal/{second.pk}/decision/").content.decode()
    assert f"撤销（列入有误，{annulment.number}）" in admin.get(f"/abnormal/{second.pk}/decision/").content.decode()
    page = admin.get(f"/entities/{second.entity_id}/").content.decode()
    assert annulment.number in page and f"/abnormal/{second.pk}/decision/{annulment.pk}/" in page
    book = openpyxl.load_workbook(io.BytesIO(admin.get("/abnormal/", {"year": YEAR, "format": "xlsx"}).content))
    rows = list(book["经营异常名录"].iter_rows(values_only=True))
    later = {r[0]: r[rows[0].index("后续决定（文号）")] for r in rows[1:]}
    assert later[first.number] == f"移出 {removal.number}（{removal.decided_on:%Y-%m-%d}）"
    assert later[second.number].startswith(f"撤销 {annulment.number}") and not later[Listing.objects.exclude(
        pk__in=[x.pk for x in marks]).order_by("number").first().number]


def test_decisions_made_before_their_table_are_taken_from_the_listings_and_the_refusals_messages(checked_county):
    import importlib

    from django.apps import apps

    step = importlib.import_module("qifu.abnormal.migrations.0004_rulings").written
    actions.do_list(YEAR, now=AFTER)
    removed, national, annulled, refused = Listing.objects.select_related("entity").order_by("number")[:4]
    Listing.objects.filter(pk=removed.pk).update(status="removed", removed_on=dt.date(2026, 8, 5), note="已补报",
                                                 applied_at=dt.datetime(2026, 8, 1, 9, 0, tzinfo=LOCAL))
    Listing.objects.filter(pk=national.pk).update(status="removed", removed_on=dt.date(2026, 8, 4), note=actions.NATIONAL)
    Listing.objects.filter(pk=annulled.pk).update(status="annulled", removed_on=dt.date(2026, 8, 6), note="按期报送纸质年报")
    at = dt.datetime(2026, 8, 7, 16, 0, tzinfo=LOCAL)
    OutboxMessage.objects.create(
        key=f"abnormal-refused:{refused.pk}:{int(at.timestamp())}", entity=refused.entity, purpose="abnormal",
        channel="sms", recipient="13800000000", planned_for=at.date(), next_attempt_at=at, reason="不予移出",
        body=f"【慈溪市市场监管局】{refused.entity.name}：您单位移出经营异常名录的申请（{refused.number}）未获同意："
             f"补报的资产总额与财务报表不符。处理后可再次申请。年报和移出均不收费。")
    step(apps, None)
    got = {r.listing_id: (r.kind, r.number, r.decided_on, r.reason, r.applied_at) for r in Ruling.objects.all()}
    assert got == {
        removed.pk: ("remove", "异移〔2026〕00001号", dt.date(2026, 8, 5), "已补报", dt.datetime(2026, 8, 1, 1, 0, tzinfo=dt.UTC)),
        annulled.pk: ("annul", "异撤〔2026〕00001号", dt.date(2026, 8, 6), "按期报送纸质年报", None),
        refused.pk: ("refuse", "异不移〔2026〕00001号", dt.date(2026, 8, 7), "补报的资产总额与财务报表不符", None)}


CONCURRENT = r"""
import os, threading, datetime as dt
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db
db.ensure_ready()
from django.db import connection
from django.utils import timezone
from qifu.abnormal import actions
from qifu.abnormal.models import Listing, Ruling
from qifu.registry.models import Entity, Township
from qifu.reports.models import AnnualReport

town = Township.objects.first()
now = timezone.now()
listings = []
for i in range(12):
    e = Entity.objects.create(uscc=f"91330282MA{i:08d}", name=f"企业{i}", entity_type="enterprise", town=town,
                              established_on=dt.date(2020, 1, 1), status="active", imported_at=now)
    AnnualReport.objects.create(entity=e, report_year=2025, filed_at=now, imported_at=now)
    listings.append(Listing.objects.create(entity=e, town=town, report_year=2025, kind="list", reason="测试",
                                           number=f"异列〔2026〕{i + 1:05d}号", listed_on=dt.date(2026, 7, 10),
                                           status="applied", applied_at=now))
outcomes, lock = [], threading.Lock()

def go(x, what):
    try:
        if what == "remove":
            actions.do_remove(x, None, "已补报")
        else:
            actions.do_refuse(x, None, "补报内容与社保记录不符")
        r = "done"
    except actions.ListingError as e:
        r = str(e)
    finally:
        connection.close()
    with lock:
        outcomes.append(r)

# six removals and six refusals, each of a listing of its own, all at once
threads = [threading.Thread(target=go, args=(x, "remove" if i % 2 else "refuse")) for i, x in enumerate(listings)]
for t in threads: t.start()
for t in threads: t.join()
print(outcomes.count("done"), "|".join(sorted(Ruling.objects.values_list("number", flat=True))), "|".join(o for o in outcomes if o != "done") or "-")
"""


def test_decisions_made_at_the_same_moment_each_get_a_number_of_their_own(process_env):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CONCURRENT], env=process_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    done, numbers, errors = out.stdout.split(" ", 2)
    year = timezone.localdate().year
    assert (int(done), errors.strip()) == (12, "-"), out.stdout
    assert numbers.split("|") == sorted([f"异不移〔{year}〕{i:05d}号" for i in range(1, 7)]
                                        + [f"异移〔{year}〕{i:05d}号" for i in range(1, 7)])


# --- the second ground: not at the registered address ------------------------------------------------


def _visit(entity: Entity, channel: str = "visit", which: str = ""):
    from qifu.reminders.models import ContactTask

    m = OutboxMessage.objects.create(key=f"visit-test:{entity.uscc}:{channel}:{which}", entity=entity, purpose="filing",
                                     channel=channel, recipient=entity.phone or "", body="", reason="多次短信未送达",
                                     planned_for=timezone.localdate(), next_attempt_at=timezone.now(), status="task")
    return ContactTask.objects.create(message=m, entity=entity, channel=channel, due_on=timezone.localdate())


def test_a_visit_that_finds_nobody_at_the_address_lists_the_entity_until_it_can_be_reached(checked_county):
    from qifu.engine.requests import workdays
    from qifu.reminders.actions import NOT_AT_ADDRESS

    own = checked_county["own_town"]
    e, other = list(Entity.objects.filter(town=own, status="active", entity_type="enterprise", phone__startswith="1")
                    .exclude(address="").order_by("uscc")[:2])
    officer, admin = staff(checked_county, "officer"), staff(checked_county, "admin")
    visit, call = _visit(e), _visit(other, "call")
    # only a visit can find the address empty
    r = officer.post(f"/tasks/{call.pk}/close/", {"outcome": NOT_AT_ADDRESS}, follow=True)
    assert "只能在上门核查后选择" in r.content.decode()
    call.refresh_from_db()
    assert call.status == "open"
    officer.post(f"/tasks/{visit.pk}/close/", {"outcome": NOT_AT_ADDRESS, "detail": "厂房空置，邻居称已搬离半年"})
    visit.refresh_from_db()
    assert visit.status == "done" and visit.closed_at is not None
    today = timezone.localdate()
    # the finding waits for a decision on the list's page, with its deadline: the officer's, not another township's
    due = actions.unreachable_due()
    assert [(d["entity"].uscc, d["found_on"]) for d in due] == [(e.uscc, today)]
    assert d_by(due) == workdays.nth_after(today, actions.LIST_WITHIN_WORKDAYS)
    assert not actions.unreachable_due(entities=Entity.objects.filter(town=checked_county["other_town"]))
    page = officer.get("/abnormal/").content.decode()
    assert f'id="unreachable-due-{e.uscc}"' in page and "厂房空置" in page
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/", {"format": "xlsx"}).content))
    assert [(r[0], r[5]) for r in book["无法联系待决定"].iter_rows(min_row=2, values_only=True)] == [
        (e.uscc, dt.datetime.combine(today, dt.time()))]
    page = officer.get(f"/entities/{e.uscc}/").content.decode()
    assert 'id="abnormal-unreachable-found"' in page and 'value="上门核查：登记住所查无此主体：厂房空置' in page
    assert "登记住所无法联系、待决定 1 户" in officer.get("/").content.decode()
    # a later visit that finds it there after all clears the finding; one that finds it gone again renews it
    from qifu.reminders.actions import close_task

    close_task(_visit(e, "visit", "again"), "已接通，答应按时报送")
    assert not actions.unreachable_due()
    close_task(_visit(e, "visit", "third"), NOT_AT_ADDRESS, "厂房空置，邻居称已搬离半年")
    assert [d["entity"].uscc for d in actions.unreachable_due()] == [e.uscc]
    # only the county's administrators and the entity's township decide
    elsewhere = get_user_model().objects.create_user("elsewhere-officer", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=elsewhere, role="officer", town=checked_county["other_town"])
    stranger = Client()
    stranger.force_login(elsewhere)
    form = {"uscc": e.uscc, "found_on": today.isoformat(), "found": "上门核查：厂房空置"}
    assert stranger.post("/abnormal/unreachable/", form).status_code == 404
    assert staff(checked_county, "leader").post("/abnormal/unreachable/", form).status_code == 403
    assert f'id="unreachable-due-{e.uscc}"' not in stranger.get("/abnormal/").content.decode()
    # the decision says what was found; a mistake in it is refused before anything is stored
    r = officer.post("/abnormal/unreachable/", {"uscc": e.uscc, "found_on": today.isoformat(), "found": "无"}, follow=True)
    assert "至少4个字" in r.content.decode()
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    r = officer.post("/abnormal/unreachable/", {"uscc": e.uscc, "found_on": tomorrow, "found": "上门核查无人"}, follow=True)
    assert "不能晚于今天" in r.content.decode() and not Listing.objects.exists()
    officer.post("/abnormal/unreachable/", {"uscc": e.uscc, "found_on": today.isoformat(),
                                            "found": "上门核查：厂房空置，邻居称已搬离半年"})
    x = Listing.objects.get()
    assert (x.ground, x.report_year, x.kind, x.found_on, x.address) == ("unreachable", None, "list", today, e.address)
    assert x.number == f"异列〔{today.year}〕00001号" and x.status == "listed"
    told = OutboxMessage.objects.get(key=f"abnormal-listed:{e.uscc}:u{x.pk}")
    assert "无法与您单位联系" in told.body and x.number in told.body and "申请移出" in told.body
    assert not actions.unreachable_due()
    r = officer.post("/abnormal/unreachable/", {"uscc": e.uscc, "found_on": today.isoformat(), "found": "再次上门核查无人"},
                     follow=True)
    assert "尚未移出" in r.content.decode() and Listing.objects.count() == 1
    doc = officer.get(f"/abnormal/{x.pk}/decision/").content.decode()
    assert f"通过你单位登记的住所或者经营场所（{e.address}）无法与你单位取得联系" in doc and "厂房空置" in doc
    assert "办理住所或者经营场所变更登记" in doc and "行政复议" in doc and "补报" not in doc
    assert "如在本局核查时能够通过登记的住所或者经营场所取得联系，可以向本局提出异议" in doc
    # no text reached it: its decision is to be served (by public notice, its address being empty)
    OutboxMessage.objects.filter(pk=told.pk).update(status="failed")
    assert list(queries.unreached(Listing.objects.all())) == [x]
    assert not queries.unreached(Listing.objects.filter(ground="not_filed")).exists()
    page = officer.get("/abnormal/", {"status": "unreachable"}).content.decode()
    assert f'id="listing-{x.pk}"' in page and 'id="abnormal-unreachable-unreached"' in page
    assert '<b id="tile-unreachable">1</b>' in page
    batch = officer.get("/abnormal/decisions/", {"ground": "unreachable"}).content.decode()
    assert x.number in batch and "因无法联系列入、未能书面告知的列入决定书" in batch
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/abnormal/decisions/", {"ground": "unreachable",
                                                                                  "format": "xlsx"}).content))
    assert [r[0] for r in book["送达清单"].iter_rows(min_row=2, values_only=True)] == [x.number]
    # its address empty, it is served by public notice: the notice to publish, then its number and day
    notice = officer.get("/abnormal/decisions/notice/", {"ground": "unreachable"}).content.decode()
    assert "关于送达列入经营异常名录决定书的公告" in notice and x.number in notice and e.uscc in notice
    assert "通过登记的住所或者经营场所无法联系" in notice and "满30日" in notice
    early = (x.listed_on - dt.timedelta(days=1)).isoformat()
    r = officer.post("/abnormal/decisions/notice/?ground=unreachable", {"number": "慈市监公告〔2026〕12号",
                                                                       "published_on": early}, follow=True)
    assert "公告发布日期早于列入日期" in r.content.decode() and Listing.objects.get(pk=x.pk).served_on is None
    officer.post("/abnormal/decisions/notice/?ground=unreachable", {"number": "慈市监公告〔2026〕12号",
                                                                   "published_on": today.isoformat()})
    served = Listing.objects.get(pk=x.pk)
    assert (served.served_way, served.served_on) == ("notice", today + dt.timedelta(days=actions.NOTICE_DAYS))
    assert "慈市监公告〔2026〕12号" in served.served_note and not queries.unreached(Listing.objects.all()).exists()
    # the firm applies saying how it can be reached; staff check it and take it off
    c = portal_client(e.uscc)
    home = c.get("/portal/").content.decode()
    assert "通过登记的住所无法联系" in home and f'id="abnormal-apply-{x.pk}"' in home
    r = c.post(f"/portal/abnormal/{x.pk}/apply/", {"statement": ""}, follow=True)
    assert "请说明现在如何能在登记的住所" in r.content.decode() and Listing.objects.get(pk=x.pk).status == "listed"
    got = c.get("/api/v1/abnormal").json()
    assert [(a["ground"], a["report_year"], a["found_on"]) for a in got] == [("unreachable", None, today.isoformat())]
    c.post(f"/portal/abnormal/{x.pk}/apply/", {"statement": "已恢复在登记住所经营，负责人每天在厂"})
    x.refresh_from_db()
    assert (x.status, x.applied_note) == ("applied", "已恢复在登记住所经营，负责人每天在厂")
    assert "企业说明：已恢复在登记住所经营" in officer.get(f"/entities/{e.uscc}/").content.decode()
    r = officer.post(f"/abnormal/{x.pk}/act/", {"action": "remove", "note": ""}, follow=True)
    assert "请写明核实的情况" in r.content.decode() and Listing.objects.get(pk=x.pk).status == "applied"
    officer.post(f"/abnormal/{x.pk}/act/", {"action": "remove", "note": "实地核实，企业已在登记住所恢复生产"})
    x.refresh_from_db()
    assert x.status == "removed"
    removal = x.rulings.get(kind="remove")
    doc = officer.get(f"/abnormal/{x.pk}/decision/{removal.pk}/").content.decode()
    assert "因通过登记的住所或者经营场所无法联系" in doc and "经核实，实地核实，企业已在登记住所恢复生产" in doc
    assert "已能够通过登记的住所或者经营场所取得联系" in doc and "补报" not in doc
    body = OutboxMessage.objects.get(key=f"abnormal-removed:{x.pk}").body
    assert "经核实已可以联系到您单位" in body and removal.number in body
    # the workbook of the ground holds it with what was found
    book = openpyxl.load_workbook(io.BytesIO(admin.get("/abnormal/", {"status": "unreachable", "format": "xlsx"}).content))
    header, *rows = list(book["经营异常名录"].iter_rows(values_only=True))
    row = dict(zip(header, rows[0], strict=True))
    assert (row["决定书文号"], row["报告年度"], row["列入事由"], row["核查情况"]) == (
        x.number, None, "通过登记的住所或者经营场所无法联系", "上门核查：厂房空置，邻居称已搬离半年")


def d_by(due: list[dict]):
    return due[0]["decide_by"]


def test_staff_who_reach_the_entity_after_all_set_the_finding_aside_instead_of_listing_it(checked_county):
    from qifu.abnormal.models import SetAside
    from qifu.reminders.actions import NOT_AT_ADDRESS, close_task

    own = checked_county["own_town"]
    e = Entity.objects.filter(town=own, status="active", entity_type="enterprise").exclude(address="").order_by("uscc").first()
    officer = staff(checked_county, "officer")
    close_task(_visit(e, "visit", "first"), NOT_AT_ADDRESS, "大门紧锁")
    found_on = timezone.localdate()
    form = {"uscc": e.uscc, "found_on": found_on.isoformat(), "reason": "已电话联系法定代表人，企业仍在登记住所经营，上门时恰逢停工"}
    # the leader reads only; another township's officer does not see the entity
    assert staff(checked_county, "leader").post("/abnormal/unreachable/set-aside/", form).status_code == 403
    elsewhere = get_user_model().objects.create_user("elsewhere-aside", password="elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=elsewhere, role="officer", town=checked_county["other_town"])
    stranger = Client()
    stranger.force_login(elsewhere)
    assert stranger.post("/abnormal/unreachable/set-aside/", form).status_code == 404
    # it says what was checked, and answers the finding that is waiting
    r = officer.post("/abnormal/unreachable/set-aside/", form | {"reason": "无"}, follow=True)
    assert "至少4个字" in r.content.decode()
    r = officer.post("/abnormal/unreachable/set-aside/", form | {"found_on": "2026-01-05"}, follow=True)
    assert "没有这一天查实" in r.content.decode() and not SetAside.objects.exists()
    page = officer.get(f"/entities/{e.uscc}/").content.decode()
    assert 'id="abnormal-set-aside-form"' in page
    r = officer.post("/abnormal/unreachable/set-aside/", form, follow=True)
    assert "已核实，不予列入" in r.content.decode()
    aside = SetAside.objects.get()
    assert (aside.entity_id, aside.found_on, aside.decided_by.username) == (e.uscc, found_on, "officer")
    assert not actions.unreachable_due() and not Listing.objects.exists()
    page = officer.get(f"/entities/{e.uscc}/").content.decode()
    assert 'id="abnormal-unreachable-found"' not in page and "上门时恰逢停工" in page
    # a later visit that finds the address empty again is a new finding
    task = _visit(e, "visit", "second")
    close_task(task, NOT_AT_ADDRESS, "仍无人")
    later = timezone.localdate() + dt.timedelta(days=3)
    type(task).objects.filter(pk=task.pk).update(closed_at=timezone.now() + dt.timedelta(days=3))
    assert [d["found_on"] for d in actions.unreachable_due(later)] == [later]


def test_an_unreachable_listing_is_warned_of_three_years_and_shows_a_change_of_address(checked_county):
    e = Entity.objects.filter(status="active", entity_type="individual", phone__startswith="1").exclude(address="").first()
    x = actions.do_list_unreachable(e, timezone.localdate(), "邮寄决定书被退回：查无此人")
    assert (x.kind, x.decided) == ("mark", "标注为经营异常状态")
    assert not x.moved and not queries.moved(Listing.objects.all()).exists()
    Entity.objects.filter(pk=e.pk).update(address=f"{e.address}（新址）")
    assert Listing.objects.select_related("entity").get(pk=x.pk).moved
    assert list(queries.moved(Listing.objects.all())) == [x]
    admin = staff(checked_county, "admin")
    page = admin.get(f"/entities/{e.uscc}/").content.decode()
    assert "已变更登记住所" in page and f"（列入时：{e.address}）" in page
    assert "1 户已变更登记住所</a>" in admin.get("/abnormal/").content.decode()
    assert f'id="listing-{x.pk}"' in admin.get("/abnormal/", {"status": "moved"}).content.decode()
    # staff enter the application for a firm that calls, with what it says
    r = admin.post(f"/abnormal/{x.pk}/act/", {"action": "apply", "statement": ""}, follow=True)
    assert "请说明现在如何能在登记的住所" in r.content.decode()
    admin.post(f"/abnormal/{x.pk}/act/", {"action": "apply", "statement": "电话告知：已迁至新址并办理变更登记"})
    x.refresh_from_db()
    assert (x.status, x.applied_channel, x.applied_note) == ("applied", "staff", "电话告知：已迁至新址并办理变更登记")
    assert f'id="listing-{x.pk}"' in admin.get("/abnormal/", {"status": "applied"}).content.decode()
    today = timezone.localdate()
    Listing.objects.filter(pk=x.pk).update(listed_on=today.replace(year=today.year - 3) + dt.timedelta(days=30))
    assert actions.warn_serious() == 1
    body = OutboxMessage.objects.get(key=f"abnormal-serious:{x.pk}").body
    assert "因通过登记的住所或者经营场所无法联系列入" in body and "办理住所变更登记" in body and "补报" not in body


def test_a_refusal_that_reached_nobody_is_printed_and_served_with_its_proof(checked_county, data_dir):
    actions.do_list(YEAR, now=AFTER)
    own = checked_county["own_town"]
    x = (Listing.objects.filter(town=own, kind="list").exclude(entity__reports__report_year=YEAR)
         .select_related("entity").order_by("number").first())
    report(x.entity, dt.datetime(2026, 8, 3, 10, 0, tzinfo=LOCAL))
    admin = checked_county["users"]["admin"]
    actions.do_apply(x)
    actions.do_refuse(x, admin, "补报的从业人数与社保记录不符，请更正")
    r = x.rulings.get()
    OutboxMessage.objects.filter(key=actions.refusal_key(r)).update(status="failed")  # its text bounced
    assert queries.unreached_refusals(Listing.objects.all()) == [r]
    officer = staff(checked_county, "officer")
    assert 'id="abnormal-refusals-unreached"' in officer.get("/abnormal/").content.decode()
    page = officer.get("/abnormal/decisions/", {"kind": "refusals"}).content.decode()
    assert "未能书面告知的不予移出决定书" in page and r.number in page and "不予移出经营异常名录决定书" in page
    assert 'id="service-upload"' not in page  # each recorded on its own page
    # served on its own page, not before it was decided, with the signed proof scanned
    url = f"/abnormal/{x.pk}/decision/{r.pk}/"
    assert 'id="serve-form"' in officer.get(url).content.decode()
    early = (r.decided_on - dt.timedelta(days=1)).isoformat()
    resp = officer.post(url + "serve/", {"way": "post", "served_on": early, "note": "EMS 1100999"}, follow=True)
    assert "送达日期应在决定日期" in resp.content.decode()
    scan = b"\x89PNG\r\n\x1a\n synthetic receipt"
    officer.post(url + "serve/", {"way": "post", "served_on": timezone.localdate().isoformat(), "note": "EMS 1100999",
                                  "proof": SimpleUploadedFile("回执.png", scan)})
    r.refresh_from_db()
    assert (r.served_way, r.served_note, r.proof_name) == ("post", "EMS 1100999", "回执.png")
    assert b"".join(officer.get(url + "proof/").streaming_content) == scan
    assert queries.unreached_refusals(Listing.objects.all()) == []
    # a removal's decision is not served this way
    x.refresh_from_db()
    actions.do_apply(x)
    actions.do_remove(x, admin)
    removal = x.rulings.get(kind="remove")
    assert 'id="decision-service"' not in officer.get(f"/abnormal/{x.pk}/decision/{removal.pk}/").content.decode()
    assert officer.post(f"/abnormal/{x.pk}/decision/{removal.pk}/serve/", {"way": "post"}).status_code == 404
