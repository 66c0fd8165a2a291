"""What changes shared labs' data: the catalogue imported from staff's sheet, a booking and its
cancellation, an innovation voucher granted, and a test batch recorded. Each check that fails
raises ``LabActionError`` with a sentence a person can act on, and changes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from qifu.caching import Expiring
from qifu.engine.assistant.textindex import TextIndex
from qifu.labs.models import (
    ACTIVE,
    FREE_CANCEL_HOURS,
    BookedSlot,
    Booking,
    Closure,
    Instrument,
    Lab,
    Qualification,
    SampleEvent,
    SampleOrder,
    TestBatch,
    Voucher,
    Waiting,
)
from qifu.registry.models import Entity

MAX_SLOTS = 8  # one booking: at most eight slots of one day
MAX_DAYS_AHEAD = 60
MAX_WAITING = 5  # a firm waits for at most five slots at a time
CENT = Decimal("0.01")
WEEKDAYS = "一二三四五六日"


DEFAULT_RETAIN_DAYS = 15  # a lab's retention period (留样期) where its catalogue row gives none
FEE_BY_LAB = "复检费用由实验室承担"  # a re-test that overturns the first report


class LabActionError(ValueError):
    """Something a person can fix, said in Chinese."""


class SlotTaken(LabActionError):
    """Another booking holds the slot (every unit of it)."""


# --- the catalogue ----------------------------------------------------------------------------


def import_catalogue(rows: list[dict], towns: dict[str, str]) -> tuple[int, int, int]:
    """One row per instrument, its lab's columns repeated (the sheet staff keep). Labs and
    instruments are matched by code: new ones added, changed ones updated, others untouched.
    Returns (new, changed, unchanged) instruments. Runs inside the import's transaction."""
    now = timezone.now()
    owners = set(Entity.objects.filter(uscc__in={r["owner_uscc"] for r in rows if r.get("owner_uscc")})
                 .values_list("uscc", flat=True))
    labs: dict[str, Lab] = {}
    new = changed = same = 0
    for r in rows:
        code = r["lab_code"]
        if code not in labs:
            fields = {
                "name": r["lab_name"], "owner_kind": r["owner_kind"], "owner_name": r["owner_name"],
                "owner_id": r.get("owner_uscc") if r.get("owner_uscc") in owners else None,
                "town_id": towns[r["town"]], "address": r.get("address") or "",
                "accreditation": r.get("accreditation") or "", "accredited_until": r.get("accredited_until"),
                "open_days": r.get("open_days") or "12345", "opens": _time(r["opens"]), "closes": _time(r["closes"]),
                "contact_name": r.get("contact_name") or "", "contact_phone": r.get("contact_phone") or "",
                "voucher_ok": True if r.get("voucher_ok") is None else r["voucher_ok"], "active": True,
                "needs_approval": bool(r.get("needs_approval")),
                "retain_days": DEFAULT_RETAIN_DAYS if r.get("retain_days") is None else min(r["retain_days"], 365),
            }
            lab = Lab.objects.filter(code=code).first()
            if lab is None:
                lab = Lab.objects.create(code=code, updated_at=now, **fields)
            elif any(getattr(lab, k) != v for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(lab, k, v)
                lab.updated_at = now
                lab.save()
            labs[code] = lab
        lab = labs[code]
        fields = {
            "name": r["instrument_name"], "capabilities": r.get("capabilities") or "",
            "standards": r.get("standards") or "", "price_per_hour": Decimal(r["price_per_hour"]).quantize(CENT),
            "slot_minutes": r.get("slot_minutes") or 60, "units": r.get("units") or 1, "active": True,
            "needs_training": bool(r.get("needs_training")),
        }
        inst = Instrument.objects.filter(lab=lab, code=r["instrument_code"]).first()
        if inst is None:
            Instrument.objects.create(lab=lab, code=r["instrument_code"], **fields)
            new += 1
        elif any(getattr(inst, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(inst, k, v)
            inst.save()
            changed += 1
        else:
            same += 1
    _catalogue.cache_clear()
    forget_bookable()  # this process's; the others' copies are judged again before they book
    return new, changed, same


def _time(text: str) -> dt.time:
    h, m = text.split(":")
    return dt.time(int(h), int(m))


def catalogue_problems(rows: list[dict]) -> list[tuple[int, str, str, str]]:
    """(row, field, value, reason) for what the field types cannot see: hours that do not make
    a day, a slot that does not fit them, one lab described two ways, one instrument twice."""
    out = []
    labs: dict[str, tuple] = {}
    seen: set[tuple[str, str]] = set()
    for r in rows:
        row = r["__row"]
        minutes = r.get("slot_minutes") or 60
        if r["opens"] and r["closes"]:  # a value the parser refused is reported by it
            opens, closes = _time(r["opens"]), _time(r["closes"])
            span = (closes.hour * 60 + closes.minute) - (opens.hour * 60 + opens.minute)
            if span <= 0:
                out.append((row, "closes", r["closes"], f"关闭时间应晚于开放时间 {r['opens']}"))
            elif span % minutes:
                out.append((row, "slot_minutes", str(minutes), f"开放时长 {span} 分钟应能分成整数个时段"))
        if not 15 <= minutes <= 24 * 60:
            out.append((row, "slot_minutes", str(minutes), "每个时段应在 15 到 1440 分钟之间"))
        if not 1 <= (r.get("units") or 1) <= 50:
            out.append((row, "units", str(r.get("units")), "同时可用台数应在 1 到 50 之间"))
        days = r.get("open_days") or "12345"
        if not days or any(c not in "1234567" for c in days) or len(set(days)) != len(days):
            out.append((row, "open_days", days, "开放日写作 1 到 7 的数字，如 12345 表示周一至周五"))
        if r["price_per_hour"] is not None and Decimal(r["price_per_hour"]) < 0:
            out.append((row, "price_per_hour", f"{Decimal(r['price_per_hour']).normalize():f}", "收费不能为负"))
        lab = (r["lab_name"], r["owner_kind"], r["owner_name"], r["town"], r["opens"], r["closes"], days)
        if labs.setdefault(r["lab_code"], lab) != lab:
            out.append((row, "lab_code", r["lab_code"], "同一实验室的名称、依托单位、镇街或开放时间与上文不一致"))
        key = (r["lab_code"], r["instrument_code"])
        if key in seen:
            out.append((row, "instrument_code", r["instrument_code"], "同一实验室的仪器编号重复"))
        seen.add(key)
    return out


def _document(i: Instrument) -> str:
    lab = i.lab
    return " ".join([i.name, i.name, i.capabilities, i.standards, lab.name, lab.owner_name, lab.accreditation,
                     lab.town.name])


@lru_cache(maxsize=1)
def _catalogue(version: tuple) -> tuple[list[int], TextIndex]:
    instruments = list(Instrument.objects.filter(active=True, lab__active=True).select_related("lab__town"))
    return [i.pk for i in instruments], TextIndex([_document(i) for i in instruments])


def search(query: str, limit: int = 30) -> list[tuple[Instrument, tuple[str, ...]]]:
    """Open instruments for a query in Chinese, best first, each with the words it matched."""
    version = (Instrument.objects.count(), Lab.objects.aggregate(m=Max("updated_at"))["m"])
    ids, index = _catalogue(version)
    hits = index.search(query, limit)
    found = Instrument.objects.select_related("lab__town").in_bulk([ids[h.index] for h in hits])
    return [(found[ids[h.index]], h.words) for h in hits if ids[h.index] in found]


# --- slots and bookings -----------------------------------------------------------------------


def holiday(day: dt.date) -> bool:
    """A statutory holiday (春节, 国庆…), when labs close whatever their opening days."""
    import chinese_calendar

    try:
        off, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:  # a year the calendar does not know yet
        return False
    return bool(off and name)


def closed_days(instrument: Instrument, first: dt.date, last: dt.date) -> dict[dt.date, str]:
    """The days from ``first`` to ``last`` on which the instrument's lab, or the instrument,
    is closed (``Closure``), each with the reason."""
    out: dict[dt.date, str] = {}
    rows = (Closure.objects.filter(lab_id=instrument.lab_id, first_day__lte=last, last_day__gte=first)
            .filter(Q(instrument__isnull=True) | Q(instrument_id=instrument.pk))
            .values_list("first_day", "last_day", "reason"))
    for a, b, reason in rows:
        day = max(a, first)
        while day <= min(b, last):
            out.setdefault(day, reason)
            day += dt.timedelta(days=1)
    return out


def day_slots(instrument: Instrument, day: dt.date, closed: dict[dt.date, str] | None = None) -> list[dt.datetime]:
    """The starts of an instrument's slots on a day (local time), none on a day the lab does
    not open, a statutory holiday or a day it is closed (``closed``: ``closed_days`` read
    already for a span that holds ``day``)."""
    lab = instrument.lab
    if str(day.isoweekday()) not in lab.open_days or holiday(day):
        return []
    if day in (closed_days(instrument, day, day) if closed is None else closed):
        return []
    tz = timezone.get_current_timezone()
    at = dt.datetime.combine(day, lab.opens, tz)
    end = dt.datetime.combine(day, lab.closes, tz)
    step = dt.timedelta(minutes=instrument.slot_minutes)
    out = []
    while at + step <= end:
        out.append(at)
        at += step
    return out


def free_units(instrument: Instrument, day: dt.date, closed: dict[dt.date, str] | None = None) -> dict[dt.datetime, int]:
    """Each slot of the day and how many units are free in it."""
    starts = day_slots(instrument, day, closed)
    if not starts:
        return {}
    held: dict[dt.datetime, int] = {}
    for s in BookedSlot.objects.filter(instrument=instrument, active=True, start__gte=starts[0],
                                       start__lte=starts[-1]).values_list("start", flat=True):
        held[s] = held.get(s, 0) + 1
    return {s: instrument.units - held.get(s, 0) for s in starts}


def _check_time(instrument: Instrument, start: dt.datetime, slots: int, now: dt.datetime) -> list[dt.datetime]:
    if timezone.is_naive(start):
        start = timezone.make_aware(start)
    if not 1 <= slots <= MAX_SLOTS:
        raise LabActionError(f"一次预约 1 到 {MAX_SLOTS} 个时段")
    if start <= now:
        raise LabActionError("不能预约已经过去的时间")
    if start - now > dt.timedelta(days=MAX_DAYS_AHEAD + 1) or \
            timezone.localtime(start).date() > timezone.localtime(now).date() + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise LabActionError(f"最多提前 {MAX_DAYS_AHEAD} 天预约")
    local = timezone.localtime(start)
    closed = closed_days(instrument, local.date(), local.date())
    starts = day_slots(instrument, local.date(), closed)
    lab = instrument.lab
    if not starts:
        days = "、".join("周" + WEEKDAYS[int(d) - 1] for d in lab.open_days)
        if str(local.isoweekday()) not in lab.open_days:
            why = f"开放日：{days}"
        else:
            why = "法定节假日" if holiday(local.date()) else f"停开放：{closed.get(local.date(), '')}"
        raise LabActionError(f"{local:%Y-%m-%d} 实验室不开放（{why}）")
    if local not in starts:
        raise LabActionError(f"开始时间应为开放时段的起点（{lab.opens:%H:%M} 起，每 {instrument.slot_minutes} 分钟一个时段）")
    first = starts.index(local)
    if first + slots > len(starts):
        raise LabActionError(f"超出开放时间（{lab.closes:%H:%M} 关闭）")
    return starts[first:first + slots]


def qualification(entity: Entity, instrument: Instrument) -> Qualification | None:
    return Qualification.objects.filter(entity=entity, instrument=instrument).first()


def _check_trained(entity: Entity, instrument: Instrument, start: dt.datetime) -> None:
    """An instrument that needs training is booked only by a firm trained on it, on the day."""
    if not instrument.needs_training:
        return
    q = qualification(entity, instrument)
    if q is None or not q.holds(timezone.localtime(start).date()):
        held = "上机资格已撤销" if q and q.revoked_at else (f"上机资格已于 {q.until:%Y-%m-%d} 到期" if q else "尚无上机资格")
        raise LabActionError(f"“{instrument.name}”须经实验室培训、取得上机资格后才能自行预约（贵企业{held}）；"
                             f"可改为送检，由实验室代为检测，或联系实验室安排培训")


def price_of(instrument: Instrument, slots: int) -> Decimal:
    return (instrument.price_per_hour * instrument.slot_minutes * slots / 60).quantize(CENT)


# An instrument and its lab as bookings read them, kept half a minute per process: under a burst
# of firms asking for one slot, most are refused on what is held, and reading the instrument
# through the ORM cost more than that refusal. A booking that goes on to be made is judged again
# on the instrument as it is then (``do_book``), so a stale copy can only refuse, never book.
_BOOKABLE: Expiring[Instrument] = Expiring(ttl=30.0, limit=5_000)


def bookable(instrument_id: int) -> Instrument | None:
    """The instrument with its lab, for the booking pages and API (a copy: do not change it)."""
    return _BOOKABLE.get(instrument_id, lambda: Instrument.objects.select_related("lab").filter(pk=instrument_id).first())


def forget_bookable() -> None:
    _BOOKABLE.clear()


def _terms(i: Instrument) -> tuple:
    """What of an instrument and its lab a booking is judged on."""
    lab = i.lab
    return (i.active, i.units, i.slot_minutes, i.price_per_hour, i.needs_training, lab.active, lab.voucher_ok, lab.opens,
            lab.closes, lab.open_days, lab.needs_approval)


def _held_units(instrument_id: int, starts: list[dt.datetime]) -> set[int]:
    """Units of the instrument held in any of ``starts`` (one statement, no ORM: the read that
    refuses most firms under contention)."""
    q = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(starts))
    with connection.cursor() as cur:
        cur.execute(f"SELECT {q('unit')} FROM {q(BookedSlot._meta.db_table)} WHERE {q('instrument_id')} = %s "
                    f"AND {q('active')} AND {q('start')} IN ({marks})",
                    [instrument_id, *(connection.ops.adapt_datetimefield_value(s) for s in starts)])
        return {row[0] for row in cur.fetchall()}


def voucher_used(voucher: Voucher) -> Decimal:
    """What the voucher has paid: its share of the bookings not cancelled and of the send-in
    orders received (an order's share is fixed at receipt and never given back)."""
    booked = voucher.bookings.exclude(status=Booking.Status.CANCELLED).aggregate(s=Sum("voucher_amount"))["s"]
    sent = voucher.orders.aggregate(s=Sum("voucher_amount"))["s"]
    return (booked or Decimal(0)) + (sent or Decimal(0))


def _cover(entity: Entity, year: int, price: Decimal) -> tuple[Voucher | None, Decimal]:
    """The firm's voucher for ``year`` and what it pays of ``price``: its share, never more than
    what is left. Call inside a transaction: the voucher is locked until it commits."""
    voucher = Voucher.objects.select_for_update().filter(entity=entity, year=year).first()
    if voucher is None:
        return None, Decimal(0)
    left = voucher.budget - voucher_used(voucher)
    cover = min((price * voucher.share).quantize(CENT, ROUND_DOWN), max(left, Decimal(0)))
    return (voucher, cover) if cover > 0 else (None, Decimal(0))


def do_book(entity: Entity, instrument: Instrument, start: dt.datetime, slots: int = 1, purpose: str = "",
            channel: str = Booking.Channel.PORTAL, by=None, use_voucher: bool = True,
            now: dt.datetime | None = None, _current: bool = False, waited: bool = False) -> Booking:
    """Book ``slots`` consecutive slots from ``start`` on the first unit free for all of them.
    The price is fixed now; the firm's voucher for the year pays its share, never more than
    what is left of it (counted under a lock on the voucher). ``instrument`` may be a cached
    copy (``bookable``): a slot already held is refused on it, but any other refusal, and the
    booking itself, are judged on the instrument as the database holds it then.

    At a lab that confirms bookings (``Lab.needs_approval``) a firm's booking holds its slots as
    待确认 until the lab's staff confirm it (``do_confirm``), and must start at least
    ``APPROVAL_LEAD_HOURS`` ahead, so that they have a day to answer; one a staff member makes
    is confirmed as it is made, and one made for a wait (``waited``) has whatever time is left."""
    now = now or timezone.now()
    purpose = (purpose or "").strip()
    if not 2 <= len(purpose) <= 500:
        raise LabActionError("请写明检测内容（2 到 500 字）")

    def judge_again() -> Booking | None:
        """The booking judged on the database's instrument, if it differs from ``instrument``."""
        if _current:
            return None
        current = Instrument.objects.select_related("lab").filter(pk=instrument.pk).first()
        if current is None:
            raise LabActionError("这台仪器暂不开放预约")
        if _terms(current) == _terms(instrument):
            return None
        forget_bookable()
        return do_book(entity, current, start, slots, purpose, channel, by, use_voucher, now, _current=True,
                       waited=waited)

    try:
        if not (instrument.active and instrument.lab.active):
            raise LabActionError("这台仪器暂不开放预约")
        starts = _check_time(instrument, start, slots, now)
        _check_trained(entity, instrument, starts[0])
        confirm = instrument.lab.needs_approval and channel != Booking.Channel.STAFF
        if confirm and not waited and starts[0] - now < dt.timedelta(hours=APPROVAL_LEAD_HOURS):
            raise LabActionError(f"{instrument.lab.name}的预约需实验室确认，请至少提前 {APPROVAL_LEAD_HOURS // 24} 天预约")
    except LabActionError:
        if (booking := judge_again()) is not None:
            return booking
        raise
    # Read first, without the write lock: a slot already held is refused at once, so that many
    # firms asking for one slot wait on each other only while its first booking is being made.
    held = _held_units(instrument.pk, starts)
    units = [u for u in range(1, instrument.units + 1) if u not in held]
    if not units:
        _taken(instrument, starts[0])
    if (booking := judge_again()) is not None:
        return booking
    price = price_of(instrument, slots)
    def hold(unit: int, voucher, cover) -> Booking:
        booking = Booking.objects.create(
            instrument=instrument, entity=entity, town_id=entity.town_id, start=starts[0],
            end=starts[-1] + dt.timedelta(minutes=instrument.slot_minutes), unit=unit, purpose=purpose, price=price,
            voucher=voucher, voucher_amount=cover if voucher else 0, channel=channel, booked_by=by, created_at=now,
            status=Booking.Status.PENDING if confirm else Booking.Status.BOOKED)
        BookedSlot.objects.bulk_create(BookedSlot(booking=booking, instrument=instrument, unit=unit, start=s)
                                       for s in starts)
        return booking

    try:
        with transaction.atomic():
            voucher, cover = None, Decimal(0)
            if use_voucher and instrument.lab.voucher_ok:
                voucher, cover = _cover(entity, starts[0].year, price)
            if len(units) == 1:  # one unit left: a clash ends the booking, no savepoint to fall back to
                return hold(units[0], voucher, cover)
            for unit in units:
                try:
                    with transaction.atomic():
                        return hold(unit, voucher, cover)
                except IntegrityError:
                    continue
    except IntegrityError:
        pass
    _taken(instrument, starts[0])


def _taken(instrument: Instrument, start: dt.datetime):
    taken = "已被预约" if instrument.units == 1 else f"{instrument.units} 台均已被预约"
    raise SlotTaken(f"{timezone.localtime(start):%Y-%m-%d %H:%M} 起的时段{taken}，请选择其他时段")


def do_cancel(booking: Booking, reason: str = "", by=None, staff: bool = False, now: dt.datetime | None = None,
              tell: bool = False) -> Booking:
    """Cancel a booking: its slots are free again and its voucher share returns. A firm cancels
    until a day before the start; after that only the lab's staff can, with a reason. ``tell``:
    the firm is told the staff's reason in writing (callers with their own message leave it)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk)
        if booking.status not in ACTIVE:
            raise LabActionError(f"预约状态为“{booking.get_status_display()}”，不能取消")
        if not staff and booking.start - now < dt.timedelta(hours=FREE_CANCEL_HOURS):
            raise LabActionError(f"距开始不足 {FREE_CANCEL_HOURS} 小时，请联系实验室取消")
        if staff and len(reason) < 2:
            raise LabActionError("请写明取消原因")
        booking.status, booking.cancelled_at = Booking.Status.CANCELLED, now
        booking.cancel_reason = reason[:300] or "企业自行取消"
        booking.save(update_fields=["status", "cancelled_at", "cancel_reason"])
        starts = list(booking.slots.values_list("start", flat=True))
        booking.slots.update(active=False)
        if staff and tell:
            start = timezone.localtime(booking.start)
            inst = Instrument.objects.select_related("lab").get(pk=booking.instrument_id)
            _tell(booking.entity, f"lab-cancelled:{booking.pk}", now,
                  f"【企服】{inst.lab.name}取消了您{start:%m月%d日%H:%M}起“{inst.name}”的预约：{reason[:60]}。"
                  f"费用和创新券额度已退回，可登录企服平台另约时段或改为送检。", f"实验室取消预约 {booking.pk}")
    serve_waiting(booking.instrument_id, starts, now)
    return booking


# --- the lab's confirmation (预约需实验室确认) ------------------------------------------------------

APPROVAL_LEAD_HOURS = 48  # a firm books a lab that confirms at least two days ahead


def do_confirm(booking: Booking, by=None, now: dt.datetime | None = None) -> Booking:
    """The lab's staff confirm a booking that waits for it; the firm is told."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = Booking.objects.select_for_update().select_related("instrument__lab", "entity").get(pk=booking.pk)
        if booking.status != Booking.Status.PENDING:
            raise LabActionError(f"预约状态为“{booking.get_status_display()}”，不需要确认")
        booking.status, booking.confirmed_at, booking.confirmed_by = Booking.Status.BOOKED, now, by
        booking.save(update_fields=["status", "confirmed_at", "confirmed_by"])
        start = timezone.localtime(booking.start)
        _tell(booking.entity, f"lab-confirmed:{booking.pk}", now,
              f"【企服】{booking.instrument.lab.name}已确认您{start:%m月%d日%H:%M}起“{booking.instrument.name}”的预约，"
              f"请按时到场。如不需要，请在开始 {FREE_CANCEL_HOURS} 小时前登录企服平台取消。", f"确认预约 {booking.pk}")
    return booking


def do_decline(booking: Booking, reason: str, by=None, now: dt.datetime | None = None) -> Booking:
    """The lab's staff do not confirm a booking, saying why: it is cancelled (slots free, the
    voucher's share back, waits served) and the firm is told the reason."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise LabActionError("请写明不予确认的原因，企业会收到这段话")
    if not _cancel_pending(booking, f"实验室未予确认：{reason}", by, now):
        raise LabActionError("只有待确认的预约可以不予确认")
    booking.refresh_from_db()
    start = timezone.localtime(booking.start)
    _tell(booking.entity, f"lab-declined:{booking.pk}", now,
          f"【企服】{booking.instrument.lab.name}未能确认您{start:%m月%d日%H:%M}起“{booking.instrument.name}”的预约：{reason[:60]}。"
          f"费用和创新券额度已退回，可登录企服平台另约时段或改为送检。", f"不予确认预约 {booking.pk}")
    return booking


def _cancel_pending(booking: Booking, reason: str, by, now: dt.datetime) -> bool:
    """Cancel ``booking`` if it still waits for the lab's confirmation (checked under its row
    lock: one confirmed meanwhile stays); False otherwise."""
    with transaction.atomic():
        if not Booking.objects.select_for_update().filter(pk=booking.pk, status=Booking.Status.PENDING).exists():
            return False
        do_cancel(booking, reason, by=by, staff=True, now=now)
    return True


def expire_unconfirmed(now: dt.datetime | None = None) -> int:
    """Cancel every booking its lab has not confirmed by ``FREE_CANCEL_HOURS`` before its start,
    and tell each firm. Run by `qifu worker` every ten minutes. Returns how many."""
    now = now or timezone.now()
    late = Booking.objects.filter(status=Booking.Status.PENDING, start__lt=now + dt.timedelta(hours=FREE_CANCEL_HOURS))
    done = 0
    for b in late.select_related("instrument__lab", "entity"):
        if not _cancel_pending(b, f"实验室未在开始前 {FREE_CANCEL_HOURS} 小时确认", None, now):
            continue  # confirmed or cancelled meanwhile
        done += 1
        if b.start > now:
            start = timezone.localtime(b.start)
            _tell(b.entity, f"lab-unconfirmed:{b.pk}", now,
                  f"【企服】{b.instrument.lab.name}未在开始前确认您{start:%m月%d日%H:%M}起“{b.instrument.name}”的预约，"
                  f"预约已取消，费用和创新券额度已退回。如仍需检测，请登录企服平台另约时段或改为送检。",
                  f"预约未确认取消 {b.pk}")
    return done


# --- waiting for a full slot (候补) --------------------------------------------------------------


def do_wait(entity: Entity, instrument: Instrument, start: dt.datetime, slots: int = 1, purpose: str = "",
            use_voucher: bool = True, now: dt.datetime | None = None, by=None) -> Waiting:
    """Wait for ``slots`` slots from ``start`` that are full now: when a booking frees them, the
    firm that has waited longest is booked on them (``serve_waiting``). Only a full slot can be
    waited for, once per firm, and at most ``MAX_WAITING`` at a time. ``by``: the staff member
    who puts the firm on the list for it (a phone call, a service station)."""
    now = now or timezone.now()
    purpose = (purpose or "").strip()
    if not 2 <= len(purpose) <= 500:
        raise LabActionError("请写明检测内容（2 到 500 字）")
    if not (instrument.active and instrument.lab.active):
        raise LabActionError("这台仪器暂不开放预约")
    starts = _check_time(instrument, start, slots, now)
    _check_trained(entity, instrument, starts[0])
    if starts[0] - now < dt.timedelta(hours=FREE_CANCEL_HOURS):
        raise LabActionError(f"距开始不足 {FREE_CANCEL_HOURS} 小时，不能候补")
    held = _held_units(instrument.pk, starts)
    if len(held) < instrument.units:
        raise LabActionError("该时段还有空位，请直接预约")
    mine = BookedSlot.objects.filter(instrument=instrument, start__in=starts, active=True, booking__entity=entity)
    if mine.exists():
        raise LabActionError("贵企业已预约了这个时段")
    # a wait too near to be served any more does not count, whether or not it is closed yet
    waiting = Waiting.objects.filter(entity=entity, status=Waiting.Status.WAITING,
                                     start__gte=now + dt.timedelta(hours=FREE_CANCEL_HOURS))
    if waiting.count() >= MAX_WAITING:
        raise LabActionError(f"同时最多候补 {MAX_WAITING} 个时段，请先撤回不需要的候补")
    try:
        with transaction.atomic():
            return Waiting.objects.create(instrument=instrument, entity=entity, town_id=entity.town_id, start=starts[0],
                                          slots=slots, purpose=purpose, use_voucher=use_voucher, created_at=now,
                                          created_by=by)
    except IntegrityError:
        raise LabActionError("贵企业已在候补这个时段") from None


def do_withdraw(waiting: Waiting, now: dt.datetime | None = None) -> Waiting:
    now = now or timezone.now()
    with transaction.atomic():
        w = Waiting.objects.select_for_update().get(pk=waiting.pk)
        if w.now_status(now) != Waiting.Status.WAITING:
            raise LabActionError(f"候补状态为“{Waiting.Status(w.now_status(now)).label}”，不能撤回")
        w.status, w.closed_at, w.note = Waiting.Status.WITHDRAWN, now, "企业撤回"
        w.save(update_fields=["status", "closed_at", "note"])
    return w


def serve_waiting(instrument_id: int, freed: list[dt.datetime], now: dt.datetime | None = None) -> list[Booking]:
    """After ``freed`` slots of the instrument became free: the firms waiting for a slot among
    them, longest first, are booked (each on its own terms, judged as any booking is) until no
    more fits; each one booked is told through the outbox. A firm is booked only while it can
    still cancel itself (``FREE_CANCEL_HOURS`` ahead); a wait closer than that is closed as not
    served. Returns the bookings made."""
    now = now or timezone.now()
    expire_waits(now, instrument_id)
    made = []
    queue = Waiting.objects.filter(instrument_id=instrument_id, status=Waiting.Status.WAITING,
                                   start__in=freed).select_related("entity", "instrument__lab")
    for w in queue.order_by("created_at", "id"):
        try:
            with transaction.atomic():
                # the wait is claimed under its row lock: two cancellations freeing units of one
                # slot at once, or a withdrawal, cannot serve it twice
                if not Waiting.objects.select_for_update().filter(pk=w.pk, status=Waiting.Status.WAITING).exists():
                    continue
                channel = Booking.Channel.STAFF if w.created_by_id else Booking.Channel.PORTAL
                booking = do_book(w.entity, w.instrument, w.start, w.slots, w.purpose, channel=channel,
                                  by=w.created_by, use_voucher=w.use_voucher, now=now, _current=True, waited=True)
                Waiting.objects.filter(pk=w.pk).update(status=Waiting.Status.BOOKED, closed_at=now, booking=booking,
                                                       note="有空位，已自动预约")
                _tell_booked(w, booking, now)
        except LabActionError:
            continue  # still full for it (a longer wait, a unit taken meanwhile): it keeps waiting
        made.append(booking)
    return made


def _end_wait(w: Waiting, now: dt.datetime, note: str) -> bool:
    """Close an open wait as not served (未约上) with ``note``; False where something closed it
    first (a cancellation serving it, a withdrawal)."""
    return bool(Waiting.objects.filter(pk=w.pk, status=Waiting.Status.WAITING).update(
        status=Waiting.Status.EXPIRED, closed_at=now, note=note[:300]))


def expire_waits(now: dt.datetime | None = None, instrument_id: int | None = None) -> int:
    """Close as not served (未约上) every open wait (of one instrument, or of all) whose slot is
    less than ``FREE_CANCEL_HOURS`` away, and tell each firm whose slot is still ahead, so that
    it can book another. Run by `qifu worker` every ten minutes and before a cancellation
    serves the waits. Returns how many were closed."""
    now = now or timezone.now()
    stale = Waiting.objects.filter(status=Waiting.Status.WAITING, start__lt=now + dt.timedelta(hours=FREE_CANCEL_HOURS))
    if instrument_id is not None:
        stale = stale.filter(instrument_id=instrument_id)
    closed = 0
    for w in stale.select_related("entity", "instrument__lab"):
        with transaction.atomic():
            if not _end_wait(w, now, f"距开始不足 {FREE_CANCEL_HOURS} 小时仍无空位"):
                continue
            closed += 1
            if w.start > now:  # a slot gone by long ago (the worker was down) is not worth a text
                start = timezone.localtime(w.start)
                _tell(w.entity, f"lab-waiting:{w.pk}", now,
                      f"【企服】您候补的{w.instrument.lab.name}“{w.instrument.name}”{start:%m月%d日%H:%M}起的时段，"
                      f"到开始前 {FREE_CANCEL_HOURS} 小时仍无空位，候补已结束。如仍需检测，请登录企服平台预约其他时段。",
                      f"候补 {w.instrument.name} {start:%Y-%m-%d %H:%M} 未约上")
    return closed


def _tell_booked(w: Waiting, booking: Booking, now: dt.datetime) -> None:
    lab, inst = w.instrument.lab, w.instrument
    cover = f"，创新券抵扣 {booking.voucher_amount} 元" if booking.voucher_amount else ""
    start = timezone.localtime(booking.start)
    if booking.status == Booking.Status.PENDING:  # a lab that confirms: it still has to
        done = (f"已为您预约，待实验室确认（开始前 {FREE_CANCEL_HOURS} 小时仍未确认的自动取消并告知您，"
                f"费用和创新券额度退回）")
    else:
        done = "已为您自动预约"
    _tell(w.entity, f"lab-waiting:{w.pk}", now,
          f"【企服】您候补的{lab.name}“{inst.name}”{start:%m月%d日%H:%M}起的时段有了空位，{done}，"
          f"费用 {booking.price} 元{cover}。如不需要，请在开始 {FREE_CANCEL_HOURS} 小时前登录企服平台取消。",
          f"候补 {inst.name} {start:%Y-%m-%d %H:%M} 约上")


def tell_staff_made(made: Booking | Waiting, now: dt.datetime | None = None) -> bool:
    """The firm told in writing what a staff member booked, or put it on the waiting list for,
    on its behalf (a phone call is easily misheard), with how to cancel or withdraw. False: no
    text or e-mail reaches the firm."""
    now = now or timezone.now()
    inst = made.instrument
    start = timezone.localtime(made.start)
    where = f"{inst.lab.name}“{inst.name}”{start:%m月%d日%H:%M}起"
    if isinstance(made, Booking):
        cover = f"，创新券抵扣 {made.voucher_amount} 元" if made.voucher_amount else ""
        slots = (made.end - made.start) // dt.timedelta(minutes=inst.slot_minutes)
        return _tell(made.entity, f"lab-booked:{made.pk}", now,
                     f"【企服】工作人员已为您预约{where}的 {slots} 个时段，费用 {made.price} 元{cover}。"
                     f"如不需要，请在开始 {FREE_CANCEL_HOURS} 小时前登录企服平台取消。",
                     f"代约 {inst.name} {start:%Y-%m-%d %H:%M}")
    return _tell(made.entity, f"lab-waiting-made:{made.pk}", now,
                 f"【企服】{where}的时段已约满，工作人员已为您登记候补：有人取消时按登记先后为您自动预约并通知。"
                 f"可登录企服平台查看或撤回。",
                 f"代为候补 {inst.name} {start:%Y-%m-%d %H:%M}")


def _tell(e: Entity, key: str, now: dt.datetime, body: str, reason: str) -> bool:
    """The firm told once under ``key`` (a wait's end: one key per wait, booked or not), by text
    or e-mail where one reaches it (False if none does; the portal shows the same)."""
    from qifu.reminders import decency

    # none reaching the firm: the portal's lists of bookings and waits show it
    return decency.tell_once(key, e.uscc, "lab", e.phone, e.email, body, reason, now) is not None


def do_rate(item: Booking | SampleOrder, rating: str, comment: str = "", now: dt.datetime | None = None):
    """The firm rates the lab's service once its test is done (满意 / 基本满意 / 不满意, 政务服务
    “好差评”): a booking once its test batch is recorded, a send-in order once its report is
    issued; once each; 不满意 with what went wrong, for the lab's staff to follow up."""
    from qifu.service_requests.models import Satisfaction

    now = now or timezone.now()
    comment = (comment or "").strip()
    if rating not in Satisfaction.values:
        raise LabActionError("请选择满意、基本满意或不满意")
    if rating == Satisfaction.DISSATISFIED and len(comment) < 2:
        raise LabActionError("不满意的，请写明哪里做得不好")
    booked = isinstance(item, Booking)
    with transaction.atomic():
        item = type(item).objects.select_for_update().get(pk=item.pk)
        if item.status != (Booking.Status.DONE if booked else SampleOrder.Status.ISSUED):
            raise LabActionError("检测完成、实验室登记检测批次后才能评价" if booked else "报告签发后才能评价")
        if item.rating:
            raise LabActionError("这次预约已经评价过" if booked else "这份送检已经评价过")
        item.rating, item.rating_comment, item.rated_at = rating, comment[:300], now
        item.save(update_fields=["rating", "rating_comment", "rated_at"])
    return item


def do_callback(item: Booking | SampleOrder, note: str, by=None, now: dt.datetime | None = None):
    """Staff record the follow-up of a 不满意 (差评回访) of a booking or a send-in order: what
    they found with the lab and the firm; once per rating."""
    now = now or timezone.now()
    note = (note or "").strip()
    if len(note) < 2:
        raise LabActionError("请写明回访情况（与实验室、企业核实的结果和整改）")
    with transaction.atomic():
        item = type(item).objects.select_for_update().get(pk=item.pk)
        if item.rating != "dissatisfied":
            raise LabActionError("只有“不满意”的评价需要回访")
        if item.callback_at:
            raise LabActionError("这条评价已经回访过")
        item.callback_note, item.callback_at, item.callback_by = note[:300], now, by
        item.save(update_fields=["callback_note", "callback_at", "callback_by"])
    return item


# --- days closed (停开放) ------------------------------------------------------------------------

MAX_CLOSURE_DAYS = 92
MAX_REPEAT_MONTHS = 12  # a monthly closing day is entered for at most a year ahead
ORDINALS = "一二三四"


def monthly_days(first_day: dt.date, months: int) -> list[dt.date]:
    """``first_day`` and the same day of the month's rhythm in each of the ``months`` - 1
    months after it: the same weekday in the same week of the month (每月第 N 个周 X), or the
    month's last such weekday when ``first_day`` is the fifth (每月最后一个周 X)."""
    nth = (first_day.day - 1) // 7  # 0..4; 4: the fifth, which is always the month's last
    out = []
    for k in range(months):
        y, m = divmod(first_day.month - 1 + k, 12)
        y, m = first_day.year + y, m + 1
        first = dt.date(y, m, 1)
        day = first + dt.timedelta(days=(first_day.weekday() - first.weekday()) % 7)
        if nth < 4:
            day += dt.timedelta(weeks=nth)
        else:
            while (day + dt.timedelta(weeks=1)).month == m:
                day += dt.timedelta(weeks=1)
        out.append(day)
    return out


def rhythm(first_day: dt.date) -> str:
    """``monthly_days``' rhythm in words: 每月第一个周一, 每月最后一个周五."""
    nth = (first_day.day - 1) // 7
    return f"每月{'最后一' if nth == 4 else '第' + ORDINALS[nth]}个周{WEEKDAYS[first_day.weekday()]}"


def do_close_monthly(lab: Lab, first_day: dt.date, months: int, reason: str, instrument: Instrument | None = None,
                     by=None, now: dt.datetime | None = None) -> tuple[list[Closure], int, int]:
    """A regular closing day (every first Monday's maintenance, say) for ``months`` months from
    ``first_day``: one closure each (``do_close``, so each can be taken back alone), in one
    transaction. Returns the closures and how many bookings and waits they ended."""
    if not 2 <= months <= MAX_REPEAT_MONTHS:
        raise LabActionError(f"按月重复 2 到 {MAX_REPEAT_MONTHS} 个月")
    closures, cancelled, ended = [], 0, 0
    with transaction.atomic():
        for day in monthly_days(first_day, months):
            c, n, w = do_close(lab, day, day, reason, instrument=instrument, by=by, now=now)
            closures.append(c)
            cancelled, ended = cancelled + n, ended + w
    return closures, cancelled, ended


def do_close(lab: Lab, first_day: dt.date, last_day: dt.date, reason: str, instrument: Instrument | None = None,
             by=None, now: dt.datetime | None = None) -> tuple[Closure, int, int]:
    """Close the lab (or one of its instruments) from ``first_day`` to ``last_day``: nothing can
    be booked or waited for on those days; the bookings there are cancelled (slots free, the
    voucher's share back) and the open waits closed, each firm told once in writing why. Returns
    the closure and how many bookings and waits it ended."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not 2 <= len(reason) <= 200:
        raise LabActionError("请写明停开放原因（2 到 200 字）")
    if first_day > last_day:
        raise LabActionError("停开放末日不能早于首日")
    if first_day < timezone.localdate(now):
        raise LabActionError("不能登记已经过去的日子")
    if (last_day - first_day).days + 1 > MAX_CLOSURE_DAYS:
        raise LabActionError(f"一次最多停开放 {MAX_CLOSURE_DAYS} 天；更久的请把仪器或实验室设为不开放")
    if instrument is not None and instrument.lab_id != lab.pk:
        raise LabActionError("这台仪器不属于该实验室")
    tz = timezone.get_current_timezone()
    span = (dt.datetime.combine(first_day, dt.time.min, tz), dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, tz))
    what = f"“{instrument.name}”" if instrument else ""
    days = f"{first_day:%m月%d日}" + (f"至{last_day:%m月%d日}" if last_day != first_day else "")
    with transaction.atomic():
        closure = Closure.objects.create(lab=lab, instrument=instrument, first_day=first_day, last_day=last_day,
                                         reason=reason, created_by=by, created_at=now)
        where = {"instrument__lab": lab} if instrument is None else {"instrument": instrument}
        bookings = list(Booking.objects.filter(status__in=ACTIVE, start__gte=span[0], start__lt=span[1], **where)
                        .select_related("entity", "instrument"))
        for b in bookings:
            do_cancel(b, f"实验室停开放：{reason}", by=by, staff=True, now=now)
            start = timezone.localtime(b.start)
            _tell(b.entity, f"lab-closed:{b.pk}", now,
                  f"【企服】{lab.name}{what}{days}停开放（{reason}），您{start:%m月%d日%H:%M}起的预约已取消，"
                  f"费用和创新券额度已退回。如仍需检测，请登录企服平台预约其他时段。",
                  f"停开放取消预约 {b.instrument.name} {start:%Y-%m-%d %H:%M}")
        ended = 0
        for w in (Waiting.objects.filter(status=Waiting.Status.WAITING, start__gte=span[0], start__lt=span[1], **where)
                  .select_related("entity", "instrument")):
            if not _end_wait(w, now, f"实验室停开放：{reason}"):
                continue
            ended += 1
            start = timezone.localtime(w.start)
            _tell(w.entity, f"lab-waiting:{w.pk}", now,
                  f"【企服】{lab.name}{what}{days}停开放（{reason}），您候补的{start:%m月%d日%H:%M}起的时段已结束候补。"
                  f"如仍需检测，请登录企服平台预约其他时段。",
                  f"停开放结束候补 {w.instrument.name} {start:%Y-%m-%d %H:%M}")
    return closure, len(bookings), ended


def do_reopen(closure: Closure) -> None:
    """The closure withdrawn: its days can be booked again (what it cancelled stays cancelled)."""
    Closure.objects.filter(pk=closure.pk).delete()


# --- vouchers and test batches ---------------------------------------------------------------


def do_grant_voucher(entity: Entity, year: int, budget, share="0.5", by=None) -> Voucher:
    """A firm's voucher for a year, or its new budget; never below what it has already paid."""
    try:
        budget, share = Decimal(str(budget)).quantize(CENT), Decimal(str(share))
    except ArithmeticError:
        raise LabActionError("额度和抵扣比例应为数字") from None
    if budget < 0 or budget > Decimal("10000000"):
        raise LabActionError("额度应在 0 到 1000 万元之间（单位：元）")
    if not 0 < share <= 1:
        raise LabActionError("抵扣比例应大于 0、不超过 1")
    with transaction.atomic():
        voucher = Voucher.objects.select_for_update().filter(entity=entity, year=year).first()
        if voucher is None:
            return Voucher.objects.create(entity=entity, year=year, budget=budget, share=share,
                                          granted_at=timezone.now(), granted_by=by)
        used = voucher_used(voucher)
        if budget < used:
            raise LabActionError(f"已抵扣 {used} 元，额度不能低于已用金额")
        voucher.budget, voucher.share, voucher.granted_by = budget, share, by
        voucher.save(update_fields=["budget", "share", "granted_by"])
        return voucher


def do_record_batch(booking: Booking, tested_on: dt.date, items: str, samples: int, report_no: str,
                    conclusion: str, report: tuple[str, str, bytes] | None = None, by=None) -> TestBatch:
    """The lab's record of what it tested for a booking, with the report; the booking is done."""
    from qifu.service_requests import attachments

    items, report_no = (items or "").strip(), (report_no or "").strip()
    if not items or not report_no:
        raise LabActionError("请填写检测项目和报告编号")
    if conclusion not in TestBatch.Conclusion.values:
        raise LabActionError("请选择检测结论")
    if not 1 <= int(samples) <= 100000:
        raise LabActionError("样品数应在 1 到 100000 之间")
    if tested_on > timezone.localdate() or tested_on < timezone.localtime(booking.start).date():
        raise LabActionError("检测日期应在预约开始之后、不晚于今天")
    if report is not None and report[1] != "application/pdf":
        raise LabActionError(f"检测报告“{report[0]}”应为 PDF（按文件内容判断）")
    with transaction.atomic():
        booking = Booking.objects.select_for_update().select_related("instrument").get(pk=booking.pk)
        if booking.status == Booking.Status.CANCELLED:
            raise LabActionError("预约已取消，不能登记检测")
        if booking.status == Booking.Status.PENDING:
            raise LabActionError("预约尚未经实验室确认，不能登记检测")
        if hasattr(booking, "batch"):
            raise LabActionError("这次预约已登记过检测批次")
        if TestBatch.objects.filter(lab_id=booking.instrument.lab_id, report_no=report_no).exists():
            raise LabActionError(f"报告编号 {report_no} 已在本实验室登记过")
        batch = TestBatch.objects.create(
            lab_id=booking.instrument.lab_id, booking=booking, entity_id=booking.entity_id, town_id=booking.town_id,
            tested_on=tested_on, items=items[:500], samples=int(samples), report_no=report_no[:60],
            conclusion=conclusion, report_name=report[0] if report else "",
            report_sha256=attachments.store(report[2]) if report else "", recorded_by=by, recorded_at=timezone.now())
        booking.status = Booking.Status.DONE
        booking.save(update_fields=["status"])
    return batch


# --- send-in test orders (送检) -----------------------------------------------------------------

MAX_SAMPLES = 10000
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read off paper and typed again
OPEN_ORDERS = (SampleOrder.Status.SUBMITTED, SampleOrder.Status.TESTING, SampleOrder.Status.REVIEW)


def _step(order: SampleOrder, status: str, action: str, by, now: dt.datetime, note: str = "",
          fields: tuple[str, ...] = ()) -> None:
    """Move ``order`` (locked, its new fields set) to ``status`` and write the step down."""
    order.status = status
    order.save(update_fields=["status", *fields])
    SampleEvent.objects.create(order=order, action=action, at=now, by=by, note=note[:300])


def _locked(order: SampleOrder, *expected: str, why: str) -> SampleOrder:
    order = SampleOrder.objects.select_for_update(of=("self",)).select_related("lab", "entity").get(pk=order.pk)
    if order.status not in expected:
        raise LabActionError(f"{why}（这份委托现在{order.get_status_display()}）")
    return order


def do_order(entity: Entity, lab: Lab, sample_name: str, samples: int, items: str, standard: str = "",
             after_test: str = SampleOrder.AfterTest.RETURN, use_voucher: bool = True,
             channel: str = Booking.Channel.PORTAL, by=None, now: dt.datetime | None = None) -> SampleOrder:
    """A firm asks a lab to test samples it will send or bring (送检): what they are, how many,
    which items and by which standard, and what happens to them after the test. A staff member
    may enter it for a firm that called (``by``); the firm is then told in writing."""
    now = now or timezone.now()
    sample_name, items, standard = (sample_name or "").strip(), (items or "").strip(), (standard or "").strip()
    if not (lab.active and lab.instruments.filter(active=True).exists()):
        raise LabActionError(f"{lab.name}暂不接受送检")
    if not 2 <= len(sample_name) <= 200:
        raise LabActionError("请写明样品名称及型号（2 到 200 字）")
    if not 2 <= len(items) <= 500:
        raise LabActionError("请写明检测项目（2 到 500 字）")
    if len(standard) > 200:
        raise LabActionError("检测依据不超过 200 字")
    try:
        samples = int(samples)
    except (TypeError, ValueError):
        raise LabActionError("样品数量应为整数") from None
    if not 1 <= samples <= MAX_SAMPLES:
        raise LabActionError(f"样品数量应在 1 到 {MAX_SAMPLES} 之间")
    if after_test not in SampleOrder.AfterTest.values:
        raise LabActionError("请选择检后样品退回企业还是由实验室处置")
    with transaction.atomic():
        order = SampleOrder.objects.create(
            lab=lab, entity=entity, town_id=entity.town_id, sample_name=sample_name, samples=samples, items=items,
            standard=standard, after_test=after_test, use_voucher=use_voucher and lab.voucher_ok, channel=channel,
            created_by=by, created_at=now)
        SampleEvent.objects.create(order=order, action=SampleEvent.Action.SUBMITTED, at=now, by=by,
                                   note="工作人员代为登记" if by else "企业网上委托")
        if by is not None:
            _tell(entity, f"lab-order-made:{order.pk}", now,
                  f"【企服】工作人员已为您向{lab.name}登记送检（{sample_name}，{samples} 件，{items[:40]}）。"
                  f"请将样品送至{lab.address or lab.name}；可登录企服平台查看进度或撤回。", f"代为送检 {order.pk}")
    return order


def do_withdraw_order(order: SampleOrder, reason: str = "", now: dt.datetime | None = None) -> SampleOrder:
    """The firm withdraws an order the lab has not received samples for yet."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(order, SampleOrder.Status.SUBMITTED, why="实验室收样后不能撤回，请联系实验室")
        order.closed_reason = (reason or "").strip()[:300]
        _step(order, SampleOrder.Status.WITHDRAWN, SampleEvent.Action.WITHDRAWN, None, now, order.closed_reason,
              ("closed_reason",))
        _kept(order, None, now, "企业撤回复检")
    return order


def do_receive(order: SampleOrder, condition: str, price, by=None, now: dt.datetime | None = None) -> SampleOrder:
    """The lab receives the samples: their state as found (sealed, labelled, damaged…) and the
    price of the test, of which the firm's voucher for the year pays its share. The firm is told."""
    now = now or timezone.now()
    condition = (condition or "").strip()
    if not 2 <= len(condition) <= 300:
        raise LabActionError("请记录收到的样品状态（如：包装完好、标识清楚、数量相符）")
    try:
        price = Decimal(str(price).strip()).quantize(CENT)
    except ArithmeticError:
        raise LabActionError(f"费用“{str(price)[:20]}”不是金额") from None
    if not Decimal(0) <= price < Decimal(10) ** 10:
        raise LabActionError("费用应为不小于 0 的金额（元）")
    with transaction.atomic():
        order = _locked(order, SampleOrder.Status.SUBMITTED, why="只有待收样的委托可以收样")
        voucher, cover = _cover(order.entity, timezone.localtime(now).year, price) if order.use_voucher else (None, 0)
        order.received_at, order.condition, order.price = now, condition, price
        order.voucher, order.voucher_amount = voucher, cover
        _step(order, SampleOrder.Status.TESTING, SampleEvent.Action.RECEIVED, by, now, condition,
              ("received_at", "condition", "price", "voucher", "voucher_amount"))
        paid = f"，创新券抵扣 {cover} 元，应付 {order.to_pay} 元" if cover else f"，应付 {price} 元"
        _tell(order.entity, f"lab-order-received:{order.pk}", now,
              f"【企服】{order.lab.name}已收到您送检的{order.sample_name}（{order.samples} 件），样品状态：{condition}。"
              f"费用 {price} 元{paid}。出具报告后另行通知。", f"送检 {order.pk} 收样")
    return order


def do_reject(order: SampleOrder, reason: str, by=None, now: dt.datetime | None = None) -> SampleOrder:
    """The lab refuses the samples (damaged, too few, outside its scope…), saying why; the firm is
    told and may send them again in a new order."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise LabActionError("请写明拒收原因，企业会收到这段话")
    with transaction.atomic():
        order = _locked(order, SampleOrder.Status.SUBMITTED, why="只有待收样的委托可以拒收")
        order.closed_reason = reason[:300]
        _step(order, SampleOrder.Status.REJECTED, SampleEvent.Action.REJECTED, by, now, reason, ("closed_reason",))
        _kept(order, by, now, f"实验室未接收复检：{reason}")
        _tell(order.entity, f"lab-order-rejected:{order.pk}", now,
              f"【企服】{order.lab.name}未能接收您送检的{order.sample_name}：{reason[:60]}。"
              f"可按要求重新准备样品后再次委托。", f"送检 {order.pk} 拒收")
    return order


def do_result(order: SampleOrder, tested_on: dt.date, conclusion: str, report_no: str,
              report: tuple[str, str, bytes] | None, by=None, now: dt.datetime | None = None) -> SampleOrder:
    """The tester enters the result and the draft report (PDF); it waits for a second person."""
    from qifu.service_requests import attachments

    now = now or timezone.now()
    report_no = (report_no or "").strip()
    if conclusion not in TestBatch.Conclusion.values:
        raise LabActionError("请选择检测结论")
    if not report_no:
        raise LabActionError("请填写报告编号")
    if report is None or report[1] != "application/pdf":
        raise LabActionError("请上传 PDF 格式的检测报告（按文件内容判断）")
    with transaction.atomic():
        order = _locked(order, SampleOrder.Status.TESTING, why="只有检测中的委托可以录入结果")
        if not timezone.localtime(order.received_at).date() <= tested_on <= timezone.localtime(now).date():
            raise LabActionError("检测日期应在收样之后、不晚于今天")
        clash = (TestBatch.objects.filter(lab_id=order.lab_id, report_no=report_no).exists()
                 or SampleOrder.objects.filter(lab_id=order.lab_id, report_no=report_no, status=SampleOrder.Status.REVIEW)
                 .exclude(pk=order.pk).exists())
        if clash:
            raise LabActionError(f"报告编号 {report_no} 已在本实验室使用过")
        order.tested_on, order.conclusion, order.report_no = tested_on, conclusion, report_no[:60]
        order.report_name, order.report_sha256, order.tested_by = report[0][:200], attachments.store(report[2]), by
        _step(order, SampleOrder.Status.REVIEW, SampleEvent.Action.TESTED, by, now,
              f"报告 {order.report_no}，{order.get_conclusion_display()}",
              ("tested_on", "conclusion", "report_no", "report_name", "report_sha256", "tested_by"))
    return order


def do_review(order: SampleOrder, approve: bool, note: str = "", by=None, now: dt.datetime | None = None) -> SampleOrder:
    """A second person checks the result: signed off, the report is issued (a test batch of the
    lab, with a code to check the report by) and the firm told; sent back, with what is wrong,
    the order is tested again. The tester never signs off their own result."""
    import secrets

    now = now or timezone.now()
    note = (note or "").strip()
    if not approve and len(note) < 2:
        raise LabActionError("退回重检请写明原因")
    with transaction.atomic():
        order = _locked(order, SampleOrder.Status.REVIEW, why="只有待审核的委托可以审核")
        if by is not None and order.tested_by_id == getattr(by, "pk", None):
            raise LabActionError("审核须由检测人以外的另一人进行")
        if not approve:
            for f in ("tested_on", "tested_by"):
                setattr(order, f, None)
            order.conclusion = order.report_no = order.report_name = order.report_sha256 = ""
            _step(order, SampleOrder.Status.TESTING, SampleEvent.Action.RETURNED, by, now, note,
                  ("tested_on", "tested_by", "conclusion", "report_no", "report_name", "report_sha256"))
            return order
        if TestBatch.objects.filter(lab_id=order.lab_id, report_no=order.report_no).exists():
            raise LabActionError(f"报告编号 {order.report_no} 已在本实验室使用过，请退回重新编号")
        order.batch = TestBatch.objects.create(
            lab_id=order.lab_id, entity_id=order.entity_id, town_id=order.town_id, tested_on=order.tested_on,
            items=order.items, samples=order.samples, report_no=order.report_no, conclusion=order.conclusion,
            report_name=order.report_name, report_sha256=order.report_sha256, recorded_by=order.tested_by,
            recorded_at=now)
        order.verified_by, order.issued_at = by, now
        order.retain_days = None if order.retest_of_id is not None else order.lab.retain_days
        order.verify_code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
        # a re-test that overturns the first report is the lab's to pay for, and the firm's voucher
        # share for it goes back to the voucher
        overturned = order.retest_of_id is not None and order.conclusion != order.retest_of.conclusion
        if overturned:
            order.fee_by_lab, order.voucher, order.voucher_amount = True, None, Decimal(0)
            note = "；".join(x for x in (note, FEE_BY_LAB) if x)
        _step(order, SampleOrder.Status.ISSUED, SampleEvent.Action.ISSUED, by, now, note,
              ("batch", "verified_by", "issued_at", "retain_days", "verify_code", "fee_by_lab", "voucher",
               "voucher_amount"))
        back = "样品将退回，请与实验室约定领取" if order.after_test == SampleOrder.AfterTest.RETURN else "样品由实验室处置"
        if order.retain_until is not None:
            back += f"；对结论有异议的，可于{order.retain_until.month}月{order.retain_until.day}日前在企服平台申请复检"
        if order.retest_of_id is not None:
            back += f"；本报告为复检报告（原报告 {order.retest_of.report_no}），为最终结论"
            if overturned:
                back += f"；复检结论与原报告不一致，{FEE_BY_LAB}，您无需支付"
            else:
                back += "；复检结论与原报告一致" + (f"，复检费用应付 {order.to_pay} 元" if order.to_pay else "")
        _tell(order.entity, f"lab-order-issued:{order.pk}", now,
              f"【企服】您送检的{order.sample_name}检测报告已出具：编号 {order.report_no}，结论"
              f"{order.get_conclusion_display()}。请登录企服平台下载；报告真伪可凭编号和查询码 {order.verify_code} 查询。"
              f"{back}。", f"送检 {order.pk} 出具报告")
    return order


def do_samples_out(order: SampleOrder, note: str, by=None, now: dt.datetime | None = None) -> SampleOrder:
    """The samples of an issued order leave the lab as the firm asked when it ordered: handed
    back (退回企业: how, by courier with its number or collected by whom; the firm is told) or
    disposed of (由实验室处置). Once; the last step of the chain of custody."""
    now = now or timezone.now()
    note = (note or "").strip()
    with transaction.atomic():
        order = _locked(order, SampleOrder.Status.ISSUED, why="报告签发后才能退回或处置样品")
        if order.samples_out_at is not None:
            raise LabActionError(f"样品已于{timezone.localtime(order.samples_out_at):%Y-%m-%d}{order.samples_went}")
        back = order.after_test == SampleOrder.AfterTest.RETURN
        until = order.retain_until
        if not back and until is not None and timezone.localtime(now).date() <= until:
            raise LabActionError(f"留样期至 {until:%Y-%m-%d}（企业可在此前申请复检），期满后才能处置")
        if back and len(note) < 2:
            raise LabActionError("请写明怎样退回的（如：顺丰快递 SF1234567890，或企业张先生自取），企业会收到这段话")
        note = (note or SampleOrder.DISPOSED_AS_AGREED)[:300]
        order.samples_out_at, order.samples_out_note = now, note
        _step(order, SampleOrder.Status.ISSUED, SampleEvent.Action.BACK if back else SampleEvent.Action.DISPOSED, by, now,
              note, ("samples_out_at", "samples_out_note"))
        if back:
            _tell(order.entity, f"lab-order-back:{order.pk}", now,
                  f"【企服】{order.lab.name}已退回您送检的{order.sample_name}（{order.samples} 件）：{note[:60]}。"
                  f"如未收到请联系实验室。", f"送检 {order.pk} 样品退回")
    return order


def retest_refused(order: SampleOrder, today: dt.date) -> str | None:
    """Why the firm cannot ask for a re-test (复检) of ``order`` now, or None: only of an issued
    report that is not a re-test itself, while its samples are still kept at the lab and within
    the lab's retention period, once."""
    if order.status != SampleOrder.Status.ISSUED:
        return "报告签发后才能申请复检"
    if order.retest_of_id is not None:
        return "复检报告为最终结论，不能再次复检"
    if order.retest_open:
        return "这份报告已申请复检"
    until = order.retain_until
    if until is None:
        return f"{order.lab.name}不留样，不能复检"
    if order.samples_out_at is not None:
        return "样品已退回或处置，不能复检；可以重新送检"
    if today > until:
        return f"复检须在留样期内申请（至 {until:%Y-%m-%d}）；可以重新送检"
    return None


def do_retest(order: SampleOrder, reason: str, channel: str = Booking.Channel.PORTAL,
              now: dt.datetime | None = None) -> SampleOrder:
    """The firm disputes an issued report and asks for a re-test (复检) of the retained samples,
    saying why, within the lab's retention period (``retest_refused``). A new order of the same
    samples, items and standard, waiting for the lab to take the retained samples in (收样, with
    the price of the re-test); the samples pass to it in the chain of custody. Its report, issued
    as any other, is the final word, and the original report's check says so. If it is withdrawn
    or refused, the samples stay kept under the original order."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not 4 <= len(reason) <= 300:
        raise LabActionError("请写明对检测结论有什么异议（4 到 300 字），实验室会看到")
    with transaction.atomic():
        order = _locked(order, *SampleOrder.Status.values, why="")
        if why := retest_refused(order, timezone.localtime(now).date()):
            raise LabActionError(why)
        retest = SampleOrder.objects.create(
            lab=order.lab, entity=order.entity, town_id=order.town_id, sample_name=order.sample_name,
            samples=order.samples, items=order.items, standard=order.standard, after_test=order.after_test,
            use_voucher=order.use_voucher, channel=channel, created_at=now, retest_of=order)
        SampleEvent.objects.create(order=retest, action=SampleEvent.Action.SUBMITTED, at=now,
                                   note=f"申请复检（原报告 {order.report_no}）：{reason}"[:300])
        order.samples_out_at, order.samples_out_note = now, f"转入复检委托 {retest.pk}"
        order.save(update_fields=["samples_out_at", "samples_out_note"])
        SampleEvent.objects.create(order=order, action=SampleEvent.Action.RETEST, at=now,
                                   note=f"复检委托 {retest.pk}：{reason}"[:300])
    return retest


def _kept(order: SampleOrder, by, now: dt.datetime, why: str) -> None:
    """A re-test withdrawn or refused: the retained samples stay kept under the original order."""
    if order.retest_of_id is None:
        return
    original = SampleOrder.objects.select_for_update().get(pk=order.retest_of_id)
    original.samples_out_at, original.samples_out_note = None, ""
    original.save(update_fields=["samples_out_at", "samples_out_note"])
    SampleEvent.objects.create(order=original, action=SampleEvent.Action.KEPT, at=now, by=by,
                               note=f"复检委托 {order.pk}：{why}"[:300])


def find_report(report_no: str, code: str) -> SampleOrder | None:
    """The issued report with this number and check code (报告真伪查询), or None."""
    report_no, code = (report_no or "").strip(), (code or "").strip().upper()
    if not report_no or len(code) != 10:
        return None
    return (SampleOrder.objects.select_related("lab", "entity").filter(
        status=SampleOrder.Status.ISSUED, report_no=report_no, verify_code=code).first())


# --- trained users (上机资格) ---------------------------------------------------------------------

MAX_QUALIFIED_YEARS = 3


def do_qualify(entity: Entity, instrument: Instrument, until: dt.date, note: str = "", by=None,
               now: dt.datetime | None = None) -> Qualification:
    """The lab's staff record that a firm's staff were trained on an instrument that needs it:
    the firm books it itself until ``until``. Granted again, the same qualification is renewed
    (also after it was withdrawn). The firm is told in writing."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    if not instrument.needs_training:
        raise LabActionError(f"“{instrument.name}”不需要培训上机，企业可以直接预约")
    if not today < until <= today + dt.timedelta(days=366 * MAX_QUALIFIED_YEARS):
        raise LabActionError(f"有效期应在明天到 {MAX_QUALIFIED_YEARS} 年之内")
    note = (note or "").strip()[:300]
    with transaction.atomic():
        q, _ = Qualification.objects.update_or_create(
            instrument=instrument, entity=entity,
            defaults={"town_id": entity.town_id, "until": until, "granted_at": now, "granted_by": by, "note": note,
                      "revoked_at": None, "revoked_reason": ""})
        _tell(entity, f"lab-qualified:{q.pk}:{timezone.localtime(now):%Y%m%d%H%M}:{until:%Y%m%d}", now,
              f"【企服】贵企业已取得{instrument.lab.name}“{instrument.name}”的上机资格，有效期至 {until:%Y-%m-%d}，"
              f"可登录企服平台自行预约。", f"上机资格 {instrument.name}")
    return q


def do_revoke(q: Qualification, reason: str, by=None, now: dt.datetime | None = None) -> Qualification:
    """The lab withdraws a qualification (the instrument misused, a rule broken), saying why; the
    firm is told, and books the instrument no more until trained again. Bookings already made
    stay: the lab cancels those it will not keep, with its reason."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise LabActionError("请写明撤销上机资格的原因，企业会收到这段话")
    with transaction.atomic():
        q = Qualification.objects.select_for_update().select_related("instrument__lab", "entity").get(pk=q.pk)
        if q.revoked_at is not None:
            raise LabActionError("这项上机资格已经撤销")
        q.revoked_at, q.revoked_reason = now, reason[:300]
        q.save(update_fields=["revoked_at", "revoked_reason"])
        _tell(q.entity, f"lab-qualification-revoked:{q.pk}:{now:%Y%m%d%H%M}", now,
              f"【企服】{q.instrument.lab.name}已撤销贵企业“{q.instrument.name}”的上机资格：{reason[:60]}。"
              f"如需使用，可送检或重新参加培训。", f"撤销上机资格 {q.instrument.name}")
    return q
