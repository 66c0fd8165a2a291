"""Staff pages for enterprise requests (企业诉求): the queue, intake at a station, one request
and its moves, the measures and ranking, the routing overrides. Views only: every change goes
through ``service_requests.actions``; who sees what through ``accounts.scope``."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets, text
from qifu.abnormal.models import Listing
from qifu.accounts import masking, scope
from qifu.accounts.decorators import staff_required
from qifu.accounts.models import AuditEvent, StaffProfile
from qifu.engine.requests.categories import BY_CODE, CATEGORIES
from qifu.engine.requests.workflow import LABELS, MOVE_LABELS, Move, State, allowed
from qifu.registry.models import Township
from qifu.service_requests import actions, attachments, queries
from qifu.service_requests.models import Channel, Department, RoutingOverride, Satisfaction, ServiceRequest
from qifu.web import downloads
from qifu.web.downloads import audited_list, audited_xlsx

Role = StaffProfile.Role
STAFF_MOVES = {  # what each role may do to a request it can see
    Role.ADMIN: set(Move) - {Move.CONFIRM, Move.AUTO_CLOSE, Move.REOPEN},
    Role.DEPARTMENT: {Move.SIGN, Move.START, Move.WAIT, Move.RESUME, Move.ANSWER, Move.TRANSFER, Move.MERGE},
    Role.OFFICER: {Move.RESUME, Move.MERGE},
    Role.LEADER: set(),
}


def _visible(user):
    return scope.filter_requests(ServiceRequest.objects.select_related("department", "town", "entity"), user)


def _filtered(request):
    qs = _visible(request.user)
    f = {k: text.CONTROL.sub("", request.GET.get(k, "")).strip() for k in
         ("status", "category", "department", "town", "overdue", "q")}
    if f["status"] == "open":
        qs = qs.exclude(status=State.CLOSED)
    elif f["status"] in State.__members__.values() or f["status"] in [s.value for s in State]:
        qs = qs.filter(status=f["status"])
    if f["category"] in BY_CODE:
        qs = qs.filter(category=f["category"])
    if f["department"].isdigit():
        qs = qs.filter(department_id=int(f["department"]))
    if f["town"]:
        qs = qs.filter(town_id=f["town"])
    if f["overdue"] == "1":
        qs = qs.filter(overdue=True).exclude(status=State.CLOSED)
    if f["q"]:
        qs = qs.filter(Q(number__icontains=f["q"]) | Q(text__contains=f["q"]) | Q(entity__name__contains=f["q"])
                       | Q(entity__uscc=f["q"].upper()))
    return qs.order_by("-submitted_at", "-id"), f


@staff_required
def queue(request):
    qs, f = _filtered(request)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "web/requests.html", {
        "page": page, "f": f, "query": query.urlencode(), "states": [(s.value, LABELS[s]) for s in State],
        "long_list": page.paginator.count > downloads.LONG_LIST,
        "categories": CATEGORIES, "departments": Department.objects.filter(active=True),
        "towns": [] if scope.town_of(request.user) else Township.objects.all(),
        "can_intake": scope.role_of(request.user) in (Role.ADMIN, Role.OFFICER),
        "now": timezone.now(),
    })


HEADER = ["诉求编号", "受理时间", "渠道", "主体", "统一社会信用代码", "所属镇街", "类别", "承办部门", "状态", "签收期限",
          "答复期限", "是否超期", "满意度", "诉求内容（已脱敏）"]


@staff_required
def export(request, fmt: str = "xlsx"):
    """The queue as filtered, as an Excel workbook or CSV (``fmt``): plain rows, the request's
    text masked, the export audited."""
    qs, f = _filtered(request)
    shown = {name: dict(ServiceRequest._meta.get_field(name).flatchoices)
             for name in ("channel", "category", "status", "satisfaction")}
    local = downloads.local_time
    rows = ([number, local(submitted), shown["channel"].get(channel, channel), name or "", uscc or "", town or "",
             shown["category"].get(category, category), department or "", shown["status"].get(status, status),
             local(sign_due), local(answer_due), "是" if overdue else "否",
             shown["satisfaction"].get(satisfaction, satisfaction), masking.text(body)]
            for number, submitted, channel, name, uscc, town, category, department, status, sign_due, answer_due,
            overdue, satisfaction, body in qs.values_list(
                "number", "submitted_at", "channel", "entity__name", "entity_id", "town__name", "category",
                "department__name", "status", "sign_due", "answer_due", "overdue", "satisfaction", "text",
            ).iterator(chunk_size=2000))
    filters = json.dumps({k: v for k, v in f.items() if v}, ensure_ascii=False)
    return audited_list(request, fmt, "企业诉求", HEADER, rows, "requests",
                        lambda n, kind: f"企业诉求 {n} 行{kind}；筛选 {filters}")


@staff_required(write=True)
def intake(request):
    """A station's staff record a request for an entity they find by name or credit code."""
    role = scope.role_of(request.user)
    if role not in (Role.ADMIN, Role.OFFICER):
        raise PermissionDenied("只有驿站工作人员和局管理员可以登记诉求")
    q = text.CONTROL.sub("", request.GET.get("q", "")).strip()
    found = []
    if q:
        base = scope.entities(request.user)
        found = list(base.filter(Q(uscc=q.upper()) | Q(name__contains=q)).order_by("name")[:20])
    entity = None
    uscc = request.POST.get("uscc") or request.GET.get("uscc")
    if uscc:
        entity = scope.entity_or_403(request.user, uscc)
    if request.method == "POST":
        try:
            req = actions.do_submit_request(
                text=request.POST.get("text", ""), channel=request.POST.get("channel") or Channel.STATION,
                actor=actions.Actor.staff(request.user), entity=entity,
                town_id=entity.town_id if entity else scope.town_of(request.user),
                category=request.POST.get("category") or None,
                contact_name=request.POST.get("contact_name", ""), contact_phone=request.POST.get("contact_phone", ""))
            attachments.save_all(req, request.FILES.getlist("files"))
        except (actions.RequestError, attachments.AttachmentError) as e:
            messages.error(request, str(e))
        else:
            messages.success(request, f"诉求已登记，编号 {req.number}，已转{req.department.name}")
            return redirect("request-detail", number=req.number)
    return render(request, "web/request_new.html", {
        "q": q, "found": found, "entity": entity, "categories": CATEGORIES,
        "channels": [(c.value, c.label) for c in (Channel.STATION, Channel.VISIT, Channel.HOTLINE)],
    })


