"""Staff pages for shared labs (共享实验室): the measures (test batches by lab, township and
industry; voucher use) as charts and XLSX, the catalogue with accreditations about to lapse, a
lab's bookings with the record of each test batch and its report, and innovation vouchers.
Views only: changes go through ``labs.actions``; who sees what through ``accounts.scope``: a
township officer sees the bookings, batches and vouchers of their township's firms."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets
from qifu.accounts import masking, scope
from qifu.accounts.decorators import staff_required
from qifu.engine import reference
from qifu.labs import actions, queries
from qifu.labs.models import (
    ACTIVE,
    FREE_CANCEL_HOURS,
    Booking,
    Lab,
    Qualification,
    SampleEvent,
    SampleOrder,
    TestBatch,
    Voucher,
    Waiting,
)
from qifu.service_requests import attachments
from qifu.web.downloads import audited_xlsx, local_time, person


def _bookings(request):
    return scope.filter_by_town(Booking.objects.all(), request.user)


def _batches(request):
    return scope.filter_by_town(TestBatch.objects.all(), request.user)


def _waits(request):
    return scope.filter_by_town(Waiting.objects.all(), request.user)


def _orders(request):
    return scope.filter_by_town(SampleOrder.objects.all(), request.user)


def _vouchers(request):
    return scope.filter_by_town(Voucher.objects.all(), request.user, "entity__town")


@staff_required
def overview(request):
    if request.GET.get("format") == "xlsx":
        return _xlsx(request)
    year = timezone.localdate().year
    m = queries.measures(_bookings(request), _batches(request), _vouchers(request).filter(year=year), _waits(request),
                         _orders(request))
    sections = reference.industries()
    labs = list(Lab.objects.select_related("town").annotate(instrument_count=Count("instruments")).order_by("code"))
    soon = timezone.localdate() + dt.timedelta(days=90)
    return render(request, "web/labs_overview.html", {
        "m": m, "year": year, "labs": labs, "soon": soon, "today": timezone.localdate(),
        "can_grant": scope.role_of(request.user) == scope.Role.ADMIN,
        "vouchers": _vouchers(request).filter(year=year).select_related("entity").order_by("-budget")[:50],
        "charts": {
            "batches-labs": {"labels": [r["lab__name"] for r in m["by_lab"]], "values": [r["n"] for r in m["by_lab"]],
                             "horizontal": True, "label": "检测批次"},
            "batches-towns": {"labels": [r["town__name"] for r in m["by_town"]], "values": [r["n"] for r in m["by_town"]],
                              "horizontal": True, "label": "检测批次"},
            "batches-sections": {"type": "doughnut", "labels": [sections.get(r["section"], r["section"] or "—")
                                                                 for r in m["by_section"]],
                                 "values": [r["n"] for r in m["by_section"]]},
            "vouchers": {"type": "doughnut", "labels": ["已抵扣（元）", "未使用（元）"],
                         "values": [float(m["voucher_used"]), max(float(m["voucher_granted"] - m["voucher_used"]), 0)]},
        },
    })


def _xlsx(request):
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("仪器预约")
    spreadsheets.append(ws, ["预约号", "统一社会信用代码", "企业名称", "镇街", "实验室", "仪器", "开始", "结束", "检测内容",
                             "费用（元）", "创新券抵扣（元）", "状态", "渠道", "取消原因", "企业评价", "评价意见", "回访情况"])
    qs = _bookings(request).select_related("entity", "town", "instrument__lab").order_by("start")
    for b in qs:
        spreadsheets.append(ws, [b.pk, b.entity_id, b.entity.name, b.town.name, b.instrument.lab.name, b.instrument.name,
                                 local_time(b.start), local_time(b.end),
                                 b.purpose, float(b.price), float(b.voucher_amount), b.get_status_display(),
                                 b.get_channel_display(), b.cancel_reason, b.get_rating_display(), b.rating_comment,
                                 b.callback_note])
    ws = wb.create_sheet("检测批次")
    spreadsheets.append(ws, ["实验室", "报告编号", "统一社会信用代码", "企业名称", "镇街", "检测日期", "检测项目", "样品数", "结论"])
    for t in _batches(request).select_related("lab", "entity", "town").order_by("tested_on"):
        spreadsheets.append(ws, [t.lab.name, t.report_no, t.entity_id, t.entity.name, t.town.name, t.tested_on, t.items,
                                 t.samples, t.get_conclusion_display()])
    ws = wb.create_sheet("创新券")
    spreadsheets.append(ws, ["年度", "统一社会信用代码", "企业名称", "额度（元）", "抵扣比例", "已抵扣（元）"])
    for v in _vouchers(request).select_related("entity").order_by("year", "entity_id"):
        spreadsheets.append(ws, [v.year, v.entity_id, v.entity.name, float(v.budget), float(v.share),
                                 float(actions.voucher_used(v))])
    ws = wb.create_sheet("候补")
    spreadsheets.append(ws, ["统一社会信用代码", "企业名称", "镇街", "实验室", "仪器", "开始", "时段数", "检测内容", "登记时间",
                             "状态", "约上的预约号", "说明"])
    for w in _waits(request).select_related("entity", "town", "instrument__lab").order_by("start", "created_at", "id"):
        spreadsheets.append(ws, [w.entity_id, w.entity.name, w.town.name, w.instrument.lab.name, w.instrument.name,
                                 local_time(w.start), w.slots, w.purpose,
                                 local_time(w.created_at), w.get_now_status_display(),
                                 w.booking_id, w.note])
    ws = wb.create_sheet("送检")
    spreadsheets.append(ws, ["委托号", "统一社会信用代码", "企业名称", "镇街", "实验室", "样品", "样品数量", "检测项目", "检测依据",
                             "委托时间", "状态", "收样时间", "样品状态", "费用（元）", "创新券抵扣（元）", "报告编号", "结论",
                             "签发时间", "检后样品", "样品退回或处置时间", "样品退回或处置说明", "拒收或撤回原因", "企业评价",
                             "评价意见", "回访情况", "复检的原委托号", "留样期至", "费用由实验室承担"])
    orders = _orders(request).select_related("entity", "town", "lab").order_by("created_at", "id")
    for o in orders:
        spreadsheets.append(ws, [o.pk, o.entity_id, o.entity.name, o.town.name, o.lab.name, o.sample_name, o.samples,
                                 o.items, o.standard, local_time(o.created_at), o.get_status_display(), local_time(o.received_at),
                                 o.condition, float(o.price) if o.price is not None else None, float(o.voucher_amount),
                                 o.report_no, o.get_conclusion_display(), local_time(o.issued_at),
                                 o.get_after_test_display(), local_time(o.samples_out_at), o.samples_out_note, o.closed_reason,
                                 o.get_rating_display(), o.rating_comment, o.callback_note, o.retest_of_id,
                                 o.retain_until, "是" if o.fee_by_lab else ""])
    ws = wb.create_sheet("送检流转记录")
    spreadsheets.append(ws, ["委托号", "时间", "环节", "经办人", "说明"])
    for ev in (SampleEvent.objects.filter(order__in=orders).select_related("by").order_by("order_id", "at", "id")):
        spreadsheets.append(ws, [ev.order_id, local_time(ev.at), ev.get_action_display(), person(ev.by, "企业"), ev.note])
    return audited_xlsx(request, wb, "labs", f"共享实验室预约、检测批次和创新券 {qs.count()} 条预约")


# the staff member's booking-for-a-firm form, kept in the session when it is refused (one redirect)
BOOK_FOR_KEPT = "lab-book-for"
BOOK_FOR_FIELDS = ("uscc", "instrument", "day", "time", "slots", "purpose", "voucher", "wait")


@staff_required
def lab(request, code: str):
    lab = get_object_or_404(Lab.objects.select_related("town", "owner"), code=code)
    bookings = _bookings(request).filter(instrument__lab=lab).select_related("entity", "instrument", "batch")
    upcoming = bookings.filter(status__in=ACTIVE).order_by("start")
    # the waits that a cancellation could still serve, each with its place in its slot's queue
    # (counted over every township's waits: the queue is one, whoever may see whom)
    open_waits = Waiting.objects.filter(instrument__lab=lab, status=Waiting.Status.WAITING,
                                        start__gte=timezone.now() + dt.timedelta(hours=FREE_CANCEL_HOURS))
    places: dict[tuple, int] = {}
    place = {}
    for pk, instrument_id, start in open_waits.order_by("created_at", "id").values_list("pk", "instrument_id", "start"):
        places[instrument_id, start] = place[pk] = places.get((instrument_id, start), 0) + 1
    waits = list(scope.filter_by_town(open_waits, request.user).select_related("entity", "instrument")
                 .order_by("start", "created_at", "id")[:100])
    for w in waits:
        w.place = place[w.pk]
    orders = _orders(request).filter(lab=lab).select_related("entity")
    instruments = list(lab.instruments.all())
    trained = (scope.filter_by_town(Qualification.objects.filter(instrument__lab=lab), request.user)
               .select_related("entity", "instrument").order_by("instrument__code", "revoked_at", "-until"))
    return render(request, "web/lab.html", {
        "training": [i for i in instruments if i.needs_training], "qualifications": trained[:200],
        "next_year": timezone.localdate() + dt.timedelta(days=365),
        "open_orders": orders.filter(status__in=actions.OPEN_ORDERS).order_by("created_at", "id")[:100],
        "closed_orders": orders.exclude(status__in=actions.OPEN_ORDERS).order_by("-created_at", "-id")[:30],
        # reports issued, the samples still here: to be handed back or disposed of, oldest first
        "held_samples": queries.samples_held(orders).select_related("lab", "entity").order_by("issued_at", "id")[:100],
        "lab": lab, "instruments": instruments, "upcoming": upcoming[:100], "waits": waits,
        "recent": bookings.exclude(status__in=ACTIVE).order_by("-start")[:50],
        "conclusions": TestBatch.Conclusion.choices, "today": timezone.localdate(), "now": timezone.now(),
        "contact": masking.value(lab.contact_phone) if lab.contact_phone else "",
        "can_write": scope.can_write(request.user), "max_slots": actions.MAX_SLOTS,
        "kept": _kept(request, code), "closures": queries.closures(lab, timezone.localdate()),
        "can_close": _can_close(request.user, lab),
    })


def _can_close(user, lab: Lab) -> bool:
    """Administrators, and the officers of the lab's township: closing cancels every
    township's firms' bookings there."""
    role = scope.role_of(user)
    return role == scope.Role.ADMIN or (role == scope.Role.OFFICER and scope.town_of(user) == lab.town_id)


def _lab_to_close(request, code: str) -> Lab:
    lab = get_object_or_404(Lab, code=code)
    if not _can_close(request.user, lab):
        raise PermissionDenied("只有局管理员或实验室所在镇街的工作人员可以登记停开放")
    return lab


@staff_required(write=True)
@require_POST
def closure_add(request, code: str):
    lab = _lab_to_close(request, code)
    post = request.POST
    try:
        first, last = dt.date.fromisoformat(post.get("first_day", "")), dt.date.fromisoformat(post.get("last_day", ""))
    except ValueError:
        messages.error(request, "请填写停开放的首日和末日")
        return redirect("lab", code=code)
    instrument = lab.instruments.filter(pk=post.get("instrument")).first() if post.get("instrument") else None
    months = int(post.get("months") or 0) if (post.get("months") or "0").isdigit() else 0
    try:
        if months:
            if first != last:
                raise actions.LabActionError("按月重复的停开放只登记一天：首日和末日请填同一天")
            closures, cancelled, ended = actions.do_close_monthly(lab, first, months, post.get("reason", ""),
                                                                  instrument=instrument, by=request.user)
            what = f"{actions.rhythm(first)}，共 {len(closures)} 天（至 {closures[-1].first_day:%Y-%m-%d}）"
        else:
            _, cancelled, ended = actions.do_close(lab, first, last, post.get("reason", ""), instrument=instrument,
                                                   by=request.user)
            what = ""
    except actions.LabActionError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"已登记停开放{'：' + what if what else ''}；取消预约 {cancelled} 个、结束候补 {ended} 个，"
                                  f"已告知企业")
    return redirect("lab", code=code)


@staff_required(write=True)
@require_POST
def closure_remove(request, code: str, closure_id: int):
    lab = _lab_to_close(request, code)
    actions.do_reopen(get_object_or_404(lab.closures, pk=closure_id))
    messages.success(request, "已撤销停开放，这些日子可以重新预约（已取消的预约不会恢复）")
    return redirect("lab", code=code)


def _kept(request, code: str) -> dict | None:
    """The staff booking form that was refused on this lab's page a moment ago, as typed."""
    kept = request.session.pop(BOOK_FOR_KEPT, None)
    return kept if kept and kept.get("lab") == code else None


