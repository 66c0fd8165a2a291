"""Expert partners in the portal (科创伙伴): a firm states a technical need and follows it; it
sees the experts confirmed for it (names only of experts who agreed to be shown) but no
contact details: the county's technology broker arranges the meeting."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from qifu.experts import actions
from qifu.experts.models import Cooperation, Need, Pairing
from qifu.portal.views import portal_required
from qifu.service_requests.models import Satisfaction


def expert_shown(p: Pairing) -> str:
    e = p.expert
    return f"{e.name}（{e.institution} {e.title}）" if e.consent else f"{e.institution}的一位专家"


@portal_required
def needs_page(request):
    needs = list(Need.objects.filter(entity=request.entity).prefetch_related("pairings__expert")
                 .select_related("cooperation").order_by("-created_at"))
    rows = [(n, [expert_shown(p) for p in n.pairings.all() if p.status == Pairing.Status.CONFIRMED]) for n in needs]
    return render(request, "portal/experts.html", {"entity": request.entity, "rows": rows,
                                                   "grades": Satisfaction.choices})


@portal_required
@require_POST
def need_submit(request):
    post = request.POST
    try:
        n = actions.do_submit_need(request.entity, post.get("title", ""), post.get("text", ""), Need.Source.PORTAL,
                                   budget=post.get("budget") or None, urgent=bool(post.get("urgent")),
                                   confidential=bool(post.get("confidential")))
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
        return redirect("portal:experts")
    messages.success(request, f"需求 {n.number} 已提交，科技部门会为您对接合适的专家")
    return redirect("portal:experts")


@portal_required
@require_POST
def rate(request, coop_id: int):
    """The firm rates a cooperation project of its own once it has ended."""
    coop = Cooperation.objects.filter(pk=coop_id, entity=request.entity).first()
    if coop is None:
        raise Http404("没有这个合作项目")
    try:
        actions.do_rate(coop, request.POST.get("rating", ""), request.POST.get("comment", ""))
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
        return redirect("portal:experts")
    messages.success(request, "感谢评价，科技部门会看到您的意见")
    return redirect("portal:experts")
