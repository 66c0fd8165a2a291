"""Shared labs (共享实验室): the catalogue imported from staff's sheet all-or-nothing; bookings
that keep to opening hours and never give one slot to two firms, also under concurrent
requests; cancellation rules; innovation vouchers that pay their share and are never overspent;
test batches with their reports; Chinese search; the staff pages, the portal and the JSON API
with township isolation and XLSX."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from decimal import Decimal

import openpyxl
import polars as pl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from qifu.accounts.models import AuditEvent
from qifu.engine.errors import InvalidFile
from qifu.imports.actions import import_file
from qifu.labs import actions
from qifu.labs.models import BookedSlot, Booking, Closure, Instrument, Lab, SampleOrder, Voucher, Waiting
from qifu.labs.models import TestBatch as Batch  # not a test class
from qifu.registry.models import Entity
from tests.factories import portal_client

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def county(checked_county):
    if not Lab.objects.exists():
        import_file("labs", checked_county["folder"] / "labs.csv")
    yield checked_county
    for model in (SampleOrder, Waiting, Batch, BookedSlot, Booking, Voucher, Closure):
        model.objects.all().delete()


def open_day(lab: Lab, ahead: int = 3) -> dt.date:
    """The first day the lab opens, at least ``ahead`` days from today."""
    day = timezone.localdate() + dt.timedelta(days=ahead)
    while str(day.isoweekday()) not in lab.open_days or actions.holiday(day):
        day += dt.timedelta(days=1)
    return day


def instrument(units: int = 1) -> Instrument:
    return Instrument.objects.filter(units=units, active=True).select_related("lab").order_by("lab__code", "code").first()


def firms(n: int, town=None) -> list[Entity]:
    qs = Entity.objects.filter(entity_type="enterprise", status="active")
    if town is not None:
        qs = qs.filter(town=town)
    return list(qs.order_by("uscc")[:n])


def first_slot(inst: Instrument, ahead: int = 3) -> dt.datetime:
    return actions.day_slots(inst, open_day(inst.lab, ahead))[0]


# --- the catalogue ------------------------------------------------------------------------


def test_the_catalogue_is_imported_from_the_sheet_and_a_bad_sheet_changes_nothing(county, tmp_path):
    rows = pl.read_csv(county["folder"] / "labs.csv", infer_schema=False)
    assert Instrument.objects.count() == rows.height
    assert Lab.objects.count() == rows["lab_code"].n_unique()
    owned = Lab.objects.filter(owner_kind="company")
    assert owned.exists() and all(lab.owner_id for lab in owned)  # a firm's lab is linked to the firm
    # the same sheet again changes nothing
    again = import_file("labs", county["folder"] / "labs.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, rows.height)
    bad = rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("18:00")).otherwise(pl.col("opens")).alias("opens"),
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("7")).otherwise(pl.col("slot_minutes")).alias("slot_minutes"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("25:00")).otherwise(pl.col("closes")).alias("closes"),
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("新增仪器")).otherwise(pl.col("instrument_name"))
        .alias("instrument_name"),
    )
    path = tmp_path / "labs.csv"
    bad.write_csv(path)
    with pytest.raises(InvalidFile) as err:
        import_file("labs", path)
    found = {(e.row, e.field): e.reason for e in err.value.errors}  # rows as the sheet numbers them
    assert "不是有效时刻" in found[(4, "closes")]  # 25:00
    assert "15 到 1440" in found[(3, "slot_minutes")]
    assert "晚于开放时间" in found[(2, "closes")]  # opens 18:00, closes earlier
    assert Instrument.objects.filter(name="新增仪器").count() == 0
    bad = rows.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("18:00")).otherwise(pl.col("opens"))
                            .alias("opens"))
    bad.write_csv(path)
    with pytest.raises(InvalidFile) as err:
        import_file("labs", path)
    reasons = {(e.row, e.field): e.reason for e in err.value.errors}
    assert "晚于开放时间" in reasons[(2, "closes")]
    assert any(f == "lab_code" for _, f in reasons)  # the lab's hours now differ between its rows


def test_search_in_chinese_finds_the_instrument_and_says_which_words_matched(county):
    hits = actions.search("汽车零部件尺寸精密测量")
    assert hits and hits[0][0].name == "三坐标测量机"
    assert {"尺寸", "测量"} <= set(hits[0][1])
    hits = actions.search("家电电磁兼容")
    assert hits[0][0].name == "电磁兼容测试系统"
    assert actions.search("量子计算") == []


# --- bookings -----------------------------------------------------------------------------


def test_a_booking_keeps_to_the_opening_hours_and_bad_input_changes_nothing(county):
    inst = instrument()
    lab, firm = inst.lab, firms(1)[0]
    day = open_day(lab)
    start = actions.day_slots(inst, day)[0]
    tz = timezone.get_current_timezone()
    closed = day
    while str(closed.isoweekday()) in lab.open_days:
        closed += dt.timedelta(days=1)
    cases = [
        (timezone.now() - dt.timedelta(hours=1), 1, "过去"),
        (dt.datetime.combine(closed, lab.opens, tz), 1, "不开放"),
        (start + dt.timedelta(minutes=7), 1, "起点"),
        (actions.day_slots(inst, day)[-1], 2, "超出开放时间"),
        (start, actions.MAX_SLOTS + 1, "1 到"),
        (dt.datetime.combine(timezone.localdate() + dt.timedelta(days=actions.MAX_DAYS_AHEAD + 8), lab.opens, tz), 1,
         "提前"),
    ]
    for when, slots, why in cases:
        with pytest.raises(actions.LabActionError, match=why):
            actions.do_book(firm, inst, when, slots, "盐雾试验")
    with pytest.raises(actions.LabActionError, match="检测内容"):
        actions.do_book(firm, inst, start, 1, " ")
    assert not Booking.objects.exists() and not BookedSlot.objects.exists()
    b = actions.do_book(firm, inst, start, 2, "镀锌件中性盐雾")
    assert b.end - b.start == dt.timedelta(minutes=2 * inst.slot_minutes)
    assert b.price == (inst.price_per_hour * inst.slot_minutes * 2 / 60).quantize(Decimal("0.01"))
    assert b.town_id == firm.town_id and b.status == "booked"


def test_labs_close_on_statutory_holidays_whatever_their_opening_days():
    lab = Lab(open_days="1234567", opens=dt.time(8), closes=dt.time(12))
    inst = Instrument(lab=lab, slot_minutes=60, units=1)
    assert actions.day_slots(inst, dt.date(2026, 10, 2)) == []  # National Day
    assert len(actions.day_slots(inst, dt.date(2026, 10, 10))) == 4  # a Saturday worked in lieu: an ordinary day here
    assert len(actions.day_slots(inst, dt.date(2026, 12, 5))) == 4  # a Saturday, the lab opens on Saturdays


def test_two_firms_never_hold_the_same_slot(county):
    inst = instrument()
    a, b, c = firms(3)
    start = first_slot(inst)
    actions.do_book(a, inst, start, 2, "尺寸测量")
    step = dt.timedelta(minutes=inst.slot_minutes)
    with pytest.raises(actions.SlotTaken):
        actions.do_book(b, inst, start + step, 1, "尺寸测量")  # overlaps the second slot
    with pytest.raises(actions.SlotTaken):
        actions.do_book(b, inst, start - step, 2, "尺寸测量") if start - step >= actions.day_slots(
            inst, timezone.localtime(start).date())[0] else actions.do_book(b, inst, start, 1, "尺寸测量")
    assert Booking.objects.count() == 1
    later = actions.do_book(c, inst, start + 2 * step, 1, "尺寸测量")  # the slot after is free
    assert later.unit == 1
    # an instrument with two units takes two firms in one slot, and no third
    twin = instrument(units=2)
    s = first_slot(twin)
    assert [actions.do_book(f, twin, s, 1, "环境试验").unit for f in (a, b)] == [1, 2]
    with pytest.raises(actions.SlotTaken, match="2 台均已被预约"):
        actions.do_book(c, twin, s, 1, "环境试验")
    assert actions.free_units(twin, timezone.localtime(s).date())[s] == 0


def test_cancelling_frees_the_slot_a_firm_only_until_a_day_before(county):
    inst = instrument()
    a, b = firms(2)
    start = first_slot(inst)
    booking = actions.do_book(a, inst, start, 1, "尺寸测量")
    actions.do_cancel(booking)
    assert Booking.objects.get(pk=booking.pk).status == "cancelled"
    again = actions.do_book(b, inst, start, 1, "尺寸测量")  # the slot is free again
    with pytest.raises(actions.LabActionError, match="不能取消"):
        actions.do_cancel(booking)
    # within a day of the start a firm cannot cancel; the lab can, with a reason
    near = start - dt.timedelta(hours=actions.FREE_CANCEL_HOURS - 1)
    with pytest.raises(actions.LabActionError, match="联系实验室"):
        actions.do_cancel(again, now=near)
    with pytest.raises(actions.LabActionError, match="原因"):
        actions.do_cancel(again, staff=True, now=near)
    actions.do_cancel(again, "设备故障", staff=True, now=near)
    assert Booking.objects.get(pk=again.pk).cancel_reason == "设备故障"


def test_a_firm_waits_for_a_full_slot_and_is_booked_when_it_frees(county):
    from qifu.reminders.models import OutboxMessage

    inst = instrument()
    a, b, c, d = firms(4)
    Entity.objects.filter(pk=b.pk).update(phone="13905740011")
    start = first_slot(inst)
    with pytest.raises(actions.LabActionError, match="还有空位"):
        actions.do_wait(b, inst, start, 1, "尺寸测量")
    held = actions.do_book(a, inst, start, 1, "尺寸测量")
    with pytest.raises(actions.LabActionError, match="已预约了"):
        actions.do_wait(a, inst, start, 1, "尺寸测量")
    first = actions.do_wait(b, inst, start, 1, "螺纹尺寸测量")
    second = actions.do_wait(c, inst, start, 1, "外径测量")
    with pytest.raises(actions.LabActionError, match="已在候补"):
        actions.do_wait(b, inst, start, 1, "再来一次")
    with pytest.raises(actions.LabActionError, match="不足 24 小时"):
        actions.do_wait(d, inst, start, 1, "尺寸测量", now=start - dt.timedelta(hours=2))
    assert Waiting.objects.count() == 2
    assert first.now_status() == "waiting" and first.now_status(start - dt.timedelta(hours=3)) == "expired"
    page = staff(county, "admin").get(f"/entities/{c.uscc}/").content.decode()  # 一企一档
    assert inst.name in page[page.index('id="lab-waiting"'):] and "候补中" in page
    def place(firm):  # as the firm sees it in the portal
        page = portal_client(firm.uscc).get("/portal/labs/").content.decode()
        part = page[page.index('id="lab-waiting"'):]
        return part[part.index("候补中"):][:12]

    assert "第 1 位" in place(b) and "第 2 位" in place(c)
    # the slot frees: the firm that waited longest is booked on its own terms, and told
    actions.do_cancel(held)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "booked" and second.status == "waiting"
    assert "第 1 位" in place(c)
    booking = first.booking
    assert (booking.entity_id, booking.start, booking.purpose, booking.status) == (b.uscc, start, "螺纹尺寸测量", "booked")
    told = OutboxMessage.objects.get(key=f"lab-waiting:{first.pk}")
    assert (told.purpose, told.recipient, told.entity_id) == ("lab", "13905740011", b.uscc)
    assert "已为您自动预约" in told.body and inst.name in told.body
    # it frees again: the next in line; a withdrawn wait is never served
    third = actions.do_wait(d, inst, start, 1, "尺寸测量")
    actions.do_withdraw(second)
    with pytest.raises(actions.LabActionError, match="不能撤回"):
        actions.do_withdraw(second)
    actions.do_cancel(booking)
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.status == "withdrawn" and third.status == "booked" and third.booking.entity_id == d.uscc
    assert BookedSlot.objects.filter(instrument=inst, start=start, active=True).count() == 1
    # a slot freed less than a day ahead books nobody: a firm must be able to cancel what it gets
    late = actions.do_wait(a, inst, start, 1, "尺寸测量")
    actions.do_cancel(third.booking, "设备故障", staff=True, now=start - dt.timedelta(hours=3))
    late.refresh_from_db()
    assert late.status == "expired" and not BookedSlot.objects.filter(instrument=inst, start=start, active=True).exists()


def test_a_lab_closed_for_some_days_takes_no_bookings_there_and_its_firms_are_told(county):
    from qifu.reminders.models import OutboxMessage

    inst = instrument()
    lab = inst.lab
    a, b, c = firms(3)
    Entity.objects.filter(pk=a.pk).update(phone="13905740021")
    day = open_day(lab, 3)
    after = open_day(lab, (day - timezone.localdate()).days + 1)
    starts = actions.day_slots(inst, day)
    booked = actions.do_book(a, inst, starts[0], 1, "尺寸测量")
    waiting = actions.do_wait(b, inst, starts[0], 1, "外径测量")
    kept = actions.do_book(c, inst, actions.day_slots(inst, after)[0], 1, "尺寸测量")
    # only an administrator or an officer of the lab's township may close it
    form = {"first_day": day.isoformat(), "last_day": day.isoformat(), "reason": "设备年度校准"}
    assert staff(county, "leader").post(f"/labs/{lab.code}/closures/", form).status_code == 403
    if lab.town_id != county["own_town"].pk:  # an officer of another township
        assert staff(county, "officer").post(f"/labs/{lab.code}/closures/", form).status_code == 403
    assert not Closure.objects.exists()
    admin = staff(county, "admin")
    r = admin.post(f"/labs/{lab.code}/closures/", {"first_day": day.isoformat(), "last_day": day.isoformat(),
                                                    "instrument": "", "reason": "设备年度校准"}, follow=True)
    assert "取消预约 1 个、结束候补 1 个" in r.content.decode() and "设备年度校准" in r.content.decode()
    booked.refresh_from_db()
    waiting.refresh_from_db()
    kept.refresh_from_db()
    assert booked.status == "cancelled" and booked.cancel_reason == "实验室停开放：设备年度校准"
    assert waiting.status == "expired" and kept.status == "booked"
    told = OutboxMessage.objects.get(key=f"lab-closed:{booked.pk}")
    assert told.recipient == "13905740021" and "停开放（设备年度校准）" in told.body and "已退回" in told.body
    assert "停开放" in OutboxMessage.objects.get(key=f"lab-waiting:{waiting.pk}").body
    # nothing can be booked or waited for that day, and the firm sees why
    assert actions.day_slots(inst, day) == []
    with pytest.raises(actions.LabActionError, match="停开放：设备年度校准"):
        actions.do_book(b, inst, starts[1], 1, "尺寸测量")
    page = portal_client(b.uscc).get(f"/portal/labs/instruments/{inst.pk}/?day={day.isoformat()}").content.decode()
    assert "停开放：设备年度校准" in page and 'id="lab-closures"' in page
    # withdrawn: the day can be booked again; what it cancelled stays cancelled
    admin.post(f"/labs/{lab.code}/closures/{Closure.objects.get().pk}/remove/")
    assert actions.do_book(b, inst, starts[1], 1, "尺寸测量").status == "booked"
    assert Booking.objects.get(pk=booked.pk).status == "cancelled"
    # one instrument closed leaves the lab's others open
    other = lab.instruments.exclude(pk=inst.pk).filter(active=True).first()
    actions.do_close(lab, after, after, "更换探头", instrument=inst)
    assert actions.day_slots(inst, after) == [] and (other is None or actions.day_slots(other, after))
    assert Booking.objects.get(pk=kept.pk).status == "cancelled"
    # refused with the reason, nothing stored
    today = timezone.localdate()
    for first, last, reason, why in ((today - dt.timedelta(days=1), today, "检修", "已经过去"),
                                     (after, day, "检修", "不能早于首日"), (day, day, "修", "写明停开放原因"),
                                     (day, day + dt.timedelta(days=100), "检修", "最多停开放")):
        with pytest.raises(actions.LabActionError, match=why):
            actions.do_close(lab, first, last, reason)
    assert Closure.objects.count() == 1


def test_the_same_weekday_of_the_same_week_in_each_month():
    # the first Monday of December 2026 is the 7th; of January 2027 the 4th; of February the 1st
    assert actions.monthly_days(dt.date(2026, 12, 7), 3) == [dt.date(2026, 12, 7), dt.date(2027, 1, 4),
                                                             dt.date(2027, 2, 1)]
    assert actions.rhythm(dt.date(2026, 12, 7)) == "每月第一个周一"
    # the fifth Thursday is the month's last: February 2027 has four
    assert actions.monthly_days(dt.date(2026, 12, 31), 3) == [dt.date(2026, 12, 31), dt.date(2027, 1, 28),
                                                              dt.date(2027, 2, 25)]
    assert actions.rhythm(dt.date(2026, 12, 31)) == "每月最后一个周四"
    assert actions.monthly_days(dt.date(2026, 12, 16), 2) == [dt.date(2026, 12, 16), dt.date(2027, 1, 20)]


def test_a_monthly_closing_day_is_one_closure_a_month_each_taken_back_alone(county):
    inst = instrument()
    lab = inst.lab
    firm = firms(1)[0]
    today = timezone.localdate()
    first = today + dt.timedelta(days=(7 - today.weekday()) % 7 or 7)  # the next Monday
    days = actions.monthly_days(first, 3)
    later = next((d for d in days[1:] if str(d.isoweekday()) in lab.open_days and not actions.holiday(d)
                  and (d - today).days <= actions.MAX_DAYS_AHEAD), None)
    booked = actions.do_book(firm, inst, actions.day_slots(inst, later)[0], 1, "尺寸测量") if later else None
    admin = staff(county, "admin")
    r = admin.post(f"/labs/{lab.code}/closures/", {"first_day": first.isoformat(), "last_day": first.isoformat(),
                                                    "instrument": "", "reason": "设备月度维护", "months": "3"}, follow=True)
    page = r.content.decode()
    assert f"{actions.rhythm(first)}，共 3 天（至 {days[-1]:%Y-%m-%d}）" in page
    assert sorted(Closure.objects.values_list("first_day", flat=True)) == days
    assert all(actions.day_slots(inst, d) == [] for d in days)
    if booked:  # a booking on one of the later days is cancelled and its firm told, as for any closure
        booked.refresh_from_db()
        assert booked.status == "cancelled" and booked.cancel_reason == "实验室停开放：设备月度维护"
    # each month can be taken back alone
    admin.post(f"/labs/{lab.code}/closures/{Closure.objects.get(first_day=days[1]).pk}/remove/")
    assert sorted(Closure.objects.values_list("first_day", flat=True)) == [days[0], days[2]]
    # a span is not repeated, nor beyond a year; nothing stored
    r = admin.post(f"/labs/{lab.code}/closures/", {"first_day": first.isoformat(),
                                                    "last_day": (first + dt.timedelta(days=1)).isoformat(),
                                                    "reason": "设备月度维护", "months": "3"}, follow=True)
    assert "只登记一天" in r.content.decode()
    with pytest.raises(actions.LabActionError, match="2 到 12 个月"):
        actions.do_close_monthly(lab, first, 13, "设备月度维护")
    assert Closure.objects.count() == 2


def test_a_firm_waits_for_at_most_a_few_slots(county):
    inst = instrument()
    holder, waiter = firms(2)
    day = open_day(inst.lab)
    starts = actions.day_slots(inst, day)[:actions.MAX_WAITING + 1]
    for s in starts:
        actions.do_book(holder, inst, s, 1, "尺寸测量")
    for s in starts[:-1]:
        actions.do_wait(waiter, inst, s, 1, "尺寸测量")
    with pytest.raises(actions.LabActionError, match=f"最多候补 {actions.MAX_WAITING}"):
        actions.do_wait(waiter, inst, starts[-1], 1, "尺寸测量")


def test_a_wait_no_cancellation_serves_ends_a_day_before_and_the_firm_is_told_once(county):
    from qifu import worker
    from qifu.reminders.models import OutboxMessage

    inst = instrument()
    holder = firms(1)[0]
    waiter, late = firms(1, county["own_town"])[0], firms(1, county["other_town"])[0]
    Entity.objects.filter(pk=waiter.pk).update(phone="13905740012")
    Entity.objects.filter(pk=late.pk).update(phone="13905740013")
    starts = actions.day_slots(inst, open_day(inst.lab))[:actions.MAX_WAITING + 2]
    for s in starts:
        actions.do_book(holder, inst, s, 1, "尺寸测量")
    waits = [actions.do_wait(waiter, inst, s, 1, "尺寸测量") for s in starts[:actions.MAX_WAITING]]
    gone_by = actions.do_wait(late, inst, starts[1], 1, "外径测量")
    # a minute inside the last day before the first slot: that wait can no longer be served,
    # so it does not count against the five, though nothing has closed it yet
    now = starts[0] - dt.timedelta(hours=24) + dt.timedelta(minutes=1)
    assert waits[0].now_status(now) == "expired"
    extra = actions.do_wait(waiter, inst, starts[-2], 1, "尺寸测量", now=now)
    with pytest.raises(actions.LabActionError, match=f"最多候补 {actions.MAX_WAITING}"):
        actions.do_wait(waiter, inst, starts[-1], 1, "尺寸测量", now=now)
    # the worker's job closes it and tells the firm, once
    job = next(j for j in worker.JOBS if j.id == "lab_waits")
    assert worker.handler(job) is actions.expire_waits
    assert actions.expire_waits(now) == 1 and actions.expire_waits(now) == 0
    closed = Waiting.objects.get(pk=waits[0].pk)
    assert (closed.status, closed.closed_at) == ("expired", now)
    told = OutboxMessage.objects.filter(purpose="lab")
    msg = told.get()
    assert (msg.key, msg.recipient, msg.entity_id) == (f"lab-waiting:{closed.pk}", "13905740012", waiter.uscc)
    assert "候补已结束" in msg.body and inst.name in msg.body
    assert Waiting.objects.filter(entity=waiter, status="waiting").count() == actions.MAX_WAITING
    # the staff's lab page lists the open waits with each one's place in its slot's queue
    page = staff(county, "admin").get(f"/labs/{inst.lab.code}/").content.decode()
    part = page[page.index('id="lab-waiting"'):page.index("已完成或已取消")]
    assert part.count(waiter.name) == actions.MAX_WAITING and "第 2 位" in part and late.name in part
    page = staff(county, "officer").get(f"/labs/{inst.lab.code}/").content.decode()  # another township's: not shown
    part = page[page.index('id="lab-waiting"'):page.index("已完成或已取消")]
    assert part.count(waiter.name) == actions.MAX_WAITING and late.name not in part
    open_waits = Waiting.objects.filter(status="waiting", start__gte=now + dt.timedelta(hours=24)).count()
    assert f"候补中 {open_waits} 个，候补约上 0 次" in staff(county, "admin").get("/labs/").content.decode()
    x = staff(county, "admin").get("/labs/?format=xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(x.content))["候补"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == Waiting.objects.count() and sum(r[9] == "未约上" for r in rows) == 1
    # a slot gone by (the worker was down) closes the wait without a text; one still ahead is told
    then = starts[1] + dt.timedelta(hours=1)
    assert actions.expire_waits(then) == actions.MAX_WAITING + 1  # the waiter's four more, its extra, late's
    gone_by.refresh_from_db()
    assert gone_by.status == "expired" and Waiting.objects.get(pk=extra.pk).status == "expired"
    ahead = Waiting.objects.filter(status="expired", start__gt=then).values_list("pk", flat=True)
    assert set(told.values_list("key", flat=True)) == {f"lab-waiting:{pk}" for pk in [closed.pk, *ahead]}
    assert extra.pk in ahead and not told.filter(key=f"lab-waiting:{gone_by.pk}").exists()


def test_the_voucher_pays_its_share_and_is_never_overspent(county):
    inst = instrument()
    firm = firms(1)[0]
    voucher = actions.do_grant_voucher(firm, timezone.localdate().year + 1, "100")  # another year: not this one's
    assert voucher.share == Decimal("0.5")
    start = first_slot(inst, ahead=4)
    actions.do_grant_voucher(firm, start.year, "250", "0.5")
    price = actions.price_of(inst, 1)
    assert price * Decimal("0.5") > 0
    made = []
    for k in range(0, 6):
        try:
            made.append(actions.do_book(firm, inst, actions.day_slots(inst, open_day(inst.lab, 4 + k))[0], 1, "材料检测"))
        except actions.SlotTaken:
            pass
    v = Voucher.objects.get(entity=firm, year=start.year)
    used = actions.voucher_used(v)
    assert used <= v.budget
    expected = Decimal(0)
    for b in made:
        share = (b.price * Decimal("0.5")).quantize(Decimal("0.01"))
        assert b.voucher_amount == min(share, v.budget - expected) or b.voucher_amount == 0
        expected += b.voucher_amount
    assert used == expected
    # cancelling gives the share back; the budget cannot fall below what is used
    covered = [b for b in made if b.voucher_amount]
    with pytest.raises(actions.LabActionError, match="不能低于已用金额"):
        actions.do_grant_voucher(firm, start.year, str(used - 1))
    actions.do_cancel(covered[0])
    assert actions.voucher_used(v) == used - covered[0].voucher_amount
    with pytest.raises(actions.LabActionError):
        actions.do_grant_voucher(firm, start.year, "-5")
    with pytest.raises(actions.LabActionError):
        actions.do_grant_voucher(firm, start.year, "100", "1.5")


def test_a_test_batch_is_recorded_once_with_a_pdf_report(county, data_dir):
    inst = instrument()
    firm = firms(1)[0]
    start = first_slot(inst, ahead=2)
    booked_at = start - dt.timedelta(days=5)
    b = actions.do_book(firm, inst, start - dt.timedelta(days=0), 1, "尺寸测量", now=booked_at)
    tested = timezone.localtime(start).date()
    with pytest.raises(actions.LabActionError, match="不晚于今天"):
        actions.do_record_batch(b, tested, "尺寸", 2, "R-1", "pass")  # the test is in the future
    Booking.objects.filter(pk=b.pk).update(start=start - dt.timedelta(days=7), end=start - dt.timedelta(days=7))
    b.refresh_from_db()
    tested = timezone.localtime(b.start).date()
    with pytest.raises(actions.LabActionError, match="PDF"):
        actions.do_record_batch(b, tested, "尺寸", 2, "R-1", "pass", report=("r.png", "image/png", b"\x89PNG"))
    batch = actions.do_record_batch(b, tested, "尺寸", 2, "R-1", "pass", report=("报告.pdf", "application/pdf", PDF))
    assert Booking.objects.get(pk=b.pk).status == "done" and batch.report_sha256 and batch.town_id == firm.town_id
    with pytest.raises(actions.LabActionError, match="已登记过"):
        actions.do_record_batch(b, tested, "尺寸", 2, "R-2", "pass")
    with pytest.raises(actions.LabActionError, match="不能取消"):
        actions.do_cancel(b, "x", staff=True)


def test_a_firm_rates_a_done_test_once_and_the_lab_and_the_measures_show_it(county):
    inst = instrument()
    a, b = firms(2)
    start = first_slot(inst, ahead=2)
    done, other = (actions.do_book(f, inst, s, 1, "尺寸测量", now=start - dt.timedelta(days=5))
                   for f, s in ((a, start), (b, actions.day_slots(inst, timezone.localtime(start).date())[1])))
    client = portal_client(a.uscc)
    r = client.post(f"/portal/labs/bookings/{done.pk}/rate/", {"rating": "satisfied"}, follow=True)
    assert "检测完成" in r.content.decode() and not Booking.objects.get(pk=done.pk).rating
    for booking in (done, other):  # both tested a week ago
        Booking.objects.filter(pk=booking.pk).update(start=start - dt.timedelta(days=7), end=start - dt.timedelta(days=7))
        booking.refresh_from_db()
        actions.do_record_batch(booking, timezone.localtime(booking.start).date(), "尺寸", 1, f"R-{booking.pk}", "pass")
    page = client.get("/portal/labs/").content.decode()
    assert f'action="/portal/labs/bookings/{done.pk}/rate/"' in page
    assert client.post(f"/portal/labs/bookings/{other.pk}/rate/", {"rating": "satisfied"}).status_code == 404
    r = client.post(f"/portal/labs/bookings/{done.pk}/rate/", {"rating": "dissatisfied"}, follow=True)
    assert "写明哪里做得不好" in r.content.decode()
    client.post(f"/portal/labs/bookings/{done.pk}/rate/", {"rating": "dissatisfied", "comment": "报告出具太慢"})
    done.refresh_from_db()
    assert (done.rating, done.rating_comment) == ("dissatisfied", "报告出具太慢") and done.rated_at is not None
    with pytest.raises(actions.LabActionError, match="已经评价过"):
        actions.do_rate(done, "satisfied")
    assert "已评价：不满意" in client.get("/portal/labs/").content.decode()
    actions.do_rate(other, "basically")
    admin = staff(county, "admin")
    lab = admin.get(f"/labs/{inst.lab.code}/").content.decode()
    assert "不满意</span>：报告出具太慢" in lab[lab.index('id="lab-recent"'):]
    overview = admin.get("/labs/").content.decode()
    assert 'id="tile-satisfaction">50.0%</b>' in overview and "企业满意度（2 条评价）" in overview
    home = admin.get("/").content.decode()
    assert "企业满意度 50.0%（2 条评价，不满意 1 条，" in home and "待回访 1 条" in home[home.index('id="labs-panel"'):]
    # staff follow the 不满意 up (差评回访), once; a good rating needs none
    r = admin.post(f"/labs/bookings/{done.pk}/act/", {"action": "callback", "note": ""}, follow=True)
    assert "请写明回访情况" in r.content.decode()
    admin.post(f"/labs/bookings/{done.pk}/act/", {"action": "callback", "note": "已核实：报告延误两天，实验室已调整出具流程"})
    done.refresh_from_db()
    assert done.callback_note.startswith("已核实") and done.callback_by == county["users"]["admin"]
    home = admin.get("/").content.decode()
    assert "待回访" not in home[home.index('id="labs-panel"'):].split("</section>")[0]
    assert "回访 " in admin.get(f"/labs/{inst.lab.code}/").content.decode()
    page = admin.get(f"/entities/{a.uscc}/").content.decode()  # 一企一档
    assert "评价：不满意（已回访）" in page[page.index('id="labs"'):]
    for booking, why in ((done, "已经回访过"), (other, "只有“不满意”")):
        with pytest.raises(actions.LabActionError, match=why):
            actions.do_callback(booking, "再回访一次")


CONCURRENT = r"""
import datetime as dt, os, threading, time, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db
db.ensure_ready()
from decimal import Decimal
from django.db import connection
from django.utils import timezone
from qifu.registry.models import Entity, Township
from qifu.labs.models import Booking, BookedSlot, Instrument, Lab, Voucher
from qifu.labs import actions