@staff_required(write=True)
@require_POST
def booking_act(request, booking_id: int):
    b = _bookings(request).filter(pk=booking_id).select_related("instrument__lab").first()
    if b is None:
        raise Http404("没有这次预约，或不属于您的范围")
    post = request.POST
    try:
        if post.get("action") == "cancel":
            actions.do_cancel(b, post.get("reason", ""), by=request.user, staff=True, tell=True)
            messages.success(request, "已取消预约，时段和创新券额度已退回，并告知企业原因")
        elif post.get("action") == "confirm":
            actions.do_confirm(b, by=request.user)
            messages.success(request, "已确认预约，并告知企业")
        elif post.get("action") == "decline":
            actions.do_decline(b, post.get("reason", ""), by=request.user)
            messages.success(request, "已不予确认，预约取消，并告知企业原因")
        elif post.get("action") == "callback":
            actions.do_callback(b, post.get("note", ""), by=request.user)
            messages.success(request, "已登记回访")
        elif post.get("action") == "batch":
            files = attachments.checked(request.FILES.getlist("report"), what="每个检测批次")
            tested_on = dt.date.fromisoformat(post.get("tested_on", ""))
            actions.do_record_batch(b, tested_on, post.get("items", ""), int(post.get("samples") or 0),
                                    post.get("report_no", ""), post.get("conclusion", ""),
                                    report=files[0] if files else None, by=request.user)
            messages.success(request, "已登记检测批次")
        else:
            messages.error(request, "请选择要办理的事项")
    except ValueError as e:  # LabActionError, AttachmentError, a date or number that is not one
        messages.error(request, str(e) if isinstance(e, actions.LabActionError | attachments.AttachmentError)
                       else "检测日期或样品数无法识别")
    return redirect("lab", code=b.instrument.lab.code)


