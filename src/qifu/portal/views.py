"""The enterprise portal: sign in with a one-time code, see and settle findings, self-check."""

from __future__ import annotations

import datetime as dt
from functools import wraps

from django.contrib import messages
from django.db.models import Count, Q
from django.http import FileResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from qifu.abnormal import actions as abnormal
from qifu.abnormal import documents
from qifu.abnormal import queries as abnormal_queries
from qifu.abnormal.models import Listing
from qifu.accounts.clients import client_ip
from qifu.caching import Expiring
from qifu.checks import single
from qifu.checks.models import Finding
from qifu.corrections import actions as corrections
from qifu.corrections.models import CorrectionNotice
from qifu.engine import season
from qifu.engine.requests.workflow import State
from qifu.experts.models import Cooperation
from qifu.inspections import actions as inspections
from qifu.inspections import queries as inspection_queries
from qifu.inspections.actions import EVIDENCE_FILES
from qifu.inspections.models import Evidence, Sample
from qifu.labs.actions import OPEN_ORDERS
from qifu.labs.models import ACTIVE, Booking, SampleOrder
from qifu.policies import queries as policy_queries
from qifu.portal import forms, signin
from qifu.projects.models import ChecklistItem, Phase
from qifu.registry.models import Entity
from qifu.service_requests import attachments
from qifu.service_requests.actions import AUTO_CLOSE_AFTER
from qifu.service_requests.models import ServiceRequest

SESSION_KEY = "portal_uscc"


def current_entity(request) -> Entity | None:
    uscc = request.session.get(SESSION_KEY)
    return _entity(uscc) if uscc else None


# The signed-in entity, kept a minute per process like the self-check's context
# (checks.single): the instant self-check asks on every change of a figure.
_ENTITIES: Expiring[Entity] = Expiring(ttl=60.0)


def _entity(uscc: str) -> Entity | None:
    return _ENTITIES.get(uscc, lambda: Entity.objects.select_related("town").filter(uscc=uscc).first())


def forget_entities() -> None:
    _ENTITIES.clear()


def portal_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        entity = current_entity(request)
        if entity is None:
            return redirect("portal:login")
        request.entity = entity
        return view(request, *args, **kwargs)

    return wrapper


@require_http_methods(["GET", "POST"])
def login(request):
    form = {"uscc": request.POST.get("uscc", ""), "channel": request.POST.get("channel", "sms")}
    if request.method == "POST":
        try:
            sent = signin.request_code(form["uscc"], form["channel"], ip=client_ip(request))
        except signin.SignInError as e:
            messages.error(request, str(e))
        else:
            request.session["portal_pending"] = signin.uscc_mod.normalise(form["uscc"])
            messages.success(request, sent.message)
            return redirect("portal:verify")
    return render(request, "portal/login.html", {"form": form})


@require_http_methods(["GET", "POST"])
def verify(request):
    pending = request.session.get("portal_pending")
    if not pending:
        return redirect("portal:login")
    if request.method == "POST":
        try:
            entity = signin.verify(pending, request.POST.get("code", ""))
        except signin.SignInError as e:
            messages.error(request, str(e))
        else:
            request.session.cycle_key()
            request.session.pop("portal_pending", None)
            request.session[SESSION_KEY] = entity.uscc
            return redirect("portal:home")
    return render(request, "portal/verify.html", {"uscc": pending})


@require_POST
def logout(request):
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()
    return redirect("portal:login")