town = Township.objects.first()
now = timezone.now()
lab = Lab.objects.create(code="L1", name="测试实验室", owner_kind="public", owner_name="检测站", town=town,
                         opens=dt.time(8), closes=dt.time(20), open_days="1234567", updated_at=now)
inst = Instrument.objects.create(lab=lab, code="I1", name="盐雾箱", price_per_hour=Decimal("100"), slot_minutes=60)
firms = [Entity.objects.create(uscc=f"91330282MA{i:08d}", name=f"企业{i}", entity_type="enterprise", town=town,
                               established_on=dt.date(2020, 1, 1), status="active", imported_at=now) for i in range(10)]
day = timezone.localdate() + dt.timedelta(days=3)
while actions.holiday(day):
    day += dt.timedelta(days=1)
starts = actions.day_slots(inst, day)[:5]
# one firm's voucher of 120 yuan pays half of each 100-yuan slot: 50 + 50 + 20 and no more
actions.do_grant_voucher(firms[0], day.year, "120")
outcomes, lock = [], threading.Lock()

def go(firm, start):
    try:
        actions.do_book(Entity.objects.get(pk=firm.pk), inst, start, 1, "盐雾试验")
        r = "won"
    except actions.SlotTaken:
        r = "taken"
    finally:
        connection.close()
    with lock:
        outcomes.append(r)