def _firm(user, text: str):
    """The firm a caller names by its credit code or by (part of) its name, if exactly one the
    user may see has it; else None and why."""
    text = text.strip()
    if len(text) == 18 and text.isalnum():
        return scope.entity_in_form(user, text)
    if len(text) < 2:
        return None, "请填写企业的统一社会信用代码或名称"
    found = list(scope.entities(user).filter(name__contains=text).order_by("name")[:3])
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"您负责的范围内没有名称含“{text[:30]}”的主体"
    names = "、".join(e.name for e in found[:2])
    return None, f"名称含“{text[:30]}”的主体不止一家（{names}…），请填写统一社会信用代码或更完整的名称"


@staff_required(write=True)
@require_POST
def book_for(request, code: str):
    """A staff member books an instrument for a firm that called or came to a service station
    (工作人员代约), or, where the slot is full and they ask for it, puts the firm on its waiting
    list; the firm is told in writing either way. What was refused comes back filled in, with
    the reason, so that only the wrong field is typed again."""
    lab = get_object_or_404(Lab, code=code)
    post = request.POST

    def refused(why: str):
        messages.error(request, why)
        request.session[BOOK_FOR_KEPT] = {"lab": code, **{k: post.get(k, "")[:500] for k in BOOK_FOR_FIELDS}}
        return redirect("lab", code=code)

    entity, why = _firm(request.user, post.get("uscc", ""))
    inst = lab.instruments.filter(pk=post["instrument"]).first() if post.get("instrument", "").isdigit() else None
    if entity is None or inst is None:
        return refused(why or "请选择本实验室的仪器")
    try:
        start = dt.datetime.combine(dt.date.fromisoformat(post.get("day", "")), dt.time.fromisoformat(post.get("time", "")))
        slots = int(post.get("slots") or 1)
    except ValueError:
        return refused("日期、开始时间或时段数无法识别（如 2026-12-08、09:00、1）")
    voucher = post.get("voucher") != "no"
    try:
        try:
            made = actions.do_book(entity, inst, start, slots, post.get("purpose", ""), channel=Booking.Channel.STAFF,
                                   by=request.user, use_voucher=voucher)
            done = f"已为 {entity.name} 预约 {timezone.localtime(made.start):%Y-%m-%d %H:%M} 起的时段，费用 {made.price} 元"
        except actions.SlotTaken:
            if post.get("wait") != "yes":
                raise
            made = actions.do_wait(entity, inst, start, slots, post.get("purpose", ""), use_voucher=voucher, by=request.user)
            done = f"该时段已约满，已为 {entity.name} 登记候补"
    except actions.LabActionError as e:
        return refused(str(e))
    told = actions.tell_staff_made(made)
    messages.success(request, done + ("，并将以短信或邮件告知企业" if told else "。企业没有可用的手机或邮箱，请当面或电话告知"))
    return redirect("lab", code=code)