@portal_required
def home(request):
    entity = request.entity
    year = single.season_year()
    found = (Finding.objects.filter(entity=entity, report_year=year).exclude(severity="info")
             .prefetch_related("explanations").order_by("status", "rule_id"))
    notice = CorrectionNotice.objects.filter(entity=entity, report_year=year).order_by("-issued_on").first()
    policies_waiting = [m for m in policy_queries.for_entity(entity.uscc) if m.status in policy_queries.ACTIONABLE]
    bookings = (Booking.objects.filter(entity=entity, status__in=ACTIVE, start__gte=timezone.now())
                .select_related("instrument__lab").order_by("start")[:5])
    # send-in orders still with the lab, and reports issued in the last month not yet rated
    # (the firm downloads its report and rates the service on the labs page)
    orders = (SampleOrder.objects.filter(entity=entity)
              .filter(Q(status__in=OPEN_ORDERS)
                      | Q(status=SampleOrder.Status.ISSUED, rating="",
                          issued_at__gte=timezone.now() - dt.timedelta(days=30)))
              .select_related("lab").order_by("created_at")[:5])
    phases = (Phase.objects.filter(project__entity=entity)
              .filter(Q(state="rectifying") | Q(state="planned", items__kind="document", items__status="pending"))
              .select_related("project").distinct().order_by("project__code", "seq")
              .annotate(to_fix=Count("defects", filter=Q(defects__status="open"), distinct=True))[:5])
    inspections = (Phase.objects.filter(project__entity=entity, state="notified", inspection_on__gte=timezone.localdate())
                   .select_related("project").order_by("inspection_on")[:5])
    promised = (ChecklistItem.objects.filter(phase__project__entity=entity, status=ChecklistItem.Status.PROMISED)
                .select_related("phase__project").order_by("promised_until")[:5])
    # requests answered and waiting for the firm to confirm them (or ask again) before they
    # close on their own, and ended expert projects the firm has not rated
    answered = (ServiceRequest.objects.filter(entity=entity, status=State.ANSWERED, duplicate_of__isnull=True)
                .order_by("answered_at")[:5])
    for r in answered:
        r.closes_on = timezone.localdate(r.answered_at + AUTO_CLOSE_AFTER) if r.answered_at else None
    coops = (Cooperation.objects.filter(entity=entity, rated_at__isnull=True)
             .exclude(status=Cooperation.Status.ONGOING).order_by("agreed_on")[:5])
    every = abnormal_queries.for_entity(entity)
    listings = [x for x in every if x.standing]
    checks = inspection_queries.for_entity(entity.uscc)[:5]
    due = season.deadline(year)
    return render(request, "portal/home.html", {
        "listings": listings, "checks": checks, "past_listings": [x for x in every if not x.standing], "decide_workdays": abnormal.DECIDE_WITHIN_WORKDAYS,
        "entity": entity, "year": year, "findings": found, "notice": notice, "policies_waiting": policies_waiting,
        "lab_bookings": bookings, "lab_orders": orders, "answered": answered, "coops": coops,
        "phases_todo": phases, "inspections": inspections, "promised": promised,
        "today": timezone.localdate(), "evidence_files": EVIDENCE_FILES,
        "deadline": due, "past_deadline": timezone.localdate() > due,
        "open_count": sum(1 for f in found if f.status == "open"),
    })


@portal_required
@require_POST
def explain(request, finding_id: int):
    finding = get_object_or_404(Finding, pk=finding_id, entity=request.entity)
    try:
        corrections.explain(finding, request.POST.get("reason", ""))
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "已收到您的说明，工作人员会复核。")
    return redirect("portal:home")


@portal_required
def selfcheck(request):
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    entity = request.entity
    year = single.season_year()
    names = forms.names_for(entity.entity_type)
    problems, errors, checked = [], {}, False
    if request.method == "POST":
        values, errors = single.parse_figures({n: request.POST.get(n, "") for n in names})
        if not errors:
            problems = single.check(entity, year, values)
            checked = True
    else:
        values = single.report_values(single.stored_report(entity, year))
        single.prepare(entity, year)  # the checks the page makes as figures are typed start warm
    return render(request, "portal/selfcheck.html", {
        "entity": entity, "year": year, "groups": forms.groups_for(entity.entity_type, values, errors),
        "problems": problems, "errors": errors, "checked": checked,
    })