# fifty requests at once: ten firms for each of five slots
threads = [threading.Thread(target=go, args=(f, s)) for s in starts for f in firms]
for t in threads: t.start()
for t in threads: t.join()
per_slot = sorted(BookedSlot.objects.filter(active=True).values_list("start", flat=True))
v = Voucher.objects.get()
print(outcomes.count("won"), outcomes.count("taken"), len(per_slot), len(set(per_slot)), actions.voucher_used(v))

# the voucher alone: one firm books the other slots of the day at once
rest = actions.day_slots(inst, day)[5:]
threads = [threading.Thread(target=go, args=(firms[0], s)) for s in rest]
for t in threads: t.start()
for t in threads: t.join()
print(actions.voucher_used(Voucher.objects.get()))
"""


def test_fifty_concurrent_requests_for_five_slots_give_exactly_one_winner_each(process_env):
    out = subprocess.run([sys.executable, "-c", CONCURRENT], env=process_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = out.stdout.strip().splitlines()
    won, taken, held, distinct, used = first.split()
    assert (int(won), int(taken), int(held), int(distinct)) == (5, 45, 5, 5), out.stdout
    assert Decimal(used) <= Decimal(120)
    assert Decimal(second) == Decimal(120)  # the voucher is spent to the yuan and not beyond


# --- pages, portal and API ------------------------------------------------------------------


def staff(county, name: str) -> Client:
    c = Client()
    c.force_login(county["users"][name])
    return c


def test_staff_see_their_townships_bookings_and_export_them(county):
    inst = instrument()
    mine, other = firms(1, county["own_town"])[0], firms(1, county["other_town"])[0]
    start = first_slot(inst)
    actions.do_book(mine, inst, start, 1, "本镇企业检测")
    actions.do_book(other, inst, start + dt.timedelta(minutes=inst.slot_minutes), 1, "外镇企业检测")
    page = staff(county, "admin").get(f"/labs/{inst.lab.code}/")
    assert page.status_code == 200 and "本镇企业检测" in page.content.decode() and "外镇企业检测" in page.content.decode()
    page = staff(county, "officer").get(f"/labs/{inst.lab.code}/")
    assert "本镇企业检测" in page.content.decode() and "外镇企业检测" not in page.content.decode()
    overview = staff(county, "officer").get("/labs/")
    assert overview.status_code == 200 and "chart-batches-labs" in overview.content.decode()
    x = staff(county, "officer").get("/labs/?format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(x.content))["仪器预约"]
    assert [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)] == [mine.uscc]
    assert AuditEvent.objects.filter(user=county["users"]["officer"], action="export").exists()
    # the officer cannot act on another township's booking; the leader cannot act at all
    theirs = Booking.objects.get(entity=other)
    assert staff(county, "officer").post(f"/labs/bookings/{theirs.pk}/act/", {"action": "cancel", "reason": "测试"}).status_code == 404
    # the lab cancels the officer's firm's booking: the firm is told why
    from qifu.reminders.models import OutboxMessage

    Entity.objects.filter(pk=mine.pk).update(phone="13905740035")
    ours = Booking.objects.get(entity=mine)
    staff(county, "officer").post(f"/labs/bookings/{ours.pk}/act/", {"action": "cancel", "reason": "设备突发故障"})
    assert Booking.objects.get(pk=ours.pk).status == "cancelled"
    told = OutboxMessage.objects.get(key=f"lab-cancelled:{ours.pk}")
    assert told.recipient == "13905740035" and "设备突发故障" in told.body
    assert staff(county, "leader").post(f"/labs/bookings/{theirs.pk}/act/", {"action": "cancel", "reason": "测试"}).status_code == 403
    # the entity page and the dashboard show it
    assert "本镇企业检测" in staff(county, "officer").get(f"/entities/{mine.uscc}/").content.decode()
    assert 'id="labs-panel"' in staff(county, "admin").get("/").content.decode()


def test_staff_record_a_batch_and_grant_vouchers(county, data_dir):
    inst = instrument()
    firm = firms(1, county["own_town"])[0]
    start = first_slot(inst)
    b = actions.do_book(firm, inst, start, 1, "检测", now=start - dt.timedelta(days=9))
    Booking.objects.filter(pk=b.pk).update(start=start - dt.timedelta(days=7), end=start - dt.timedelta(days=7))
    day = timezone.localtime(start - dt.timedelta(days=7)).date()
    c = staff(county, "officer")
    assert "已过预约时间，待登记检测" in c.get(f"/labs/{inst.lab.code}/").content.decode()  # its time is past
    assert '<b id="tile-unrecorded">1</b>' in c.get("/labs/").content.decode()
    assert "已过时间待登记检测 1 次" in c.get("/").content.decode()
    r = c.post(f"/labs/bookings/{b.pk}/act/", {"action": "batch", "tested_on": day.isoformat(), "items": "盐雾 48h",
                                                "samples": "3", "report_no": "R-9", "conclusion": "pass",
                                                "report": SimpleUploadedFile("a.txt", b"not a pdf")})
    assert r.status_code == 302 and not Batch.objects.exists()  # not a PDF by its content: nothing stored
    r = c.post(f"/labs/bookings/{b.pk}/act/", {"action": "batch", "tested_on": day.isoformat(), "items": "盐雾 48h",
                                                "samples": "3", "report_no": "R-9", "conclusion": "pass",
                                                "report": SimpleUploadedFile("r.pdf", PDF)})
    batch = Batch.objects.get()
    assert batch.samples == 3 and c.get(f"/labs/batches/{batch.pk}/report/").status_code == 200
    assert "已过预约时间" not in c.get(f"/labs/{inst.lab.code}/").content.decode()  # recorded: done
    assert '<b id="tile-unrecorded">0</b>' in c.get("/labs/").content.decode()
    # only an administrator grants vouchers
    assert c.post("/labs/vouchers/", {"uscc": firm.uscc, "budget": "5000"}).status_code == 403
    staff(county, "admin").post("/labs/vouchers/", {"uscc": firm.uscc, "budget": "5000", "share": "0.4"})
    assert Voucher.objects.get(entity=firm).budget == Decimal(5000)


def test_staff_book_for_a_firm_that_calls_and_put_it_on_the_waiting_list_when_full(county):
    from qifu.reminders.models import OutboxMessage

    inst = instrument()
    mine, second, other = *firms(2, county["own_town"]), firms(1, county["other_town"])[0]
    Entity.objects.filter(pk__in=[mine.pk, second.pk]).update(phone="13905740022")
    start = first_slot(inst)
    local = timezone.localtime(start)
    form = {"uscc": mine.uscc, "instrument": str(inst.pk), "day": f"{local:%Y-%m-%d}", "time": f"{local:%H:%M}",
            "slots": "1", "purpose": "电话代约：外径测量", "wait": "yes"}
    officer = staff(county, "officer")
    assert 'id="lab-book-for"' in officer.get(f"/labs/{inst.lab.code}/").content.decode()
    r = officer.post(f"/labs/{inst.lab.code}/book/", form, follow=True)
    b = Booking.objects.get(entity=mine)
    assert (b.channel, b.booked_by, b.start, b.purpose) == ("staff", county["users"]["officer"], start, "电话代约：外径测量")
    assert "已为" in r.content.decode()
    told = OutboxMessage.objects.get(key=f"lab-booked:{b.pk}")
    assert (told.recipient, told.purpose) == ("13905740022", "lab") and "工作人员已为您预约" in told.body
    # the slot is full now: without the box ticked nothing is made; with it, the firm waits
    r = officer.post(f"/labs/{inst.lab.code}/book/", {**form, "uscc": second.uscc, "wait": ""}, follow=True)
    assert "已被预约" in r.content.decode() and not Waiting.objects.exists()
    r = officer.post(f"/labs/{inst.lab.code}/book/", {**form, "uscc": "有限公司"}, follow=True)  # many firms
    assert "不止一家" in r.content.decode() and not Waiting.objects.exists()
    # a caller gives the firm's name: found when exactly one firm the officer sees has it
    assert Entity.objects.filter(town=county["own_town"], name__contains=second.name).count() == 1
    officer.post(f"/labs/{inst.lab.code}/book/", {**form, "uscc": second.name})
    w = Waiting.objects.get(entity=second)
    assert w.created_by == county["users"]["officer"] and w.status == "waiting"
    assert "登记候补" in OutboxMessage.objects.get(key=f"lab-waiting-made:{w.pk}").body
    # when the slot frees, the wait is booked as the staff member's booking, and the firm told
    actions.do_cancel(b)
    w.refresh_from_db()
    assert (w.status, w.booking.channel, w.booking.booked_by) == ("booked", "staff", county["users"]["officer"])
    # another township's firm, an instrument of another lab, bad input, a leader: nothing made
    later = timezone.localtime(start + dt.timedelta(minutes=inst.slot_minutes))
    elsewhere = Instrument.objects.exclude(lab=inst.lab).first()
    assert officer.post(f"/labs/{inst.lab.code}/book/", {**form, "time": f"{later:%H:%M}", "uscc": other.uscc}).status_code == 403
    # a firm no text or e-mail reaches: booked, and the staff member is asked to tell it
    silent = firms(3, county["own_town"])[2]
    Entity.objects.filter(pk=silent.pk).update(phone=None, email=None)
    r = officer.post(f"/labs/{inst.lab.code}/book/", {**form, "time": f"{later:%H:%M}", "uscc": silent.uscc}, follow=True)
    booked = Booking.objects.get(entity=silent)
    assert "请当面或电话告知" in r.content.decode() and not OutboxMessage.objects.filter(key=f"lab-booked:{booked.pk}").exists()
    actions.do_cancel(booked)
    before = (Booking.objects.count(), Waiting.objects.count())
    for bad in ({"uscc": "91330282XXXXXXXXXX"}, {"uscc": other.name}, {"instrument": str(elsewhere.pk)}, {"day": "下周二"}, {"time": "9点"},
                {"purpose": "x"}, {"time": "03:00"}):
        r = officer.post(f"/labs/{inst.lab.code}/book/", {**form, "time": f"{later:%H:%M}", **bad}, follow=True)
        assert r.status_code == 200 and '<li class="error"' in r.content.decode(), bad
    assert (Booking.objects.count(), Waiting.objects.count()) == before
    # what was refused comes back filled in, the form open, once; otherwise the form is folded
    page = officer.post(f"/labs/{inst.lab.code}/book/", {**form, "uscc": silent.uscc, "time": "9点", "purpose": "代约：硬度<测试>",
                                                         "voucher": "no"}, follow=True).content.decode()
    folded = page[page.index('id="lab-book-for"'):page.index('id="lab-upcoming"')]
    assert "<details open>" in folded and f'value="{silent.uscc}"' in folded and 'value="9点"' in folded
    assert 'value="代约：硬度&lt;测试&gt;"' in folded and 'value="no" checked' in folded
    assert f'<option value="{inst.pk}" selected>' in folded
    again = officer.get(f"/labs/{inst.lab.code}/").content.decode()
    assert "<details>" in again[again.index('id="lab-book-for"'):] and 'value="9点"' not in again
    officer.post(f"/labs/{inst.lab.code}/book/", {**form, "time": "9点"})  # refused here, then another lab opened
    assert 'value="9点"' not in officer.get(f"/labs/{elsewhere.lab.code}/").content.decode()
    assert staff(county, "leader").post(f"/labs/{inst.lab.code}/book/", form).status_code == 403


def test_the_portal_searches_books_and_cancels(county):
    inst = instrument()
    firm = firms(1)[0]
    actions.do_grant_voucher(firm, open_day(inst.lab).year, "1000")
    anonymous = Client().get("/portal/labs/", {"q": "盐雾"})
    assert anonymous.status_code == 200 and "中性盐雾试验箱" in anonymous.content.decode()
    c = portal_client(firm.uscc)
    page = c.get(f"/portal/labs/instruments/{inst.pk}/", {"day": open_day(inst.lab).isoformat()})
    assert page.status_code == 200 and "可预约时段" in page.content.decode()
    start = first_slot(inst)
    r = c.post(f"/portal/labs/instruments/{inst.pk}/book/", {"start": start.isoformat(), "slots": "1",
                                                             "purpose": "零件尺寸测量"}, follow=True)
    assert "已预约" in r.content.decode()
    b = Booking.objects.get(entity=firm)
    assert b.voucher_amount == (b.price / 2).quantize(Decimal("0.01"))
    assert inst.name in c.get("/portal/").content.decode()  # on the firm's home page until it is used
    other = portal_client(firms(2)[1].uscc)
    r = other.post(f"/portal/labs/instruments/{inst.pk}/book/", {"start": start.isoformat(), "slots": "1",
                                                                 "purpose": "零件尺寸测量"}, follow=True)
    assert "已被预约" in r.content.decode() and Booking.objects.count() == 1
    assert other.post(f"/portal/labs/bookings/{b.pk}/cancel/").status_code == 404  # not theirs
    c.post(f"/portal/labs/bookings/{b.pk}/cancel/")
    assert Booking.objects.get(pk=b.pk).status == "cancelled"
    # a NUL in a form field or a parameter (PostgreSQL can store neither): refused, nothing booked
    r = c.post(f"/portal/labs/instruments/{inst.pk}/book/", {"start": start.isoformat(), "slots": "1",
                                                             "purpose": "零件\x00尺寸测量"})
    assert r.status_code == 400 and "purpose 含有空字符" in r.content.decode()
    assert Booking.objects.count() == 1
    assert c.get("/portal/labs/", {"q": "盐雾\x00"}).status_code == 400
    # the slot is full for another firm: it waits in the portal, sees it, and withdraws
    b = actions.do_book(firm, inst, start, 1, "零件尺寸测量")
    page = other.get(f"/portal/labs/instruments/{inst.pk}/", {"day": start.date().isoformat()}).content.decode()
    wait_form = page[page.index('id="lab-wait"'):]
    assert f'value="{timezone.localtime(start).isoformat()}"' in wait_form
    r = other.post(f"/portal/labs/instruments/{inst.pk}/wait/", {"start": start.isoformat(), "slots": "1",
                                                                 "purpose": "零件尺寸测量"}, follow=True)
    assert "已候补" in r.content.decode() and 'id="lab-waiting"' in r.content.decode()
    w = Waiting.objects.get(entity=firms(2)[1])
    assert c.post(f"/portal/labs/waiting/{w.pk}/withdraw/").status_code == 404  # not theirs
    r = other.post(f"/portal/labs/waiting/{w.pk}/withdraw/", follow=True)
    assert "已撤回候补" in r.content.decode() and Waiting.objects.get(pk=w.pk).status == "withdrawn"
    assert c.get("/portal/labs/instruments/%00/").status_code == 404


def test_a_cached_instrument_only_refuses_and_a_booking_is_judged_on_the_database(county):
    """The booking API reads instruments from a per-process copy; the copy may refuse a slot
    already held, but a change in the database since it was read is what a booking is made on."""
    inst = instrument()
    a, b, c = firms(3)
    start = first_slot(inst)
    csrf = {"HTTP_X_CSRFTOKEN": "x"}
    body = {"instrument_id": inst.pk, "start": start.isoformat(), "slots": 1, "purpose": "尺寸测量"}
    stale = actions.bookable(inst.pk)
    assert actions.bookable(inst.pk) is stale  # kept between requests
    Instrument.objects.filter(pk=inst.pk).update(price_per_hour=stale.price_per_hour * 2)
    r = portal_client(a.uscc).post("/api/v1/labs/bookings", body, content_type="application/json", **csrf)
    assert r.status_code == 201, r.content
    assert Decimal(r.json()["price"]) == actions.price_of(Instrument.objects.get(pk=inst.pk), 1) != \
        actions.price_of(stale, 1)
    assert actions.bookable(inst.pk) is not stale  # the change seen, the copy read again
    r = portal_client(b.uscc).post("/api/v1/labs/bookings", body, content_type="application/json", **csrf)
    assert r.status_code == 409
    # the lab closes after its copy was read: no booking, and the reason is the closing
    stale = actions.bookable(inst.pk)
    Lab.objects.filter(pk=inst.lab_id).update(active=False)
    later = {**body, "start": actions.day_slots(inst, open_day(inst.lab, 10))[0].isoformat()}
    r = portal_client(c.uscc).post("/api/v1/labs/bookings", later, content_type="application/json", **csrf)
    assert r.status_code == 400 and "暂不开放" in r.json()["detail"]
    # and the other way: a copy that says closed does not refuse a lab that has opened again
    assert actions.bookable(inst.pk).lab.active is False
    Lab.objects.filter(pk=inst.lab_id).update(active=True)
    r = portal_client(c.uscc).post("/api/v1/labs/bookings", later, content_type="application/json", **csrf)
    assert r.status_code == 201, r.content
    assert Booking.objects.filter(instrument=inst).count() == 2 and stale.lab.active


def test_the_api_books_once_per_slot(county):
    inst = instrument()
    a, b = firms(2)
    start = first_slot(inst)
    csrf = {"HTTP_X_CSRFTOKEN": "x"}
    ca, cb = portal_client(a.uscc), portal_client(b.uscc)
    assert Client().get("/api/v1/labs/instruments").status_code == 401
    found = ca.get("/api/v1/labs/instruments", {"q": "三坐标 尺寸"}).json()
    assert found[0]["name"] == "三坐标测量机" and "尺寸" in found[0]["matched"]
    slots = ca.get(f"/api/v1/labs/instruments/{inst.pk}/slots", {"day": timezone.localtime(start).date().isoformat()}).json()
    assert slots[0]["free"] == inst.units
    body = {"instrument_id": inst.pk, "start": start.isoformat(), "slots": 1, "purpose": "尺寸测量"}
    r = ca.post("/api/v1/labs/bookings", body, content_type="application/json", **csrf)
    assert r.status_code == 201, r.content
    r = cb.post("/api/v1/labs/bookings", body, content_type="application/json", **csrf)
    assert r.status_code == 409 and "已被预约" in r.json()["detail"]
    r = cb.post("/api/v1/labs/bookings", {**body, "start": (start + dt.timedelta(minutes=1)).isoformat()},
                content_type="application/json", **csrf)
    assert r.status_code == 400
    # the other firm waits for the full slot, and is booked on it when it frees
    assert cb.post("/api/v1/labs/waiting", {**body, "slots": 0}, content_type="application/json", **csrf).status_code == 422
    r = cb.post("/api/v1/labs/waiting", {**body, "purpose": "外径测量"}, content_type="application/json", **csrf)
    assert r.status_code == 201 and r.json()["status"] == "waiting", r.content
    again = cb.post("/api/v1/labs/waiting", body, content_type="application/json", **csrf)
    assert again.status_code == 400 and "已在候补" in again.json()["detail"]
    booking = ca.get("/api/v1/labs/bookings").json()[0]
    assert cb.post(f"/api/v1/labs/bookings/{booking['id']}/cancel", **csrf).status_code == 404
    assert ca.post(f"/api/v1/labs/bookings/{booking['id']}/cancel", **csrf).json()["status"] == "cancelled"
    waited = cb.get("/api/v1/labs/waiting").json()[0]
    assert waited["status"] == "booked" and waited["booking_id"] == cb.get("/api/v1/labs/bookings").json()[0]["id"]
    assert ca.get("/api/v1/labs/waiting").json() == []
    assert ca.post(f"/api/v1/labs/waiting/{waited['id']}/withdraw", **csrf).status_code == 404  # not theirs
    r = cb.post(f"/api/v1/labs/waiting/{waited['id']}/withdraw", **csrf)
    assert r.status_code == 400 and "不能撤回" in r.json()["detail"]
    assert ca.get("/api/v1/labs/voucher").status_code == 404


def test_the_assistant_knows_the_instruments_and_how_to_book(county):
    from qifu.assistant import actions as assistant

    answer, handoff = assistant.ask("家电电磁兼容测试哪里可以做")
    assert handoff is None and answer.entry_id == "instrument-电磁兼容测试系统", answer.entry_id
    lab = Instrument.objects.filter(name="电磁兼容测试系统").select_related("lab").first().lab
    assert lab.name in answer.answer
    answer, _ = assistant.ask("仪器的时段都约满了，能候补吗")
    assert answer.entry_id == "labs_booking" and "候补" in answer.answer
    answer, _ = assistant.ask("创新券还剩多少")
    assert answer.entry_id == "labs_voucher"


# --- send-in test orders (送检) -----------------------------------------------------------------


def order_form(for_lab: Lab, **changes) -> dict:
    return {"lab": str(for_lab.pk), "sample_name": "空调压缩机支架 ZJ-3", "samples": "3", "items": "中性盐雾 48 小时",
            "standard": "GB/T 10125-2021", "after_test": "return", **changes}


def test_a_send_in_order_goes_from_the_firm_to_a_report_a_second_person_signed_off(county, data_dir):
    from qifu.reminders.models import OutboxMessage

    lab = Lab.objects.filter(voucher_ok=True, active=True).order_by("code").first()
    firm, other_firm = firms(2, county["own_town"])
    Entity.objects.filter(pk=firm.pk).update(phone="13905740031")
    actions.do_grant_voucher(firm, timezone.localdate().year, "100", "0.5")
    c = portal_client(firm.uscc)
    assert 'id="lab-orders"' in c.get("/portal/labs/").content.decode()
    # bad input: each refused with its reason, nothing stored
    for bad in ({"samples": "三件"}, {"samples": "0"}, {"items": "x"}, {"sample_name": ""}, {"after_test": "扔掉"},
                {"lab": "999999"}):
        r = c.post("/portal/labs/orders/", order_form(lab, **bad), follow=True)
        assert '<li class="error"' in r.content.decode(), bad
    assert not SampleOrder.objects.exists()
    r = c.post("/portal/labs/orders/", order_form(lab), follow=True)
    o = SampleOrder.objects.get()
    assert "已登记送检" in r.content.decode() and (o.status, o.entity, o.samples, o.channel) == ("submitted", firm, 3, "portal")
    # the lab receives it: the price is fixed and the voucher pays its share, never more than is left
    officer, admin = staff(county, "officer"), staff(county, "admin")
    page = officer.get(f"/labs/{lab.code}/").content.decode()
    assert f'href="/labs/orders/{o.pk}/"' in page[page.index('id="lab-orders"'):]
    r = officer.post(f"/labs/orders/{o.pk}/act/", {"action": "receive", "condition": "包装完好，数量相符", "price": "三百"},
                     follow=True)
    assert "不是金额" in r.content.decode() and SampleOrder.objects.get().status == "submitted"
    officer.post(f"/labs/orders/{o.pk}/act/", {"action": "receive", "condition": "包装完好，数量相符", "price": "300"})
    o.refresh_from_db()
    assert (o.status, o.price, o.voucher_amount, o.to_pay) == ("testing", Decimal(300), Decimal(100), Decimal(200))
    assert actions.voucher_used(Voucher.objects.get(entity=firm)) == Decimal(100)
    told = OutboxMessage.objects.get(key=f"lab-order-received:{o.pk}")
    assert told.recipient == "13905740031" and "创新券抵扣 100" in told.body and "包装完好" in told.body
    # received: the firm cannot withdraw it any more
    r = c.post(f"/portal/labs/orders/{o.pk}/withdraw/", follow=True)
    assert "收样后不能撤回" in r.content.decode() and SampleOrder.objects.get().status == "testing"
    # the result needs a PDF report; then a second person signs it off
    form = {"action": "result", "tested_on": timezone.localdate().isoformat(), "report_no": "SY-2026-001",
            "conclusion": "pass"}
    officer.post(f"/labs/orders/{o.pk}/act/", {**form, "report": SimpleUploadedFile("r.txt", b"not a pdf")})
    assert SampleOrder.objects.get().status == "testing"
    officer.post(f"/labs/orders/{o.pk}/act/", {**form, "report": SimpleUploadedFile("r.pdf", PDF)})
    assert SampleOrder.objects.get().status == "review"
    assert c.get(f"/portal/labs/orders/{o.pk}/report/").status_code == 404  # a draft is not the firm's yet
    assert "须由另一人审核" in officer.get(f"/labs/orders/{o.pk}/").content.decode()
    r = officer.post(f"/labs/orders/{o.pk}/act/", {"action": "approve"}, follow=True)
    assert "另一人" in r.content.decode() and SampleOrder.objects.get().status == "review" and not Batch.objects.exists()
    admin.post(f"/labs/orders/{o.pk}/act/", {"action": "approve", "note": "数据复核无误"})
    o.refresh_from_db()
    batch = Batch.objects.get()
    assert (o.status, o.batch, o.verified_by, len(o.verify_code)) == ("issued", batch, county["users"]["admin"], 10)
    assert (batch.lab, batch.entity, batch.report_no, batch.samples, batch.recorded_by) == (
        lab, firm, "SY-2026-001", 3, county["users"]["officer"])
    assert o.verify_code in OutboxMessage.objects.get(key=f"lab-order-issued:{o.pk}").body
    assert [e.action for e in o.events.all()] == ["submitted", "received", "tested", "issued"]
    # the firm downloads it; another firm cannot; anyone checks it by its number and code
    assert b"".join(c.get(f"/portal/labs/orders/{o.pk}/report/").streaming_content) == PDF
    assert portal_client(other_firm.uscc).get(f"/portal/labs/orders/{o.pk}/report/").status_code == 404
    page = Client().get("/portal/labs/verify/", {"report_no": "SY-2026-001", "code": o.verify_code.lower()}).content.decode()
    assert "查验通过" in page and firm.name in page and "合格" in page
    wrong = ("A" if o.verify_code[0] != "A" else "B") + o.verify_code[1:]
    page = Client().get("/portal/labs/verify/", {"report_no": "SY-2026-001", "code": wrong}).content.decode()
    assert "未查到" in page and firm.name not in page
    # the firm rates the service once; a 不满意 says why, and staff call back
    r = c.post(f"/portal/labs/orders/{o.pk}/rate/", {"rating": "dissatisfied"}, follow=True)
    assert "写明哪里做得不好" in r.content.decode() and not SampleOrder.objects.get().rating
    c.post(f"/portal/labs/orders/{o.pk}/rate/", {"rating": "dissatisfied", "comment": "报告晚了一周"})
    r = c.post(f"/portal/labs/orders/{o.pk}/rate/", {"rating": "satisfied"}, follow=True)
    assert "已经评价过" in r.content.decode() and SampleOrder.objects.get().rating == "dissatisfied"
    assert '<b id="tile-satisfaction">0.0%</b>' in officer.get("/labs/").content.decode()
    assert "待回访 1 条" in officer.get("/").content.decode()
    officer.post(f"/labs/orders/{o.pk}/act/", {"action": "callback", "note": "实验室设备检修延误，已致歉"})
    assert SampleOrder.objects.get().callback_by == county["users"]["officer"]
    assert "待回访 1 条" not in officer.get("/").content.decode()
    # the samples are still at the lab: listed until they go back as the firm asked, saying how
    page = officer.get(f"/labs/{lab.code}/").content.decode()
    assert 'id="lab-held-samples"' in page and f'href="/labs/orders/{o.pk}/"' in page[page.index('id="lab-held-samples"'):]
    assert "样品待退回或处置 1 份" in officer.get("/").content.decode()
    assert "样品待退回" in c.get("/portal/labs/").content.decode()
    r = officer.post(f"/labs/orders/{o.pk}/act/", {"action": "samples_out", "note": ""}, follow=True)
    assert "请写明怎样退回的" in r.content.decode() and SampleOrder.objects.get().samples_out_at is None
    officer.post(f"/labs/orders/{o.pk}/act/", {"action": "samples_out", "note": "顺丰快递 SF1234567890"})
    o.refresh_from_db()
    assert o.samples_out_note == "顺丰快递 SF1234567890" and o.samples_out_at is not None and not o.samples_held
    back = OutboxMessage.objects.get(key=f"lab-order-back:{o.pk}")
    assert back.recipient == "13905740031" and "SF1234567890" in back.body and o.sample_name in back.body
    with pytest.raises(actions.LabActionError, match="样品已于"):
        actions.do_samples_out(o, "再退一次")
    assert 'id="lab-held-samples"' not in officer.get(f"/labs/{lab.code}/").content.decode()
    assert "退回企业：顺丰快递 SF1234567890" in c.get("/portal/labs/").content.decode()
    assert "顺丰快递 SF1234567890" in officer.get(f"/labs/orders/{o.pk}/").content.decode()
    # the measures, the dashboard, the firm's page and the workbook
    assert '<b id="tile-batches">1</b>' in officer.get("/labs/").content.decode()
    assert "送检" in officer.get(f"/entities/{firm.uscc}/").content.decode()
    book = openpyxl.load_workbook(io.BytesIO(officer.get("/labs/?format=xlsx").content))
    rows = list(book["送检"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[1], r[10], r[15], r[18], r[20], r[22], r[24]) for r in rows] == [
        (o.pk, firm.uscc, "已出报告", "SY-2026-001", "退回企业", "顺丰快递 SF1234567890", "不满意", "实验室设备检修延误，已致歉")]
    assert [r[2] for r in book["送检流转记录"].iter_rows(min_row=2, values_only=True)] == ["委托送检", "收样", "录入检测结果",
                                                                                    "审核签发报告", "样品退回企业"]


def test_a_lab_refuses_samples_sends_a_result_back_and_a_firm_withdraws_before_receipt(county, data_dir):
    lab = Lab.objects.filter(active=True).order_by("code").first()
    firm = firms(1, county["own_town"])[0]
    a, b = county["users"]["officer"], county["users"]["admin"]
    report = ("r.pdf", "application/pdf", PDF)
    # refused at receipt, with the reason the firm is told
    o = actions.do_order(firm, lab, "电机外壳", 2, "防护等级 IP54")
    with pytest.raises(actions.LabActionError, match="拒收原因"):
        actions.do_reject(o, "", by=a)
    actions.do_reject(o, "样品外壳破损，无法检测", by=a)
    o.refresh_from_db()
    assert (o.status, o.closed_reason) == ("rejected", "样品外壳破损，无法检测")
    with pytest.raises(actions.LabActionError, match="只有待收样"):
        actions.do_receive(o, "完好", "100", by=a)
    # withdrawn by the firm before receipt
    o = actions.do_order(firm, lab, "电机外壳", 2, "防护等级 IP54")
    r = portal_client(firm.uscc).post(f"/portal/labs/orders/{o.pk}/withdraw/", follow=True)
    assert "已撤回" in r.content.decode() and SampleOrder.objects.get(pk=o.pk).status == "withdrawn"
    # sent back by the reviewer: tested again, the report number free again
    o = actions.do_order(firm, lab, "电机外壳", 2, "防护等级 IP54", use_voucher=False)
    actions.do_receive(o, "完好", "80.5", by=a)
    actions.do_result(o, timezone.localdate(), "fail", "IP-7", report, by=a)
    with pytest.raises(actions.LabActionError, match="写明原因"):
        actions.do_review(o, False, "", by=b)
    actions.do_review(o, False, "试验时间不足，重做", by=b)
    o.refresh_from_db()
    assert (o.status, o.report_no, o.tested_by, o.report_sha256) == ("testing", "", None, "")
    assert [e.action for e in o.events.all()][-2:] == ["tested", "returned"]
    actions.do_result(o, timezone.localdate(), "pass", "IP-7", report, by=b)
    actions.do_review(o, True, by=a)  # the other person this time
    assert SampleOrder.objects.get(pk=o.pk).status == "issued" and o.voucher_amount == 0
    # a report number the lab has used is refused
    again = actions.do_order(firm, lab, "电机外壳", 1, "防护等级 IP55")
    actions.do_receive(again, "完好", "80", by=a)
    with pytest.raises(actions.LabActionError, match="已在本实验室使用过"):
        actions.do_result(again, timezone.localdate(), "pass", "IP-7", report, by=a)
    with pytest.raises(actions.LabActionError, match="检测日期"):
        actions.do_result(again, timezone.localdate() + dt.timedelta(days=1), "pass", "IP-8", report, by=a)
    assert SampleOrder.objects.get(pk=again.pk).status == "testing"
    # the firm's home lists what is still with the lab and a report to download and rate, not
    # the refused or withdrawn ones; a rated report drops off
    c = portal_client(firm.uscc)
    home = c.get("/portal/").content.decode()
    todo = home[home.index('id="home-todo"'):]
    assert f'id="home-order-{again.pk}"' in todo and "检测中" in todo
    assert f'id="home-order-{o.pk}"' in todo and "报告已出" in todo
    assert sorted(p for p in SampleOrder.objects.filter(entity=firm).values_list("pk", flat=True)
                  if f'id="home-order-{p}"' in todo) == sorted([o.pk, again.pk])
    c.post(f"/portal/labs/orders/{o.pk}/rate/", {"rating": "satisfied"})
    assert f'id="home-order-{o.pk}"' not in c.get("/portal/").content.decode()


def test_send_in_orders_keep_to_townships_and_staff_enter_one_for_a_firm(county):
    from qifu.reminders.models import OutboxMessage

    lab = Lab.objects.filter(active=True).order_by("code").first()
    mine, theirs = firms(1, county["own_town"])[0], firms(1, county["other_town"])[0]
    Entity.objects.filter(pk=mine.pk).update(phone="13905740032")
    other = actions.do_order(theirs, lab, "轴承套圈", 5, "硬度")
    officer = staff(county, "officer")
    assert officer.get(f"/labs/orders/{other.pk}/").status_code == 404
    assert officer.post(f"/labs/orders/{other.pk}/act/", {"action": "reject", "reason": "不收"}).status_code == 404
    assert staff(county, "leader").post(f"/labs/orders/{other.pk}/act/", {"action": "reject", "reason": "不收"}).status_code == 403
    assert "轴承套圈" not in officer.get(f"/labs/{lab.code}/").content.decode()
    assert SampleOrder.objects.get(pk=other.pk).status == "submitted"
    # a firm that calls: the officer enters its order, and it is told in writing
    r = officer.post(f"/labs/{lab.code}/orders/", {"uscc": mine.uscc, "sample_name": "注塑件", "samples": "4",
                                                   "items": "尺寸测量", "after_test": "dispose"}, follow=True)
    o = SampleOrder.objects.get(entity=mine)
    assert "已为" in r.content.decode() and (o.channel, o.created_by, o.after_test) == ("staff", county["users"]["officer"],
                                                                                       "dispose")
    assert "工作人员已为您" in OutboxMessage.objects.get(key=f"lab-order-made:{o.pk}").body
    r = officer.post(f"/labs/{lab.code}/orders/", {"uscc": theirs.uscc, "sample_name": "注塑件", "samples": "4",
                                                   "items": "尺寸测量"}, follow=True)
    assert SampleOrder.objects.filter(entity=theirs).count() == 1  # not the officer's township
    assert "送检待收样 1 份" in officer.get("/").content.decode()


def test_samples_the_firm_left_to_the_lab_are_disposed_of_without_a_message(county, data_dir):
    from qifu.reminders.models import OutboxMessage

    lab = Lab.objects.filter(active=True).order_by("code").first()
    firm, = firms(1, county["own_town"])
    officer, admin = county["users"]["officer"], county["users"]["admin"]
    o = actions.do_order(firm, lab, "注塑件", 4, "尺寸测量", after_test="dispose")
    with pytest.raises(actions.LabActionError, match="报告签发后"):
        actions.do_samples_out(o, "", by=officer)
    actions.do_receive(o, "完好", "80", by=officer)
    actions.do_result(o, timezone.localdate(), "pass", "SY-D-1", ("r.pdf", "application/pdf", PDF), by=officer)
    o = actions.do_review(o, True, by=admin)
    assert o.samples_held
    # kept through the lab's retention period (留样期), while the firm may ask for a re-test
    until = timezone.localdate(o.issued_at) + dt.timedelta(days=lab.retain_days)
    assert lab.retain_days > 0 and o.retain_until == until
    with pytest.raises(actions.LabActionError, match=f"留样期至 {until:%Y-%m-%d}"):
        actions.do_samples_out(o, "", by=officer, now=timezone.make_aware(dt.datetime.combine(until, dt.time(17))))
    page = Client()
    page.force_login(officer)
    assert 'id="order-retained"' in page.get(f"/labs/orders/{o.pk}/").content.decode()
    o = actions.do_samples_out(o, "", by=officer, now=timezone.make_aware(dt.datetime.combine(until, dt.time(17)))
                               + dt.timedelta(days=1))
    assert (o.samples_out_note, o.samples_held) == ("按委托约定由实验室处置", False)
    assert list(o.events.values_list("action", flat=True))[-1] == "disposed"
    assert not OutboxMessage.objects.filter(key=f"lab-order-back:{o.pk}").exists()
    listed = portal_client(firm.uscc).get("/api/v1/labs/orders").json()
    assert [(x["after_test"], x["samples_out_note"]) for x in listed] == [("dispose", "按委托约定由实验室处置")]
    assert listed[0]["samples_out_at"] is not None


def test_the_api_sends_samples_and_withdraws_an_order_not_yet_received(county):
    lab = Lab.objects.filter(active=True).order_by("code").first()
    a, b = firms(2)
    csrf = {"HTTP_X_CSRFTOKEN": "x"}
    ca, cb = portal_client(a.uscc), portal_client(b.uscc)
    body = {"lab_code": lab.code, "sample_name": "轴承套圈", "samples": 5, "items": "洛氏硬度"}
    assert ca.post("/api/v1/labs/orders", {**body, "samples": 0}, content_type="application/json", **csrf).status_code == 422
    assert ca.post("/api/v1/labs/orders", {**body, "lab_code": "没有"}, content_type="application/json", **csrf).status_code == 404
    r = ca.post("/api/v1/labs/orders", body, content_type="application/json", **csrf)
    assert r.status_code == 201 and r.json()["status"] == "submitted" and r.json()["price"] is None, r.content
    o = SampleOrder.objects.get()
    assert (o.channel, o.samples, o.after_test) == ("api", 5, "return")
    assert cb.get("/api/v1/labs/orders").json() == []
    assert cb.post(f"/api/v1/labs/orders/{o.pk}/withdraw", **csrf).status_code == 404  # not theirs
    actions.do_receive(o, "完好", "120", by=county["users"]["officer"])
    r = ca.post(f"/api/v1/labs/orders/{o.pk}/withdraw", **csrf)
    assert r.status_code == 400 and "收样后不能撤回" in r.json()["detail"]
    listed = ca.get("/api/v1/labs/orders").json()
    assert [(x["status"], x["price"], x["report_no"]) for x in listed] == [("testing", "120.00", None)]


# --- trained users (上机资格) ---------------------------------------------------------------------


def test_an_instrument_that_needs_training_is_booked_only_by_a_trained_firm(county):
    from qifu.labs.models import Qualification
    from qifu.reminders.models import OutboxMessage

    sem = Instrument.objects.filter(needs_training=True).select_related("lab").order_by("lab__code").first()
    assert sem is not None and sem.name == "扫描电子显微镜"
    assert not Instrument.objects.filter(needs_training=True).exclude(name="扫描电子显微镜").exists()
    firm, theirs = firms(1, county["own_town"])[0], firms(1, county["other_town"])[0]
    Entity.objects.filter(pk=firm.pk).update(phone="13905740033")
    start = first_slot(sem)
    with pytest.raises(actions.LabActionError, match="尚无上机资格.*送检"):
        actions.do_book(firm, sem, start, 1, "断口分析")
    c = portal_client(firm.uscc)
    page = c.get(f"/portal/labs/instruments/{sem.pk}/", {"day": start.date().isoformat()}).content.decode()
    assert "尚无上机资格" in page and 'id="lab-book"' not in page
    assert 'id="lab-book"' in c.get(f"/portal/labs/instruments/{instrument().pk}/").content.decode()  # no training needed
    # the lab's staff record the training; the firm is told and books
    officer = staff(county, "officer")
    page = officer.get(f"/labs/{sem.lab.code}/").content.decode()
    assert 'id="lab-qualifications"' in page and "需培训上机" in page
    until = timezone.localdate() + dt.timedelta(days=200)
    form = {"uscc": firm.uscc, "instrument": str(sem.pk), "until": until.isoformat(), "note": "2 人考核合格"}
    for bad in ({"until": "明年"}, {"until": timezone.localdate().isoformat()}, {"instrument": str(instrument().pk)}):
        r = officer.post(f"/labs/{sem.lab.code}/qualifications/", {**form, **bad}, follow=True)
        assert '<li class="error"' in r.content.decode() and not Qualification.objects.exists(), bad
    assert officer.post(f"/labs/{sem.lab.code}/qualifications/", {**form, "uscc": theirs.uscc}).status_code == 403
    assert staff(county, "leader").post(f"/labs/{sem.lab.code}/qualifications/", form).status_code == 403
    officer.post(f"/labs/{sem.lab.code}/qualifications/", form)
    q = Qualification.objects.get()
    assert (q.entity, q.until, q.granted_by) == (firm, until, county["users"]["officer"])
    told = OutboxMessage.objects.get(key__startswith=f"lab-qualified:{q.pk}:")
    assert told.recipient == "13905740033" and "上机资格" in told.body and f"{until:%Y-%m-%d}" in told.body
    assert 'id="lab-book"' in c.get(f"/portal/labs/instruments/{sem.pk}/").content.decode()
    b = actions.do_book(firm, sem, start, 1, "断口分析")
    # withdrawn: no more bookings (the one made stays); renewed: books again
    r = officer.post(f"/labs/qualifications/{q.pk}/revoke/", {"reason": "违规操作导致样品台污染"}, follow=True)
    assert "已撤销" in r.content.decode() and Qualification.objects.get().revoked_at is not None
    later = start + dt.timedelta(minutes=sem.slot_minutes)
    with pytest.raises(actions.LabActionError, match="上机资格已撤销"):
        actions.do_book(firm, sem, later, 1, "断口分析")
    assert Booking.objects.get(pk=b.pk).status == "booked"
    actions.do_qualify(firm, sem, until, "重新培训合格", by=county["users"]["officer"],
                       now=timezone.now() + dt.timedelta(minutes=1))  # the same day: told again
    assert OutboxMessage.objects.filter(key__startswith=f"lab-qualified:{q.pk}:").count() == 2
    assert actions.do_book(firm, sem, later, 1, "断口分析").status == "booked"
    # an expired qualification books no more either, nor does it wait
    Qualification.objects.update(until=timezone.localdate())
    with pytest.raises(actions.LabActionError, match="到期"):
        actions.do_book(firm, sem, later + dt.timedelta(minutes=sem.slot_minutes), 1, "断口分析")
    with pytest.raises(actions.LabActionError, match="上机资格"):
        actions.do_wait(firms(2, county["own_town"])[1], sem, start, 1, "断口分析")
    # another township's officer neither sees nor withdraws it
    q = Qualification.objects.get()
    from django.contrib.auth import get_user_model

    from qifu.accounts.models import StaffProfile

    user = get_user_model().objects.create_user("officer-elsewhere", password="officer-elsewhere-pw-for-tests")
    StaffProfile.objects.create(user=user, role="officer", town=county["other_town"])
    other_officer = Client()
    other_officer.force_login(user)
    assert other_officer.post(f"/labs/qualifications/{q.pk}/revoke/", {"reason": "测试"}).status_code == 404
    assert firm.name not in other_officer.get(f"/labs/{sem.lab.code}/").content.decode().split('id="lab-qualifications"')[1]
    # the API says which instruments need training
    listed = {i["name"]: i["needs_training"] for i in c.get("/api/v1/labs/instruments").json()}
    assert listed["扫描电子显微镜"] is True and listed["三坐标测量机"] is False


# --- a lab that confirms bookings (预约需实验室确认) ----------------------------------------------


def test_a_lab_that_confirms_bookings_holds_the_slot_until_it_confirms_declines_or_the_day_comes(county):
    from qifu import worker
    from qifu.reminders.models import OutboxMessage

    inst = (Instrument.objects.filter(lab__needs_approval=True, needs_training=False, units=1)
            .select_related("lab").order_by("lab__code", "code").first())
    assert inst is not None and not Lab.objects.filter(needs_approval=True).exclude(owner_kind="university").exists()
    a, b, c = firms(3, county["own_town"])
    Entity.objects.filter(pk__in=[a.pk, b.pk, c.pk]).update(phone="13905740034")
    actions.do_grant_voucher(a, open_day(inst.lab, 4).year, "1000")
    start = first_slot(inst, 4)
    with pytest.raises(actions.LabActionError, match="至少提前 2 天"):  # asked 30 hours ahead
        actions.do_book(a, inst, start, 1, "疲劳寿命", now=start - dt.timedelta(hours=30))
    assert not Booking.objects.exists()
    held = actions.do_book(a, inst, start, 1, "弹簧疲劳寿命")
    assert held.status == "pending" and held.voucher_amount > 0
    with pytest.raises(actions.SlotTaken):  # the slot is held while the lab decides
        actions.do_book(b, inst, start, 1, "弹簧疲劳寿命")
    assert "待实验室确认" in portal_client(a.uscc).get("/portal/labs/").content.decode()
    past = Booking(pk=held.pk, start=start - dt.timedelta(days=9))  # as if its day had come unconfirmed
    with pytest.raises(actions.LabActionError, match="尚未经实验室确认"):
        actions.do_record_batch(past, timezone.localdate(), "疲劳", 1, "R-1", "pass")
    officer = staff(county, "officer")
    page = officer.get(f"/labs/{inst.lab.code}/").content.decode()
    assert "确认预约" in page and "企业预约需实验室确认" in page
    assert "待实验室确认 1 次" in officer.get("/").content.decode()
    officer.post(f"/labs/bookings/{held.pk}/act/", {"action": "confirm"})
    held.refresh_from_db()
    assert (held.status, held.confirmed_by) == ("booked", county["users"]["officer"])
    assert "已确认" in OutboxMessage.objects.get(key=f"lab-confirmed:{held.pk}").body
    # declined with a reason: cancelled, the voucher's share back, the firm told why
    later = start + dt.timedelta(minutes=inst.slot_minutes)
    second = actions.do_book(a, inst, later, 1, "弹簧疲劳寿命")
    r = officer.post(f"/labs/bookings/{second.pk}/act/", {"action": "decline", "reason": ""}, follow=True)
    assert '<li class="error"' in r.content.decode() and Booking.objects.get(pk=second.pk).status == "pending"
    officer.post(f"/labs/bookings/{second.pk}/act/", {"action": "decline", "reason": "该时段设备需要校准"})
    assert Booking.objects.get(pk=second.pk).status == "cancelled"
    assert "设备需要校准" in OutboxMessage.objects.get(key=f"lab-declined:{second.pk}").body
    assert actions.voucher_used(Voucher.objects.get(entity=a)) == held.voucher_amount
    # not confirmed a day before the start: cancelled by the worker's job, the firm told; a confirmed one stays
    third = actions.do_book(c, inst, later, 1, "弹簧疲劳寿命")
    assert next(j for j in worker.JOBS if j.id == "lab_unconfirmed").handler == "qifu.labs.actions:expire_unconfirmed"
    assert actions.expire_unconfirmed(now=later - dt.timedelta(hours=25)) == 0
    assert actions.expire_unconfirmed(now=later - dt.timedelta(hours=23)) == 1
    assert Booking.objects.get(pk=third.pk).status == "cancelled" and Booking.objects.get(pk=held.pk).status == "booked"
    assert "未在开始前确认" in OutboxMessage.objects.get(key=f"lab-unconfirmed:{third.pk}").body
    # a staff member's booking is confirmed as it is made; a wait served there waits for the lab
    made = actions.do_book(b, inst, later, 1, "电话代约", channel=Booking.Channel.STAFF, by=county["users"]["officer"])
    assert made.status == "booked"
    actions.do_wait(c, inst, start, 1, "弹簧疲劳寿命")
    actions.do_cancel(held)
    served = Booking.objects.get(entity=c, status__in=["pending", "booked"])
    assert (served.start, served.status) == (start, "pending")
    # and the firm is told it waits for the lab, not that it is booked
    told = OutboxMessage.objects.get(key__startswith="lab-waiting:", entity=c).body
    assert "待实验室确认" in told and "自动取消" in told and "已为您自动预约" not in told


def test_a_firm_disputing_a_report_has_the_kept_samples_re_tested_once_within_the_retention(county, data_dir):
    from qifu.reminders.models import OutboxMessage

    lab = Lab.objects.filter(active=True).order_by("code").first()
    lab.retain_days = 10
    lab.save(update_fields=["retain_days"])
    firm, = firms(1, county["own_town"])
    officer, admin = county["users"]["officer"], county["users"]["admin"]
    staff = Client()
    staff.force_login(officer)
    c = portal_client(firm.uscc)
    o = actions.do_order(firm, lab, "镀锌螺栓 M8", 6, "中性盐雾 96 小时", "GB/T 10125-2021", after_test="dispose")
    actions.do_receive(o, "完好", "300", by=officer)
    actions.do_result(o, timezone.localdate(), "fail", "SY-R-1", ("r.pdf", "application/pdf", PDF), by=officer)
    with pytest.raises(actions.LabActionError, match="报告签发后才能申请复检"):
        actions.do_retest(o, "我司自检合格，对结论有异议")
    o = actions.do_review(o, True, by=admin)
    until = timezone.localdate(o.issued_at) + dt.timedelta(days=10)
    assert o.retain_until == until
    # the lab shortening its period later does not take back what the report notice promised
    lab.retain_days = 3
    lab.save(update_fields=["retain_days"])
    o = SampleOrder.objects.get(pk=o.pk)
    assert o.retain_days == 10 and o.retain_until == until
    told = OutboxMessage.objects.get(key=f"lab-order-issued:{o.pk}").body
    assert f"可于{until.month}月{until.day}日前在企服平台申请复检" in told
    page = c.get("/portal/labs/").content.decode()
    assert f'id="order-retest-{o.pk}"' in page and f"留样期至 {until:%Y-%m-%d}" in page
    # another firm cannot ask; a reason is needed; past the retention it is too late
    other = next(e for e in firms(2) if e != firm)
    assert portal_client(other.uscc).post(f"/portal/labs/orders/{o.pk}/retest/", {"reason": "我司自检合格"}).status_code == 404
    with pytest.raises(actions.LabActionError, match="4 到 300 字"):
        actions.do_retest(o, "不服")
    late = timezone.make_aware(dt.datetime.combine(until + dt.timedelta(days=1), dt.time(9)))
    with pytest.raises(actions.LabActionError, match=f"留样期内申请（至 {until:%Y-%m-%d}）"):
        actions.do_retest(o, "我司自检合格，对结论有异议", now=late)
    # asked in the portal: a new order of the kept samples, which pass to it in the chain of custody
    r = c.post(f"/portal/labs/orders/{o.pk}/retest/", {"reason": "我司自检合格，怀疑盐雾箱温度偏高"}, follow=True)
    first = SampleOrder.objects.get(retest_of=o)
    assert f"已申请复检（委托号 {first.pk}）" in r.content.decode()
    assert (first.status, first.sample_name, first.samples, first.items, first.standard, first.after_test) == (
        "submitted", o.sample_name, 6, o.items, o.standard, "dispose")
    o.refresh_from_db()
    assert o.samples_out_note == f"转入复检委托 {first.pk}" and not o.samples_held
    assert list(o.events.values_list("action", flat=True))[-1] == "retest"
    assert "怀疑盐雾箱温度偏高" in first.events.get().note
    with pytest.raises(actions.LabActionError, match="已申请复检"):
        actions.do_retest(o, "再申请一次复检")
    verify = c.get("/portal/labs/verify/", {"report_no": "SY-R-1", "code": o.verify_code}).content.decode()
    assert 'id="verify-retesting"' in verify
    assert "<strong>复检</strong>" in staff.get(f"/labs/{lab.code}/").content.decode()
    # the lab cannot use the kept samples (refused): they stay kept under the original, which may ask again
    actions.do_reject(first, "留样封条破损，无法保证与原样一致", by=officer)
    o.refresh_from_db()
    assert o.samples_out_at is None and o.samples_held and o.events.order_by("-at", "-id").first().action == "kept"
    second = SampleOrder.objects.get(pk=c.post(f"/api/v1/labs/orders/{o.pk}/retest",
                                               {"reason": "仍对盐雾结论有异议，申请复检"}, content_type="application/json",
                                               HTTP_X_CSRFTOKEN="x").json()["id"])
    assert second.retest_of_id == o.pk and second.channel == "api"
    page = c.get("/portal/labs/").content.decode()
    assert f"委托 {o.pk} 的复检（用实验室留样）" in page and f"转入复检委托 {second.pk}" in page
    # tested and issued as any other: the final word, and the original's check says so; it finds
    # the bolts pass, overturning the report, so the lab bears its fee and the voucher is not drawn
    voucher = actions.do_grant_voucher(firm, timezone.localdate().year, "1000", "0.5")
    second = actions.do_receive(second, "留样封存完好，与原委托一致", "240", by=officer)
    assert (second.voucher_amount, second.to_pay) == (Decimal("120"), Decimal("120"))
    actions.do_result(second, timezone.localdate(), "pass", "SY-R-1-F", ("r.pdf", "application/pdf", PDF), by=officer)
    second = actions.do_review(second, True, by=admin)
    assert second.retain_until is None
    assert (second.fee_by_lab, second.voucher_amount, second.to_pay, actions.voucher_used(voucher)) == (
        True, 0, 0, 0)
    told = OutboxMessage.objects.get(key=f"lab-order-issued:{second.pk}").body
    assert "本报告为复检报告（原报告 SY-R-1），为最终结论" in told and "复检费用由实验室承担，您无需支付" in told
    assert f'id="order-fee-by-lab-{second.pk}"' in c.get("/portal/labs/").content.decode()
    assert 'id="order-fee-by-lab"' in staff.get(f"/labs/orders/{second.pk}/").content.decode()
    with pytest.raises(actions.LabActionError, match="复检报告为最终结论"):
        actions.do_retest(second, "对复检结论也有异议")
    verify = c.get("/portal/labs/verify/", {"report_no": "SY-R-1", "code": o.verify_code}).content.decode()
    assert 'id="verify-retested"' in verify and "SY-R-1-F" in verify and "合格" in verify
    verify = c.get("/portal/labs/verify/", {"report_no": "SY-R-1-F", "code": second.verify_code}).content.decode()
    assert 'id="verify-retest-of"' in verify and "SY-R-1" in verify
    api = {x["id"]: x for x in c.get("/api/v1/labs/orders").json()}
    assert (api[o.pk]["can_retest"], api[second.pk]["retest_of"], api[o.pk]["retain_until"]) == (
        False, o.pk, until.isoformat())
    assert (api[second.pk]["fee_by_lab"], api[second.pk]["voucher_amount"], api[o.pk]["fee_by_lab"]) == (
        True, "0.00", False)
    # the firm's page (一企一档) marks the re-test
    assert f"<strong>复检</strong>（原委托 {o.pk}）" in staff.get(f"/entities/{firm.uscc}/").content.decode()
    # the re-test's samples, with no retention of their own, are disposed of at once
    actions.do_samples_out(second, "", by=officer)
    book = openpyxl.load_workbook(io.BytesIO(staff.get("/labs/", {"format": "xlsx"}).content))
    rows = list(book["送检"].iter_rows(values_only=True))
    got = {r[0]: (r[rows[0].index("复检的原委托号")], r[rows[0].index("留样期至")], r[rows[0].index("费用由实验室承担")])
           for r in rows[1:]}
    assert got[second.pk] == (o.pk, None, "是") and got[o.pk][0] is None and got[o.pk][1].date() == until
    assert got[o.pk][2] in ("", None)


def test_a_re_test_that_agrees_with_the_report_is_the_firms_to_pay_for(county):
    from qifu.reminders.models import OutboxMessage

    lab = Lab.objects.filter(active=True).order_by("code").first()
    firm, = firms(1, county["own_town"])
    officer, admin = county["users"]["officer"], county["users"]["admin"]
    o = actions.do_order(firm, lab, "镀锌螺栓 M8", 6, "中性盐雾 96 小时", after_test="dispose")
    actions.do_receive(o, "完好", "300", by=officer)
    actions.do_result(o, timezone.localdate(), "fail", "SY-A-1", ("r.pdf", "application/pdf", PDF), by=officer)
    o = actions.do_review(o, True, by=admin)
    retest = actions.do_receive(actions.do_retest(o, "我司自检合格，对结论有异议"), "留样完好", "180", by=officer)
    actions.do_result(retest, timezone.localdate(), "fail", "SY-A-1-F", ("r.pdf", "application/pdf", PDF), by=officer)
    retest = actions.do_review(retest, True, by=admin)
    assert (retest.fee_by_lab, retest.to_pay) == (False, Decimal("180"))
    told = OutboxMessage.objects.get(key=f"lab-order-issued:{retest.pk}").body
    assert "复检结论与原报告一致，复检费用应付 180.00 元" in told and "由实验室承担" not in told