@staff_required(write=True)
@require_POST
def voucher_grant(request):
    if scope.role_of(request.user) != scope.Role.ADMIN:
        raise PermissionDenied("只有局管理员可以发放创新券")
    post = request.POST
    entity, why = scope.entity_in_form(request.user, post.get("uscc", ""))
    if entity is None:
        messages.error(request, why)
        return redirect("labs")
    try:
        year = int(post.get("year") or timezone.localdate().year)
        v = actions.do_grant_voucher(entity, year, post.get("budget", ""), post.get("share") or "0.5", by=request.user)
        messages.success(request, f"已为 {entity.name} 发放 {v.year} 年度创新券 {v.budget} 元")
    except (actions.LabActionError, ValueError) as e:
        messages.error(request, str(e) if isinstance(e, actions.LabActionError) else "年度应为数字")
    return redirect("labs")


@staff_required
def report_file(request, batch_id: int):
    t = _batches(request).filter(pk=batch_id).first()
    if t is None or not t.report_sha256:
        raise Http404("没有这份报告")
    return FileResponse(attachments.open_stored(t.report_sha256), filename=t.report_name,
                        content_type="application/pdf")


# --- send-in test orders (送检) -----------------------------------------------------------------


def _order(request, order_id: int) -> SampleOrder:
    o = _orders(request).filter(pk=order_id).select_related("lab", "entity", "town", "batch").first()
    if o is None:
        raise Http404("没有这份送检委托，或不属于您的范围")
    return o