@portal_required
@require_POST
def abnormal_apply(request, listing_id: int):
    """The entity applies to come off the abnormal-operation list, once it has filed late, or
    saying how it can be reached at its registered address again."""
    x = get_object_or_404(Listing, pk=listing_id, entity=request.entity)
    try:
        abnormal.do_apply(x, statement=request.POST.get("statement", ""))
    except abnormal.ListingError as e:
        messages.error(request, str(e))
    else:
        by = abnormal.answer_by(timezone.localdate())
        messages.success(request, f"已提交移出申请（{x.number}），市场监管部门将在 {abnormal.DECIDE_WITHIN_WORKDAYS} 个工作日内"
                                  f"（{by.month}月{by.day}日前）办理并告知结果")
    return redirect(f"{reverse('portal:home')}#abnormal")


@portal_required
@require_POST
def inspection_correction(request, sample_id: int):
    """The entity says what it corrected after a spot check ordered it to, for the inspectors to
    check before the last day."""
    s = get_object_or_404(Sample, pk=sample_id, entity=request.entity)
    try:
        inspections.do_state_correction(s, request.POST.get("statement", ""))
    except inspections.InspectionError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "已告知检查人员，复查后以短信或邮件告知结果")
    return redirect(f"{reverse('portal:home')}#check-{s.pk}")


@portal_required
@require_POST
def inspection_more_time(request, sample_id: int):
    """The firm asks its inspectors for more time for a written check's documents."""
    s = get_object_or_404(Sample, pk=sample_id, entity=request.entity)
    try:
        to_day = dt.date.fromisoformat(request.POST.get("to_day", ""))
    except ValueError:
        messages.error(request, "请选择希望延长到哪一天")
        return redirect(f"{reverse('portal:home')}#check-{s.pk}")
    try:
        inspections.do_ask_more_time(s, to_day, request.POST.get("why", ""))
    except inspections.InspectionError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "已向检查人员申请延长，答复后以短信或邮件告知；答复前请按原期限准备材料")
    return redirect(f"{reverse('portal:home')}#check-{s.pk}")


@portal_required
@require_POST
def inspection_evidence(request, sample_id: int):
    """The firm sends the documents behind what its report published (or of a correction
    ordered), for its inspectors to read before they come."""
    s = get_object_or_404(Sample, pk=sample_id, entity=request.entity)
    try:
        sent = inspections.do_send_evidence(s, request.FILES.getlist("files"), request.POST.get("note", ""))
    except inspections.InspectionError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"已上传 {len(sent)} 份材料，检查人员可以看到")
    return redirect(f"{reverse('portal:home')}#check-{s.pk}")


@portal_required
def inspection_evidence_file(request, sample_id: int, evidence_id: int):
    """A document the firm sent, back to it."""
    e = get_object_or_404(Evidence, pk=evidence_id, sample_id=sample_id, sample__entity=request.entity)
    return FileResponse(attachments.open_stored(e.sha256), content_type=e.content_type, as_attachment=True,
                        filename=e.name)


@portal_required
def abnormal_decision(request, listing_id: int):
    """The entity's own written decision (决定书), to read or print."""
    x = get_object_or_404(Listing.objects.select_related("entity"), pk=listing_id, entity=request.entity)
    return render(request, "portal/abnormal_decision.html", {"d": documents.decision(x)})


@portal_required
def abnormal_ruling(request, listing_id: int, ruling_id: int):
    """The entity's own later decision (移出, 不予移出, 撤销), to read or print: the removal is
    what it shows a bank or a tender."""
    x = get_object_or_404(Listing.objects.select_related("entity"), pk=listing_id, entity=request.entity)
    r = get_object_or_404(x.rulings, pk=ruling_id)
    return render(request, "portal/abnormal_decision.html", {"d": documents.ruling(r)})


@portal_required
@require_POST
def abnormal_object(request, listing_id: int):
    """The entity objects to its listing (异议): an enterprise request, linked on the listing."""
    x = get_object_or_404(Listing, pk=listing_id, entity=request.entity)
    try:
        req = abnormal.do_object(x, request.POST.get("text", ""))
    except abnormal.ListingError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"已提交异议，诉求编号 {req.number}；核实后会告知您结果")
    return redirect(f"{reverse('portal:home')}#abnormal")
