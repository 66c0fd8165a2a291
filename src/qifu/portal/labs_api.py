"""Shared labs' JSON endpoints (``qifu.api``, /api/v1/labs/): the catalogue, an instrument's
free slots, and the signed-in enterprise's bookings, waits for full slots (候补), send-in orders (送检) and voucher. Same
session and CSRF rules as the rest of the portal API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from qifu.labs import actions, queries
from qifu.labs.models import Booking, Instrument, Lab, SampleOrder, Waiting
from qifu.portal.api import Error, PortalSession

router = Router(auth=PortalSession(), tags=["共享实验室"])


class InstrumentOut(Schema):
    id: int
    name: str
    lab: str
    lab_code: str
    town: str
    capabilities: str
    standards: str
    price_per_hour: str = Field(description="元/小时")
    slot_minutes: int
    units: int
    needs_training: bool = Field(description="需培训上机：只有取得上机资格的企业能预约，其他企业可送检")
    matched: list[str] = Field(description="搜索时：仪器资料中与搜索词相符的词")


class SearchIn(Schema):
    q: str = Field("", max_length=100, description="检测需要，中文；空则列出全部")


class DayIn(Schema):
    day: dt.date = Field(description="日期，如 2026-12-01")


class SlotOut(Schema):
    start: dt.datetime
    free: int = Field(description="空闲台数")


class BookingIn(Schema):
    instrument_id: int
    start: dt.datetime = Field(description="开始时刻，应为开放时段的起点，如 2026-12-01T08:30:00+08:00")
    slots: int = Field(1, ge=1, le=actions.MAX_SLOTS, description="连续时段数")
    purpose: str = Field(min_length=2, max_length=500, description="检测内容")
    use_voucher: bool = True


class BookingOut(Schema):
    id: int
    instrument_id: int
    start: dt.datetime
    end: dt.datetime
    unit: int
    purpose: str
    price: str = Field(description="费用（元），预约时锁定")
    voucher_amount: str = Field(description="创新券抵扣（元）")
    status: Literal["pending", "booked", "done", "cancelled"] = Field(description="pending：待实验室确认")


class WaitingOut(Schema):
    id: int
    instrument_id: int
    start: dt.datetime
    slots: int
    purpose: str
    status: Literal["waiting", "booked", "withdrawn", "expired"]
    booking_id: int | None = Field(description="约上时：为企业自动预约的预约号")
    created_at: dt.datetime


class OrderIn(Schema):
    lab_code: str = Field(max_length=40, description="实验室编号")
    sample_name: str = Field(min_length=2, max_length=200, description="样品名称及型号")
    samples: int = Field(ge=1, le=actions.MAX_SAMPLES, description="样品数量")
    items: str = Field(min_length=2, max_length=500, description="检测项目")
    standard: str = Field("", max_length=200, description="检测依据（标准），可空")
    after_test: Literal["return", "dispose"] = Field("return", description="检后样品：退回企业 / 由实验室处置")
    use_voucher: bool = True


class OrderOut(Schema):
    id: int
    lab_code: str
    sample_name: str
    samples: int
    items: str
    standard: str
    after_test: Literal["return", "dispose"]
    status: Literal["submitted", "testing", "review", "issued", "rejected", "withdrawn"]
    created_at: dt.datetime
    price: str | None = Field(description="费用（元），收样时确定")
    voucher_amount: str = Field(description="创新券抵扣（元）")
    report_no: str | None = Field(description="已出报告时：报告编号")
    conclusion: Literal["pass", "fail", "data"] | None = Field(description="已出报告时：结论")
    verify_code: str | None = Field(description="已出报告时：真伪查询码")
    closed_reason: str = Field(description="拒收或撤回的原因")
    samples_out_at: dt.datetime | None = Field(description="报告签发后样品退回企业或由实验室处置的时间（按 after_test）")
    samples_out_note: str = Field(description="怎样退回的（如快递单号、自取人）或处置说明；申请复检的：转入哪份复检委托")
    retest_of: int | None = Field(description="复检委托：所复检的原委托号（复检报告为最终结论）")
    retain_until: dt.date | None = Field(description="已出报告的：留样期的最后一天，此前可申请复检，期满前不处置样品")
    can_retest: bool = Field(description="现在可以申请复检（POST /orders/{id}/retest）")
    fee_by_lab: bool = Field(description="复检结论与原报告不一致：复检费用由实验室承担，企业无需支付，不用创新券")


class RetestIn(Schema):
    reason: str = Field(description="对检测结论有什么异议（4 到 300 字）")


class VoucherOut(Schema):
    year: int
    budget: str
    used: str
    left: str
    share: str


def _instrument(i: Instrument, words=()) -> dict:
    return {"id": i.pk, "name": i.name, "lab": i.lab.name, "lab_code": i.lab.code, "town": i.lab.town.name,
            "capabilities": i.capabilities, "standards": i.standards, "price_per_hour": f"{i.price_per_hour}",
            "slot_minutes": i.slot_minutes, "units": i.units, "needs_training": i.needs_training,
            "matched": list(words)}


def _booking(b: Booking) -> dict:
    return {"id": b.pk, "instrument_id": b.instrument_id, "start": b.start, "end": b.end, "unit": b.unit,
            "purpose": b.purpose, "price": f"{b.price}", "voucher_amount": f"{b.voucher_amount}", "status": b.status}


@router.get("/instruments", response=list[InstrumentOut], summary="查找开放的仪器")
def instruments(request, query: Query[SearchIn]):
    if query.q.strip():
        return [_instrument(i, w) for i, w in actions.search(query.q.strip())]
    return [_instrument(i) for i in Instrument.objects.filter(active=True, lab__active=True).select_related("lab__town")]


@router.get("/instruments/{instrument_id}/slots", response={200: list[SlotOut], 400: Error, 404: Error},
            summary="某日的时段和空闲台数（今天起 60 天内）")
def slots(request, instrument_id: int, query: Query[DayIn]):
    inst = get_object_or_404(Instrument.objects.select_related("lab"), pk=instrument_id, active=True)
    today = timezone.localdate()
    if not today <= query.day <= today + dt.timedelta(days=actions.MAX_DAYS_AHEAD):
        return Status(400, {"detail": f"日期应在今天到 {actions.MAX_DAYS_AHEAD} 天后之间"})
    return [{"start": s, "free": n} for s, n in actions.free_units(inst, query.day).items()]


@router.get("/bookings", response=list[BookingOut], summary="本企业的预约")
def bookings(request):
    return [_booking(b) for b in queries.bookings_of(request.entity)[:200]]


@router.post("/bookings", response={201: BookingOut, 400: Error, 404: Error, 409: Error},
             summary="预约仪器时段（同一时段只有一家能约到）")
def book(request, body: BookingIn):
    inst = actions.bookable(body.instrument_id)
    if inst is None:
        return Status(404, {"detail": "没有这台仪器"})
    try:
        b = actions.do_book(request.entity, inst, body.start, body.slots, body.purpose,
                            channel=Booking.Channel.API, use_voucher=body.use_voucher)
    except actions.SlotTaken as e:
        return Status(409, {"detail": str(e)})
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, _booking(b))


@router.post("/bookings/{booking_id}/cancel", response={200: BookingOut, 400: Error, 404: Error}, summary="取消预约")
def cancel(request, booking_id: int):
    b = get_object_or_404(Booking, pk=booking_id, entity=request.entity)
    try:
        b = actions.do_cancel(b)
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return _booking(b)


def _waiting(w: Waiting) -> dict:
    return {"id": w.pk, "instrument_id": w.instrument_id, "start": w.start, "slots": w.slots, "purpose": w.purpose,
            "status": w.now_status(), "booking_id": w.booking_id, "created_at": w.created_at}


@router.get("/waiting", response=list[WaitingOut], summary="本企业的候补")
def waiting(request):
    return [_waiting(w) for w in queries.waiting_of(request.entity)[:200]]


@router.post("/waiting", response={201: WaitingOut, 400: Error, 404: Error},
             summary="候补已约满的时段：有人取消时，按候补先后自动预约并通知")
def wait(request, body: BookingIn):
    inst = actions.bookable(body.instrument_id)
    if inst is None:
        return Status(404, {"detail": "没有这台仪器"})
    try:
        w = actions.do_wait(request.entity, inst, body.start, body.slots, body.purpose, use_voucher=body.use_voucher)
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, _waiting(w))


@router.post("/waiting/{waiting_id}/withdraw", response={200: WaitingOut, 400: Error, 404: Error}, summary="撤回候补")
def withdraw(request, waiting_id: int):
    w = get_object_or_404(Waiting, pk=waiting_id, entity=request.entity)
    try:
        w = actions.do_withdraw(w)
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return _waiting(w)


def _order(o: SampleOrder) -> dict:
    issued = o.status == SampleOrder.Status.ISSUED
    return {"id": o.pk, "lab_code": o.lab.code, "sample_name": o.sample_name, "samples": o.samples, "items": o.items,
            "standard": o.standard, "after_test": o.after_test, "status": o.status, "created_at": o.created_at,
            "price": None if o.price is None else f"{o.price}", "voucher_amount": f"{o.voucher_amount}",
            "report_no": o.report_no if issued else None, "conclusion": o.conclusion if issued else None,
            "verify_code": o.verify_code if issued else None, "closed_reason": o.closed_reason,
            "samples_out_at": o.samples_out_at, "samples_out_note": o.samples_out_note,
            "retest_of": o.retest_of_id, "retain_until": o.retain_until,
            "can_retest": actions.retest_refused(o, timezone.localdate()) is None, "fee_by_lab": o.fee_by_lab}


@router.get("/orders", response=list[OrderOut], summary="本企业的送检委托")
def orders(request):
    return [_order(o) for o in SampleOrder.objects.filter(entity=request.entity).select_related("lab")
            .prefetch_related("retests")[:200]]


@router.post("/orders", response={201: OrderOut, 400: Error, 404: Error},
             summary="委托实验室检测样品（送检）：登记后把样品送到实验室")
def order(request, body: OrderIn):
    lab = Lab.objects.filter(code=body.lab_code).first()
    if lab is None:
        return Status(404, {"detail": "没有这个实验室"})
    try:
        o = actions.do_order(request.entity, lab, body.sample_name, body.samples, body.items, body.standard,
                             body.after_test, use_voucher=body.use_voucher, channel=Booking.Channel.API)
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, _order(o))


@router.post("/orders/{order_id}/retest", response={201: OrderOut, 400: Error, 404: Error},
             summary="对检测结论有异议：在留样期内申请用留样复检（复检报告为最终结论）")
def order_retest(request, order_id: int, body: RetestIn):
    o = get_object_or_404(SampleOrder.objects.select_related("lab"), pk=order_id, entity=request.entity)
    try:
        r = actions.do_retest(o, body.reason, channel=Booking.Channel.API)
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, _order(r))


@router.post("/orders/{order_id}/withdraw", response={200: OrderOut, 400: Error, 404: Error},
             summary="撤回送检委托（实验室收样前）")
def order_withdraw(request, order_id: int):
    o = get_object_or_404(SampleOrder.objects.select_related("lab"), pk=order_id, entity=request.entity)
    try:
        o = actions.do_withdraw_order(o)
    except actions.LabActionError as e:
        return Status(400, {"detail": str(e)})
    return _order(o)


@router.get("/voucher", response={200: VoucherOut, 404: Error}, summary="本企业本年度创新券")
def voucher(request):
    v = queries.voucher(request.entity, timezone.localdate().year)
    if v is None:
        return Status(404, {"detail": "本年度没有创新券"})
    return {"year": v["year"], "budget": f"{v['budget']}", "used": f"{v['used']}", "left": f"{v['left']}",
            "share": f"{v['share']}"}