@staff_required
def order(request, order_id: int):
    o = _order(request, order_id)
    return render(request, "web/lab_order.html", {
        "o": o, "events": o.events.select_related("by"), "can_write": scope.can_write(request.user),
        "conclusions": TestBatch.Conclusion.choices, "today": timezone.localdate(),
        "own_result": o.tested_by_id == request.user.pk,
    })


@staff_required(write=True)
@require_POST
def order_act(request, order_id: int):
    """The lab's steps on a send-in order: receive or refuse the samples, enter the result with
    the report, (another person) sign it off or send it back, and hand the samples back or
    dispose of them."""
    o = _order(request, order_id)
    post, act = request.POST, request.POST.get("action")
    try:
        if act == "receive":
            actions.do_receive(o, post.get("condition", ""), post.get("price", ""), by=request.user)
            messages.success(request, "已收样，已告知企业费用")
        elif act == "reject":
            actions.do_reject(o, post.get("reason", ""), by=request.user)
            messages.success(request, "已拒收，已告知企业原因")
        elif act == "result":
            files = attachments.checked(request.FILES.getlist("report"), what="每份报告")
            actions.do_result(o, dt.date.fromisoformat(post.get("tested_on", "")), post.get("conclusion", ""),
                              post.get("report_no", ""), files[0] if files else None, by=request.user)
            messages.success(request, "已录入检测结果，待另一人审核签发")
        elif act == "callback":
            actions.do_callback(o, post.get("note", ""), by=request.user)
            messages.success(request, "已登记回访")
        elif act in ("approve", "return"):
            actions.do_review(o, act == "approve", post.get("note", ""), by=request.user)
            messages.success(request, "报告已签发，已告知企业" if act == "approve" else "已退回重检")
        elif act == "samples_out":
            o = actions.do_samples_out(o, post.get("note", ""), by=request.user)
            messages.success(request, "已登记样品退回，已告知企业" if o.after_test == SampleOrder.AfterTest.RETURN
                             else "已登记样品处置")
        else:
            messages.error(request, "请选择要办理的事项")
    except ValueError as e:  # LabActionError, AttachmentError, a date that is not one
        messages.error(request, str(e) if isinstance(e, actions.LabActionError | attachments.AttachmentError)
                       else "检测日期无法识别")
    return redirect("lab-order", order_id=o.pk)


