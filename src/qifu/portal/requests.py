"""The enterprise's own requests in the portal: submit one (with attachments), follow it,
confirm it done or ask for it to be handled again within 15 days, and rate it."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from qifu.engine.requests.categories import CATEGORIES
from qifu.engine.requests.workflow import LABELS, Move, State
from qifu.portal.views import portal_required
from qifu.service_requests import actions, attachments
from qifu.service_requests.models import Channel, Satisfaction, ServiceRequest


@portal_required
def requests_page(request):
    entity = request.entity
    duplicates = []
    if request.method == "POST":
        text = request.POST.get("text", "")
        if not request.POST.get("confirmed"):
            duplicates = actions.find_duplicates(entity, text)
        if not duplicates:
            try:
                req = actions.do_submit_request(text=text, channel=Channel.PORTAL, actor=actions.ENTERPRISE,
                                                entity=entity, category=request.POST.get("category") or None,
                                                contact_name=request.POST.get("contact_name", ""),
                                                contact_phone=request.POST.get("contact_phone", ""))
                attachments.save_all(req, request.FILES.getlist("files"))
            except (actions.RequestError, attachments.AttachmentError) as e:
                messages.error(request, str(e))
            else:
                messages.success(request, f"已提交，诉求编号 {req.number}，由{req.department.name}承办")
                return redirect("portal:request", number=req.number)
    mine = ServiceRequest.objects.filter(entity=entity).select_related("department").order_by("-submitted_at")[:100]
    return render(request, "portal/requests.html", {
        "entity": entity, "requests": mine, "categories": CATEGORIES, "duplicates": duplicates,
        "draft": request.POST.get("text", "") if duplicates else "",
    })


def _own(request, number: str) -> ServiceRequest:
    req = ServiceRequest.objects.select_related("department").filter(number=number, entity=request.entity).first()
    if req is None:
        raise Http404("没有这条诉求")
    return req


@portal_required
def request_page(request, number: str):
    req = _own(request, number)
    return render(request, "portal/request.html", {
        "r": req, "state_label": LABELS[State(req.status)], "satisfactions": Satisfaction.choices,
        "can_rate": req.status in (State.ANSWERED, State.CLOSED) and not req.rated_at,
        "can_reopen": req.status in (State.ANSWERED, State.CLOSED) and req.duplicate_of_id is None,
        "events": req.events.exclude(move__in=["warn", "overdue"]),
    })


@portal_required
@require_POST
def request_act(request, number: str):
    req = _own(request, number)
    what = request.POST.get("do")
    try:
        if what == "rate":
            actions.do_rate(req, request.POST.get("satisfaction", ""), request.POST.get("comment", ""))
            messages.success(request, "感谢评价" + ("，服务中心会回访您" if request.POST.get("satisfaction") == "dissatisfied" else ""))
        elif what == "reopen":
            actions.do_move(req, Move.REOPEN, actions.ENTERPRISE, note=request.POST.get("note", "") or "企业要求重新办理")
            messages.success(request, "已要求重新办理")
        elif what == "resume":
            actions.do_move(req, Move.RESUME, actions.ENTERPRISE, note=request.POST.get("note", "") or "企业已补充")
            messages.success(request, "已告知承办部门，继续办理")
        else:
            messages.error(request, "未知的操作")
    except actions.IllegalMove as e:
        messages.error(request, str(e))
    except actions.RequestError as e:
        messages.error(request, str(e))
    return redirect("portal:request", number=req.number)
