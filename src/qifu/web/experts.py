"""Staff pages for expert partners (科创伙伴): the needs library with the measures (visits, firms
served, projects agreed) as charts and XLSX; a need with the experts proposed for it and the
words that matched, the broker's confirmation, visits and the cooperation project; the expert
library. Views only: changes go through ``experts.actions``; who sees what through
``accounts.scope`` (a township officer the needs of their township's firms)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets
from qifu.accounts import masking, scope
from qifu.accounts.decorators import staff_required
from qifu.experts import actions, queries
from qifu.experts.models import Achievement, Conflict, Cooperation, Expert, Need, Pairing, Visit
from qifu.service_requests.models import ServiceRequest
from qifu.web.downloads import audited_xlsx


def _needs(request):
    return scope.filter_by_town(Need.objects.all(), request.user)


def _visits(request):
    return scope.filter_by_town(Visit.objects.all(), request.user)


def _coops(request):
    return scope.filter_by_town(Cooperation.objects.all(), request.user)


def shown_text(need: Need, user) -> str:
    """A confidential need's description is for administrators and the firm's township officer."""
    if need.confidential and scope.role_of(user) not in (scope.Role.ADMIN, scope.Role.OFFICER):
        return "（保密需求，内容不公开）"
    return need.text


@staff_required
def overview(request):
    m = queries.measures(_needs(request), _visits(request), _coops(request))
    if request.GET.get("format") == "xlsx":
        return _xlsx(request)
    status = request.GET.get("status", "")
    qs = _needs(request).select_related("entity", "town").order_by("-created_at")
    if status == "offered":  # open needs an expert offered to take, waiting for the broker
        qs = qs.filter(status=Need.Status.OPEN, pairings__status=Pairing.Status.PROPOSED,
                       pairings__volunteered_at__isnull=False).distinct()
    elif status:
        qs = qs.filter(status=status)
    return render(request, "web/experts_overview.html", {
        "m": m, "page": Paginator(qs, 50).get_page(request.GET.get("page")), "status": status,
        "statuses": Need.Status.choices, "experts": Expert.objects.count(), "can_write": scope.can_write(request.user),
        "achievements": Achievement.objects.count(),
        "charts": {
            "need-status": {"type": "doughnut", "labels": [s for s, _ in m["status"]], "values": [n for _, n in m["status"]]},
            "visit-months": {"labels": [f"{k}月" for k in range(1, 13)], "values": m["months"], "label": f"{m['year']} 年走访次数"},
        },
    })


def _xlsx(request):
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("技术需求")
    spreadsheets.append(ws, ["需求编号", "统一社会信用代码", "企业名称", "镇街", "需求名称", "需求描述", "预算（万元）", "紧急", "来源",
                             "状态", "提出时间", "已确认专家"])
    needs = _needs(request).select_related("entity", "town").prefetch_related("pairings__expert").order_by("created_at")
    for n in needs:
        confirmed = "、".join(p.expert.name for p in n.pairings.all() if p.status == Pairing.Status.CONFIRMED)
        spreadsheets.append(ws, [n.number, n.entity_id, n.entity.name, n.town.name, n.title, shown_text(n, request.user),
                                 float(n.budget) if n.budget is not None else None, "是" if n.urgent else "否",
                                 n.get_source_display(), n.get_status_display(), n.created_at.replace(tzinfo=None), confirmed])
    ws = wb.create_sheet("走访记录")
    spreadsheets.append(ws, ["走访日期", "统一社会信用代码", "企业名称", "镇街", "专家", "需求编号", "走访情况"])
    for v in _visits(request).select_related("entity", "town", "expert", "need").order_by("visited_on"):
        spreadsheets.append(ws, [v.visited_on, v.entity_id, v.entity.name, v.town.name, v.expert.name if v.expert else "",
                                 v.need.number if v.need else "", v.notes])
    ws = wb.create_sheet("合作项目")
    spreadsheets.append(ws, ["合作项目", "统一社会信用代码", "企业名称", "专家", "单位", "签约日期", "合同金额（万元）", "状态", "成果",
                             "企业评价", "评价意见", "专家评价", "专家意见"])
    for c in _coops(request).select_related("entity", "expert").order_by("agreed_on"):
        spreadsheets.append(ws, [c.title, c.entity_id, c.entity.name, c.expert.name, c.expert.institution, c.agreed_on,
                                 float(c.amount), c.get_status_display(), c.outcome, c.get_rating_display(),
                                 c.rating_comment, c.get_expert_rating_display(), c.expert_comment])
    ws = wb.create_sheet("科技成果")
    spreadsheets.append(ws, ["成果编号", "成果名称", "领域", "成果持有单位", "联系专家", "成熟度", "转化方式", "参考价格（万元）",
                             "公开", "提出了解的企业数"])
    asked = dict(needs.filter(achievement__isnull=False).values_list("achievement").annotate(n=Count("id")))
    for a in Achievement.objects.select_related("expert").order_by("code"):
        spreadsheets.append(ws, [a.code, a.title, a.fields, a.holder, a.expert.name if a.expert else "",
                                 a.get_maturity_display(), a.get_transfer_display(),
                                 float(a.price) if a.price is not None else None, "是" if a.public else "否",
                                 asked.get(a.pk, 0)])
    return audited_xlsx(request, wb, "experts", f"科创伙伴技术需求、走访和合作项目 {needs.count()} 条需求")


def _need(request, number: str) -> Need:
    need = _needs(request).filter(number=number).select_related("entity", "town", "request").first()
    if need is None:
        raise Http404("没有这条需求，或不属于您的范围")
    return need


@staff_required
def need(request, number: str):
    n = _need(request, number)
    pairings = list(n.pairings.select_related("expert"))
    return render(request, "web/expert_need.html", {
        "n": n, "text": shown_text(n, request.user), "pairings": pairings,
        "confirmed": [p for p in pairings if p.status == Pairing.Status.CONFIRMED],
        "visits": n.visits.select_related("expert", "by"), "coop": getattr(n, "cooperation", None),
        "ties": Conflict.objects.standing().filter(entity_id=n.entity_id).select_related("expert", "declared_by"),
        "can_write": scope.can_write(request.user), "today": timezone.localdate(),
        "achievements": actions.achievements_for(n),
    })


@staff_required(write=True)
@require_POST
def need_new(request):
    post = request.POST
    entity, why = scope.entity_in_form(request.user, post.get("uscc", ""))
    if entity is None:
        messages.error(request, why)
        return redirect("experts")
    try:
        n = actions.do_submit_need(entity, post.get("title", ""), post.get("text", ""), Need.Source.STAFF,
                                   budget=post.get("budget") or None, urgent=bool(post.get("urgent")),
                                   confidential=bool(post.get("confidential")), by=request.user)
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
        return redirect("experts")
    messages.success(request, f"已登记需求 {n.number}，推荐了 {n.pairings.count()} 位专家")
    return redirect("expert-need", number=n.number)


@staff_required(write=True)
@require_POST
def need_act(request, number: str):
    n = _need(request, number)
    post, action = request.POST, request.POST.get("action")
    try:
        if action in ("confirm", "decline"):
            p = get_object_or_404(Pairing, pk=post.get("pairing"), need=n)
            actions.do_decide(p, action == "confirm", by=request.user)
            messages.success(request, "已确认对接" if action == "confirm" else "已标为不合适")
        elif action == "tie":  # the broker knows of a tie between the expert and the firm
            p = get_object_or_404(Pairing, pk=post.get("pairing"), need=n)
            actions.do_declare_conflict(p.expert, n.entity_id, post.get("reason", ""), by=request.user)
            messages.success(request, f"已登记 {p.expert.name} 与本企业的利益关系：今后不再推荐其对接本企业")
        elif action == "untie":  # a tie staff recorded, ended or recorded by mistake
            tie = get_object_or_404(Conflict.objects.standing(), pk=post.get("conflict"), entity_id=n.entity_id)
            actions.do_withdraw_conflict(tie, by=request.user)
            messages.success(request, f"已撤回 {tie.expert.name} 与本企业的回避：今后可再推荐其对接本企业")
        elif action == "more":
            made = actions.propose(n)
            messages.success(request, f"又推荐了 {len(made)} 位专家" if made else "没有更多相符的专家")
        elif action == "visit":
            expert = Expert.objects.filter(pk=post.get("expert") or None).first()
            actions.do_log_visit(n.entity, dt.date.fromisoformat(post.get("visited_on", "")), post.get("notes", ""),
                                 need=n, expert=expert, by=request.user)
            messages.success(request, "已记录走访")
        elif action == "agree":
            expert = get_object_or_404(Expert, pk=post.get("expert"))
            milestones = []
            for line in post.get("milestones", "").splitlines():
                if line.strip():
                    name, _, due = line.rpartition(" ")
                    milestones.append((name.strip() or line.strip(), dt.date.fromisoformat(due.strip())))
            actions.do_agree(n, expert, post.get("title", ""), dt.date.fromisoformat(post.get("agreed_on", "")),
                             post.get("amount") or "0", milestones)
            messages.success(request, "已登记合作项目")
        elif action == "milestone":
            actions.do_reach_milestone(n.cooperation, int(post.get("index", -1)), dt.date.fromisoformat(post.get("done_on", "")))
            messages.success(request, "节点已完成")
        elif action in ("finish", "stop"):
            actions.do_finish(n.cooperation, post.get("outcome", ""), completed=action == "finish")
            messages.success(request, "合作项目已办结")
        else:
            messages.error(request, "请选择要办理的事项")
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
    except ValueError:
        messages.error(request, "日期应写作 2026-12-31（节点每行：名称 空格 日期）")
    return redirect("expert-need", number=n.number)


@staff_required
def library(request):
    if scope.role_of(request.user) == scope.Role.DEPARTMENT:
        raise PermissionDenied("专家库只对局管理员、镇街和领导开放")
    q = request.GET.get("q", "").strip()[:200]
    if q:
        ranked = actions.rank(q, 50)
        found = Expert.objects.in_bulk([e for e, _, _ in ranked])
        rows = [(found[e], w) for e, _, w in ranked if e in found]
    else:
        rows = [(e, ()) for e in Expert.objects.order_by("code")[:200]]
    return render(request, "web/expert_library.html", {
        "q": q, "rows": [(e, w, masking.value(e.phone)) for e, w in rows], "total": Expert.objects.count()})


@staff_required(write=True)
@require_POST
def need_from_request(request, number: str):
    req = scope.filter_requests(ServiceRequest.objects.all(), request.user).filter(number=number).first()
    if req is None:
        raise Http404("没有这件诉求")
    try:
        n = actions.do_need_from_request(req, by=request.user)
    except actions.ExpertActionError as e:
        messages.error(request, str(e))
        return redirect("request-detail", number=req.number)
    messages.success(request, f"已转为技术需求 {n.number}")
    return redirect("request-detail", number=req.number)


# --- the results library (科技成果) ----------------------------------------------------------------


def _library_open(request) -> None:
    if scope.role_of(request.user) == scope.Role.DEPARTMENT:
        raise PermissionDenied("专家库和成果库只对局管理员、镇街和领导开放")


@staff_required
def achievements(request):
    _library_open(request)
    q = request.GET.get("q", "").strip()[:200]
    rows = actions.search_achievements(q, 50) if q else [(a, ()) for a in Achievement.objects.select_related("expert")
                                                          .order_by("code")[:200]]
    asked = dict(_needs(request).filter(achievement__isnull=False).values_list("achievement")
                 .annotate(n=Count("id")))
    return render(request, "web/expert_achievements.html", {
        "q": q, "rows": [(a, w, asked.get(a.pk, 0)) for a, w in rows], "total": Achievement.objects.count()})


@staff_required
def achievement(request, code: str):
    """An achievement, the firms that asked about it, and the reverse match: the open needs of
    the reader's firms it could answer."""
    _library_open(request)
    a = get_object_or_404(Achievement.objects.select_related("expert"), code=code)
    needs = _needs(request)
    return render(request, "web/expert_achievement.html", {
        "a": a, "asked": needs.filter(achievement=a).select_related("entity").order_by("-created_at"),
        "matches": [(n, w, shown_text(n, request.user)) for n, w in actions.needs_for(a, needs.exclude(achievement=a))],
    })