@staff_required
def order_report(request, order_id: int):
    o = _order(request, order_id)
    if not o.report_sha256:
        raise Http404("这份委托还没有报告")
    return FileResponse(attachments.open_stored(o.report_sha256), filename=o.report_name, content_type="application/pdf")


@staff_required(write=True)
@require_POST
def order_for(request, code: str):
    """A staff member enters a send-in order for a firm that called or came to a station; the
    firm is told in writing."""
    lab = get_object_or_404(Lab, code=code)
    post = request.POST
    entity, why = _firm(request.user, post.get("uscc", ""))
    if entity is None:
        messages.error(request, why)
        return redirect("lab", code=code)
    try:
        o = actions.do_order(entity, lab, post.get("sample_name", ""), post.get("samples", ""), post.get("items", ""),
                             post.get("standard", ""), post.get("after_test", "return"),
                             use_voucher=post.get("voucher") != "no", channel=Booking.Channel.STAFF, by=request.user)
    except actions.LabActionError as e:
        messages.error(request, str(e))
        return redirect("lab", code=code)
    messages.success(request, f"已为 {entity.name} 登记送检（委托号 {o.pk}）")
    return redirect("lab-order", order_id=o.pk)


# --- trained users (上机资格) ---------------------------------------------------------------------


@staff_required(write=True)
@require_POST
def qualify(request, code: str):
    """The lab's staff record a firm trained on an instrument that needs it; the firm is told."""
    lab = get_object_or_404(Lab, code=code)
    post = request.POST
    entity, why = _firm(request.user, post.get("uscc", ""))
    inst = lab.instruments.filter(pk=post["instrument"]).first() if post.get("instrument", "").isdigit() else None
    if entity is None or inst is None:
        messages.error(request, why or "请选择本实验室需培训上机的仪器")
        return redirect("lab", code=code)
    try:
        q = actions.do_qualify(entity, inst, dt.date.fromisoformat(post.get("until", "")), post.get("note", ""),
                               by=request.user)
    except ValueError as e:
        messages.error(request, str(e) if isinstance(e, actions.LabActionError) else "有效期无法识别（如 2027-12-31）")
    else:
        messages.success(request, f"已登记 {entity.name} 的“{inst.name}”上机资格，有效期至 {q.until:%Y-%m-%d}，并告知企业")
    return redirect("lab", code=code)


@staff_required(write=True)
@require_POST
def unqualify(request, qualification_id: int):
    q = scope.filter_by_town(Qualification.objects.all(), request.user).filter(pk=qualification_id).select_related(
        "instrument__lab").first()
    if q is None:
        raise Http404("没有这项上机资格，或不属于您的范围")
    try:
        actions.do_revoke(q, request.POST.get("reason", ""), by=request.user)
        messages.success(request, "已撤销上机资格，并告知企业；已有的预约如不保留，请另行取消")
    except actions.LabActionError as e:
        messages.error(request, str(e))
    return redirect("lab", code=q.instrument.lab.code)