def _get(request, number: str) -> ServiceRequest:
    try:
        return _visible(request.user).get(number=number)
    except ServiceRequest.DoesNotExist:
        if ServiceRequest.objects.filter(number=number).exists():
            raise PermissionDenied("这条诉求不归您所在的部门或镇街") from None
        raise Http404("没有这条诉求") from None


@staff_required
def detail(request, number: str):
    req = _get(request, number)
    role = scope.role_of(request.user)
    reveal = request.GET.get("reveal") == "1" and scope.can_see_contacts(request.user)
    if reveal:
        scope.audit(request, AuditEvent.Action.VIEW_CONTACT, uscc=req.entity_id or "", detail=f"诉求 {req.number} 联系人")
    moves = [m for m in allowed(req.status) if m in STAFF_MOVES.get(role, set())]
    duplicates = actions.find_duplicates(req.entity, req.text, now=req.submitted_at, exclude=req.pk) \
        if req.status != State.CLOSED else []
    return render(request, "web/request_detail.html", {
        "r": req, "events": req.events.select_related("user"), "files": req.attachments.all(),
        "listing": Listing.objects.filter(objection=req).first(),  # an objection to an abnormal listing
        "moves": [(m.value, MOVE_LABELS[m]) for m in moves], "state_label": LABELS[State(req.status)],
        "text": req.text if reveal else masking.text(req.text),
        "contact": {"name": req.contact_name if reveal else masking.name(req.contact_name),
                    "phone": req.contact_phone if reveal else masking.phone(req.contact_phone)},
        "can_reveal": scope.can_see_contacts(request.user) and bool(req.contact_name or req.contact_phone),
        "departments": Department.objects.filter(active=True).exclude(pk=req.department_id),
        "categories": CATEGORIES, "duplicates": duplicates,
        "can_escalate": role in (Role.ADMIN, Role.LEADER) and req.status != State.CLOSED,
        "can_write": scope.can_write(request.user),
        "can_categorise": role in (Role.ADMIN, Role.DEPARTMENT, Role.OFFICER) and req.status != State.CLOSED,
        "can_callback": role in (Role.ADMIN, Role.OFFICER) and req.callback_needed and not req.callback_done,
        "can_teach": role == Role.ADMIN and bool(req.answer),
        "now": timezone.now(),
    })


