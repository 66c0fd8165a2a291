"""The expert partner's own desk (专家工作台, `/expert/`): the needs staff confirmed them for,
with the firm, the need and the broker to call; their answer (willing, or declining with a
reason); the open needs in their line that they may offer to take (专家自荐: the need without
the firm's name, which they see once the broker confirms them); the visits they made; their
cooperation projects, with the milestones they reach and, once a project has ended, their side
of the feedback; whether they take new needs; and the firms they declare a tie to (利益回避),
whose needs they are never proposed for. An expert sees nothing else: no staff page, no firm's
contact details, no other expert's work. Views only: changes go through ``experts.actions``."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu.accounts import scope
from qifu.accounts.decorators import expert_required
from qifu.accounts.models import AuditEvent
from qifu.experts import actions
from qifu.experts.models import Cooperation, Expert, Need, Pairing, Visit
from qifu.service_requests.models import Satisfaction


def _pairings(expert: Expert):
    return (Pairing.objects.filter(expert=expert, status=Pairing.Status.CONFIRMED)
            .select_related("need", "need__entity", "need__town", "decided_by").order_by("-decided_at", "-id"))


@expert_required
def desk(request):
    expert = request.expert
    pairings = list(_pairings(expert))
    # a confidential need is shown to the expert staff confirmed for it, and each showing is audited
    for p in pairings:
        if p.need.confidential:
            scope.audit(request, AuditEvent.Action.VIEW_ENTITY, p.need.entity_id,
                        f"专家工作台查看保密需求 {p.need.number}")
    coops = list(Cooperation.objects.filter(expert=expert).select_related("entity", "need").order_by("-agreed_on"))
    return render(request, "web/expert_desk.html", {
        "expert": expert, "waiting": [p for p in pairings if not p.answer], "answered": [p for p in pairings if p.answer],
        "accepted": [p for p in pairings if p.answer == Pairing.Answer.ACCEPTED],
        "coops": coops, "visits": Visit.objects.filter(expert=expert).select_related("entity", "need")[:50],
        "conflicts": expert.conflicts.standing().select_related("entity"),
        "offers": actions.open_needs(expert) if expert.availability != Expert.Availability.UNAVAILABLE else [],
        "offered": Pairing.objects.filter(expert=expert, volunteered_at__isnull=False).exclude(
            status=Pairing.Status.CONFIRMED).select_related("need", "need__town").order_by("-volunteered_at")[:20],
        "availability": Expert.Availability.choices, "grades": Satisfaction.choices, "today": timezone.localdate(),
    })


@expert_required
@require_POST
def act(request):
    expert, post, action = request.expert, request.POST, request.POST.get("action")
    try:
        if action == "availability":
            actions.do_set_availability(expert, post.get("availability", ""))
            messages.success(request, f"已改为“{expert.get_availability_display()}”")
        elif action == "news":
            on = post.get("news") == "on"
            actions.do_set_news(expert, on)
            messages.success(request, "每天早上会告诉您与您专长相近的新需求" if on else "不再每天告诉您新需求；工作台上仍可查看")
        elif action in ("accept", "decline"):
            pairing = _pairings(expert).filter(pk=_int(post.get("pairing"))).first()
            if pairing is None:
                raise actions.ExpertActionError("这条对接不是您的，或尚未确认")
            if action == "decline" and post.get("conflict"):  # declined as a tie to the firm: never proposed again
                actions.do_declare_conflict(expert, pairing.need.entity_id, post.get("note", ""), by=request.user)
                messages.success(request, f"已答复婉拒并申报回避：今后不再向您推荐{pairing.need.entity.name}的需求")
            else:
                actions.do_answer(pairing, expert, action == "accept", post.get("note", ""))
                messages.success(request, "已答复：愿意对接，技术经纪人会联系您安排走访" if action == "accept"
                                 else "已答复婉拒，技术经纪人会另行推荐")
        elif action == "conflict":
            tie = actions.do_declare_conflict(expert, post.get("firm", ""), post.get("reason", ""), by=request.user)
            messages.success(request, f"已申报与“{tie.entity.name}”的利益关系：今后不再向您推荐该企业的需求")
        elif action == "withdraw":
            tie = expert.conflicts.filter(pk=_int(post.get("conflict"))).select_related("entity").first()
            if tie is None:
                raise actions.ExpertActionError("这项回避不是您申报的")
            actions.do_withdraw_conflict(tie, by=request.user)
            messages.success(request, f"已撤回与“{tie.entity.name}”的回避")
        elif action == "volunteer":
            need = Need.objects.filter(number=post.get("need", "")).first()
            if need is None:
                raise actions.ExpertActionError(actions.NOT_OPEN_TO_OFFERS)
            actions.do_volunteer(need, expert, post.get("note", ""))
            messages.success(request, f"已自荐“{need.title}”：技术经纪人确认后，会在“待答复的对接”里显示企业和联系人")
        elif action == "visit":
            pairing = _pairings(expert).filter(pk=_int(post.get("pairing")), answer=Pairing.Answer.ACCEPTED).first()
            if pairing is None:
                raise actions.ExpertActionError("请选择您愿意对接的需求")
            actions.do_log_visit(pairing.need.entity, dt.date.fromisoformat(post.get("visited_on", "")),
                                 post.get("notes", ""), need=pairing.need, expert=expert, by=request.user)
            messages.success(request, "已记录走访")
        elif action == "milestone":
            coop = _coop(expert, post)
            if coop.status != Cooperation.Status.ONGOING:
                raise actions.ExpertActionError("合作项目已结束")
            actions.do_reach_milestone(coop, _int(post.get("index"), -1), dt.date.fromisoformat(post.get("done_on", "")))
            messages.success(request, "节点已完成")
        elif action == "feedback":
            actions.do_expert_feedback(_coop(expert, post), expert, post.get("rating", ""), post.get("comment", ""))
            messages.success(request, "谢谢，评价已提交")
        else:
            messages.error(request, "请选择要办理的事项")
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
    except ValueError:
        messages.error(request, "日期应写作 2026-12-31")
    return redirect("expert-desk")


def _int(value, default: int = 0) -> int:
    return int(value) if str(value or "").isdigit() else default


def _coop(expert: Expert, post) -> Cooperation:
    coop = Cooperation.objects.filter(expert=expert, pk=_int(post.get("coop"))).first()
    if coop is None:
        raise actions.ExpertActionError("这个合作项目不是您的")
    return coop
