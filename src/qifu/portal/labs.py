"""Shared labs in the portal (共享实验室): search the catalogue in Chinese, see an instrument's
free slots for a week, book them (the innovation voucher pays its share), and cancel until a
day before; wait for a full slot (候补), booked on it if it frees. Changes go through ``labs.actions``."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from qifu.labs import actions, queries
from qifu.labs.models import Booking, Instrument, Lab, SampleOrder, Waiting
from qifu.portal.views import current_entity, portal_required


def _day(text: str | None) -> dt.date:
    today = timezone.localdate()
    try:
        day = dt.date.fromisoformat(text) if text else today
    except ValueError:
        day = today
    return min(max(day, today), today + dt.timedelta(days=actions.MAX_DAYS_AHEAD))


@require_GET
def labs_page(request):
    entity = current_entity(request)
    q = request.GET.get("q", "").strip()[:100]
    found = actions.search(q) if q else [(i, ()) for i in Instrument.objects.filter(active=True, lab__active=True)
                                             .select_related("lab__town")]
    year = timezone.localdate().year
    waiting = list(queries.waiting_of(entity)[:20]) if entity else []
    for w in waiting:
        w.place = queries.place_in_queue(w) if w.now_status() == Waiting.Status.WAITING else None
    orders = (list(SampleOrder.objects.filter(entity=entity).select_related("lab").prefetch_related("retests")[:50])
              if entity else [])
    return render(request, "portal/labs.html", {
        "entity": entity, "q": q, "found": found,
        "voucher": queries.voucher(entity, year) if entity else None,
        "bookings": list(queries.bookings_of(entity)[:50]) if entity else [],
        "waiting": waiting,
        "cancel_hours": actions.FREE_CANCEL_HOURS,
        "labs": Lab.objects.filter(active=True, instruments__active=True).distinct().select_related("town")
        if entity else [],
        "orders": orders,
        "retestable": {o.pk for o in orders if not actions.retest_refused(o, timezone.localdate())},
    })


@require_GET
def instrument_page(request, instrument_id: int):
    inst = get_object_or_404(Instrument.objects.select_related("lab__town"), pk=instrument_id, active=True)
    first = _day(request.GET.get("day"))
    entity = current_entity(request)
    week = queries.week(inst, first)
    wait_after = timezone.now() + dt.timedelta(hours=actions.FREE_CANCEL_HOURS)  # waits close a day ahead
    # an instrument that needs training: the firm's qualification, and whether it holds (None: no need)
    q = actions.qualification(entity, inst) if entity and inst.needs_training else None
    trained = q is not None and q.holds(timezone.localdate()) if inst.needs_training else None
    return render(request, "portal/lab_instrument.html", {
        "qualification": q, "trained": trained,
        "entity": entity, "inst": inst, "lab": inst.lab, "week": week,
        "waitable": [s["start"] for d in week for s in d["slots"] if not s["free"] and s["start"] > wait_after],
        "first": first, "prev": first - dt.timedelta(days=7), "next": first + dt.timedelta(days=7),
        "voucher": queries.voucher(entity, first.year) if entity else None, "max_slots": actions.MAX_SLOTS,
        "closures": [c for c in queries.closures(inst.lab, timezone.localdate()) if c.instrument_id in (None, inst.pk)][:5],
    })


def _slot_form(request, instrument_id: int, act, unreadable: str, done) -> HttpResponse:
    """The instrument page's booking or waiting form: ``act`` (``do_book`` or ``do_wait``) on the
    slots chosen; a refusal goes back to the page with its reason, success to the labs page with
    ``done`` of what was made."""
    inst = actions.bookable(instrument_id)
    if inst is None:
        raise Http404
    post = request.POST
    try:
        start = dt.datetime.fromisoformat(post.get("start", ""))
        slots = int(post.get("slots") or 1)
    except ValueError:
        messages.error(request, unreadable)
        return redirect("portal:lab-instrument", instrument_id=inst.pk)
    try:
        made = act(request.entity, inst, start, slots, post.get("purpose", ""), use_voucher=post.get("voucher") != "no")
    except actions.LabActionError as e:
        messages.error(request, str(e))
        return redirect(f"{reverse('portal:lab-instrument', args=[inst.pk])}?day={start.date()}")
    messages.success(request, done(made))
    return redirect("portal:labs")


def _booked(b: Booking) -> str:
    cover = f"，创新券抵扣 {b.voucher_amount} 元" if b.voucher_amount else ""
    if b.status == Booking.Status.PENDING:
        return (f"已提交预约 {timezone.localtime(b.start):%Y-%m-%d %H:%M}–{timezone.localtime(b.end):%H:%M}，"
                f"时段已为您保留，待实验室确认（确认或未获确认都会短信告知）；费用 {b.price} 元{cover}")
    return (f"已预约 {timezone.localtime(b.start):%Y-%m-%d %H:%M}–{timezone.localtime(b.end):%H:%M}，"
            f"费用 {b.price} 元{cover}，应付 {b.to_pay} 元")


@portal_required
@require_POST
def book(request, instrument_id: int):
    return _slot_form(request, instrument_id, actions.do_book, "请选择开始时段和时段数", _booked)


def _own_booking(request, booking_id: int) -> Booking:
    b = Booking.objects.filter(pk=booking_id, entity=request.entity).first()
    if b is None:
        raise Http404("没有这次预约")
    return b


@portal_required
@require_POST
def cancel(request, booking_id: int):
    b = _own_booking(request, booking_id)
    try:
        actions.do_cancel(b)
        messages.success(request, "已取消预约，时段已释放" + ("，创新券额度已退回" if b.voucher_amount else ""))
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect("portal:labs")


@portal_required
@require_POST
def rate(request, booking_id: int):
    b = _own_booking(request, booking_id)
    try:
        actions.do_rate(b, request.POST.get("rating", ""), request.POST.get("comment", ""))
        messages.success(request, "谢谢您的评价")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect("portal:labs")


@portal_required
@require_POST
def wait(request, instrument_id: int):
    return _slot_form(request, instrument_id, actions.do_wait, "请选择要候补的时段和时段数",
                      lambda w: f"已候补 {timezone.localtime(w.start):%Y-%m-%d %H:%M} 起的时段：有人取消时，"
                                f"按候补先后为您自动预约，并短信通知")


@portal_required
@require_POST
def withdraw(request, waiting_id: int):
    w = Waiting.objects.filter(pk=waiting_id, entity=request.entity).first()
    if w is None:
        raise Http404("没有这条候补")
    try:
        actions.do_withdraw(w)
        messages.success(request, "已撤回候补")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect("portal:labs")


# --- send-in test orders (送检) -----------------------------------------------------------------


@portal_required
@require_POST
def order(request):
    post = request.POST
    lab = Lab.objects.filter(pk=post["lab"]).first() if post.get("lab", "").isdigit() else None
    if lab is None:
        messages.error(request, "请选择送检的实验室")
        return redirect(f"{reverse('portal:labs')}#lab-orders")
    try:
        o = actions.do_order(request.entity, lab, post.get("sample_name", ""), post.get("samples", ""),
                             post.get("items", ""), post.get("standard", ""), post.get("after_test", "return"),
                             use_voucher=post.get("voucher") != "no")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    else:
        where = f"{lab.town.name}{lab.address}" if lab.address else lab.name
        messages.success(request, f"已登记送检（委托号 {o.pk}）。请将样品送至{where}，注明委托号；实验室收样后短信告知费用。")
    return redirect(f"{reverse('portal:labs')}#lab-orders")


def _own_order(request, order_id: int) -> SampleOrder:
    o = SampleOrder.objects.filter(pk=order_id, entity=request.entity).first()
    if o is None:
        raise Http404("没有这份送检委托")
    return o


@portal_required
@require_POST
def order_withdraw(request, order_id: int):
    try:
        actions.do_withdraw_order(_own_order(request, order_id), request.POST.get("reason", ""))
        messages.success(request, "已撤回送检委托")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect(f"{reverse('portal:labs')}#lab-orders")


@portal_required
@require_POST
def order_retest(request, order_id: int):
    """The firm disputes an issued report: a re-test of the samples the lab kept."""
    try:
        r = actions.do_retest(_own_order(request, order_id), request.POST.get("reason", ""))
        messages.success(request, f"已申请复检（委托号 {r.pk}），实验室取用留样收样时告知复检费用")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect(f"{reverse('portal:labs')}#lab-orders")


@portal_required
@require_POST
def order_rate(request, order_id: int):
    try:
        actions.do_rate(_own_order(request, order_id), request.POST.get("rating", ""), request.POST.get("comment", ""))
        messages.success(request, "谢谢您的评价")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect(f"{reverse('portal:labs')}#lab-orders")


@portal_required
@require_GET
def order_report(request, order_id: int):
    """The firm's issued report; a draft not yet signed off is not the firm's to read."""
    from qifu.service_requests import attachments

    o = _own_order(request, order_id)
    if o.status != SampleOrder.Status.ISSUED:
        raise Http404("报告尚未签发")
    return FileResponse(attachments.open_stored(o.report_sha256), filename=o.report_name, content_type="application/pdf")


@require_GET
def verify(request):
    """报告真伪查询: anyone holding a report (a buyer, a market inspector) checks it by its number
    and check code, without signing in; the page shows what the lab issued."""
    report_no, code = request.GET.get("report_no", "")[:60], request.GET.get("code", "")[:20]
    asked = bool(report_no or code)
    return render(request, "portal/lab_verify.html", {
        "report_no": report_no, "code": code, "asked": asked,
        "found": actions.find_report(report_no, code) if asked else None,
    })