@staff_required
@require_POST
def move(request, number: str):
    req = _get(request, number)
    role = scope.role_of(request.user)
    actor = actions.Actor.staff(request.user)
    what = request.POST.get("move", "")
    try:
        if what == "escalate":
            if role not in (Role.ADMIN, Role.LEADER):
                raise PermissionDenied("只有局管理员和领导可以督办")
            actions.do_escalate(req, actor, request.POST.get("note", ""))
        elif what == "category":
            actions.do_set_category(req, request.POST.get("category", ""), actor)
        elif what == "callback":
            if role not in (Role.ADMIN, Role.OFFICER):
                raise PermissionDenied
            actions.do_callback(req, actor, request.POST.get("note", ""))
        else:
            try:
                m = Move(what)
            except ValueError:
                raise actions.RequestError("未知的操作") from None
            if m not in STAFF_MOVES.get(role, set()):
                raise PermissionDenied(f"您的角色不能“{MOVE_LABELS[m]}”")
            department = Department.objects.filter(pk=request.POST.get("department") or 0).first()
            into = _visible(request.user).filter(number=request.POST.get("into", "")).first()
            actions.do_move(req, m, actor, note=request.POST.get("note", ""), answer=request.POST.get("answer", ""),
                            department=department, into=into)
    except actions.IllegalMove as e:
        messages.error(request, str(e))
    except actions.RequestError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "已记录")
    return redirect("request-detail", number=req.number)


@staff_required
def attachment(request, number: str, file_id: int):
    req = _get(request, number)
    item = get_object_or_404(req.attachments, pk=file_id)
    return FileResponse(attachments.open_file(item), content_type=item.content_type, as_attachment=True,
                        filename=item.name)


@staff_required
def measures(request):
    cube = queries.cube(_visible(request.user))
    ranking = queries.rank(queries.roll(cube, "department__name"))
    overall = queries.roll(cube, None)
    ctx = {
        "overall": overall[0] if overall else queries.Measures("合计", *[0] * 11),
        "ranking": ranking, "towns": queries.roll(cube, "town__name"),
        "categories": queries.roll(cube, "category", {c.code: c.name for c in CATEGORIES}), "weights": queries.WEIGHTS,
        "charts": {
            "departments": {"labels": [m.label for m in ranking], "horizontal": True,
                            "values": [round(m.score, 1) if m.score is not None else 0 for m in ranking]},
            "satisfaction": {"type": "doughnut", "labels": [label for _, label in Satisfaction.choices],
                             "values": queries.satisfaction_counts(cube)},
        },
    }
    if request.GET.get("format") == "xlsx":
        return _measures_xlsx(request, ctx)
    return render(request, "web/request_measures.html", ctx)


def _measures_xlsx(request, ctx) -> HttpResponse:
    wb = spreadsheets.workbook()
    header = ["", "诉求数", "办结", "办结率", "按时签收率", "按时答复率", "满意率", "重办率", "超期未结", "综合得分"]
    for title, rows in (("部门排名", ctx["ranking"]), ("按镇街", ctx["towns"]), ("按类别", ctx["categories"]),
                        ("合计", [ctx["overall"]])):
        ws = wb.create_sheet(title)
        ws.append(header)
        for m in rows:
            spreadsheets.append(ws, [m.label, m.total, m.closed, m.closure_rate, m.signing_rate, m.answer_rate,
                                     m.satisfaction_rate, m.reopen_rate, m.overdue_open, m.score])
    return audited_xlsx(request, wb, "request-measures", "企业诉求考核指标")


@staff_required
def routing(request):
    """The overrides table: a phrase that always means a category (administrators edit it)."""
    admin = scope.role_of(request.user) == Role.ADMIN
    if request.method == "POST":
        if not admin:
            raise PermissionDenied("只有局管理员可以修改分类规则")
        if request.POST.get("delete"):
            RoutingOverride.objects.filter(pk=request.POST["delete"]).delete()
        else:
            phrase = text.CONTROL.sub("", request.POST.get("phrase", "")).strip()[:50]
            category = request.POST.get("category", "")
            if len(phrase) < 2 or category not in BY_CODE:
                messages.error(request, "请填写至少两个字的短语，并选择类别")
            else:
                RoutingOverride.objects.update_or_create(phrase=phrase, defaults={
                    "category": category, "created_by": request.user})
                messages.success(request, f"“{phrase}”以后一律分到{BY_CODE[category].name}")
        return redirect("request-routing")
    trial = None
    if q := text.CONTROL.sub("", request.GET.get("try", "")).strip():
        from qifu.service_requests.routing import route

        trial = route(q)
    return render(request, "web/request_routing.html", {
        "overrides": RoutingOverride.objects.all(), "categories": CATEGORIES, "admin": admin, "trial": trial,
        "try": q})


@staff_required(write=True)
@require_POST
def teach(request, number: str):
    """Turn a good answer into a proposed assistant entry, for an administrator to approve."""
    from qifu.assistant.actions import do_propose_entry

    req = _get(request, number)
    if scope.role_of(request.user) != Role.ADMIN or not req.answer:
        raise PermissionDenied
    try:
        do_propose_entry(question=request.POST.get("question") or masking.text(req.text)[:200],
                         answer=request.POST.get("answer") or req.answer, source=f"诉求 {req.number}",
                         user=request.user)
    except ValueError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, "已加入助手知识库待审核")
    return redirect("request-detail", number=req.number)
