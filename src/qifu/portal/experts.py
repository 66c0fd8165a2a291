"""Expert partners in the portal (科创伙伴): a firm states a technical need and follows it; it
sees the experts confirmed for it (names only of experts who agreed to be shown) but no
contact details: the county's technology broker arranges the meeting."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from qifu.experts import actions
from qifu.experts.models import Achievement, Cooperation, Need, Pairing
from qifu.portal.views import current_entity, portal_required
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


@require_GET
def achievements_page(request):
    """The results library (科技成果), its public part: searched in Chinese; a signed-in firm asks
    to know more about one (我想了解), which becomes a need the broker takes up."""
    q = request.GET.get("q", "").strip()[:100]
    entity = current_entity(request)
    asked = asked_about(entity) if entity else set()
    return render(request, "portal/achievements.html", {
        "entity": entity, "q": q,
        "rows": [(a, w, achievement_expert(a) or "", a.pk in asked) for a, w in library(q)],
    })


def library(q: str) -> list[tuple[Achievement, tuple]]:
    """The public results library as a firm sees it: searched for ``q`` (with the words each
    matched), or every public achievement by its code (the first 200)."""
    if q:
        return actions.search_achievements(q, 30, public_only=True)
    return [(a, ()) for a in Achievement.objects.filter(public=True).select_related("expert").order_by("code")[:200]]


def asked_about(entity) -> set[int]:
    """The achievements ``entity`` asked about whose need is not closed."""
    return set(Need.objects.filter(entity=entity, achievement__isnull=False).exclude(status=Need.Status.CLOSED)
               .values_list("achievement_id", flat=True))


def achievement_expert(a: Achievement) -> str | None:
    """An achievement's contact expert as firms see them: by name only with their consent."""
    return f"{a.expert.name}（{a.expert.institution}）" if a.expert and a.expert.consent else None


@portal_required
@require_POST
def ask_about(request, code: str):
    a = get_object_or_404(Achievement, code=code, public=True)
    try:
        n = actions.do_ask_about(request.entity, a, request.POST.get("note", ""))
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
        return redirect(f"{reverse('portal:expert-achievements')}?{urlencode({'q': a.title[:30]})}")
    messages.success(request, f"已提交（需求 {n.number}）：科技部门会联系成果持有单位和专家，为您安排对接")
    return redirect("portal:experts")
