"""Staff pages for the land-efficiency evaluation (亩均论英雄): a year's overview with the
class distribution by group and township, the results and the four published lists, a firm's
sheet, the price file for the power company and the tax bureau, and the remediation board
of low-efficiency land. Views only: changes go through ``land.actions``; who sees what through
``accounts.scope`` (a township officer sees the firms and cases of their township)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets, text
from qifu.accounts import scope
from qifu.accounts.decorators import staff_required
from qifu.accounts.models import StaffProfile
from qifu.engine.land.method import CLASSES, GROUPS
from qifu.land import actions, queries
from qifu.land.models import Evaluation, Remediation, Result
from qifu.registry.models import Township
from qifu.service_requests.models import Department
from qifu.web.downloads import audited_xlsx

Role = StaffProfile.Role
LIST_NAMES = {"above": "规上工业企业", "below_large": "规下企业（≥{large}亩）", "below_small": "规下企业（<{large}亩）",
              "tenant": "租用厂房企业"}


def _results(request, evaluation: Evaluation):
    return scope.filter_by_town(Result.objects.filter(evaluation=evaluation), request.user, "entity__town")


def _year(request, year: int | None) -> tuple[int | None, list[int]]:
    years = queries.years()
    if year is None:
        year = years[0] if years else None
    elif year not in years:
        raise Http404("这一年度还没有亩均评价")
    return year, years


@staff_required
def overview(request, year: int | None = None):
    year, years = _year(request, year)
    if year is None:
        return render(request, "web/land_overview.html", {"years": [], "evaluation": None})
    evaluation = queries.latest(year)
    results = _results(request, evaluation)
    dist = queries.distribution(evaluation, results)
    keys = dist["keys"]
    town = scope.town_of(request.user)
    cases = scope.filter_by_town(Remediation.objects.all(), request.user)
    ctx = {
        "years": years, "year": year, "evaluation": evaluation, "method": queries.method_of(evaluation),
        "dist": dist, "keys": keys, "town_name": Township.objects.get(code=town).name if town else "全市",
        "history": Evaluation.objects.filter(year=year).select_related("method").order_by("-created_at", "-id"),
        "can_manage": scope.role_of(request.user) == Role.ADMIN,
        "objections": results.filter(objection__isnull=False).select_related("entity", "objection")[:50],
        "confirmed": results.filter(confirmed_at__isnull=False).count(),
        "objected": results.filter(objection__isnull=False).count(),
        "by_town": queries.remediation_by_town(cases),
        "now": timezone.now(), "window_days": actions.window_days(),
        "charts": {
            "groups": queries.chart(dist["groups"], "label", keys),
            "towns": {**queries.chart(dist["towns"], "name", keys), "horizontal": True},
            "classes": {"type": "doughnut", "labels": keys, "values": [dist["totals"][k] for k in keys]},
        },
    }
    return render(request, "web/land_overview.html", ctx)


@staff_required(write=True)
@require_POST
def act(request, year: int):
    """Publish the year's evaluation, freeze it, or re-score it with the latest data."""
    if scope.role_of(request.user) != Role.ADMIN:
        raise PermissionDenied("只有局管理员可以公示、定稿或重新评分")
    evaluation = queries.latest(year)
    if evaluation is None:
        raise Http404("这一年度还没有亩均评价")
    what = request.POST.get("action")
    try:
        if what == "publish":
            actions.do_publish(evaluation)
            messages.success(request, f"{year} 年度评价已公示，企业可在 {actions.window_days()} 天内确认或提出异议")
        elif what == "freeze":
            actions.do_freeze(evaluation, request.user)
            new = Remediation.objects.filter(flagged_year=year).count()
            messages.success(request, f"{year} 年度评价已定稿；按低效用地规则认定 {new} 宗")
        elif what == "rescore":
            again = actions.do_rescore(year)
            messages.success(request, f"已按最新数据重新评分：{again.firms} 户" if again else "无需重新评分")
        else:
            messages.error(request, "不认识的操作")
    except actions.LandError as e:
        messages.error(request, str(e))
    return redirect("land-year", year=year)


def _filtered(request, evaluation: Evaluation):
    qs = _results(request, evaluation).select_related("entity", "entity__town")
    f = {k: text.CONTROL.sub("", request.GET.get(k, "")).strip() for k in ("group", "class", "town", "q", "answer")}
    if f["group"] in GROUPS:
        qs = qs.filter(group=f["group"])
    if f["class"] in CLASSES:
        qs = qs.filter(klass=f["class"])
    elif f["class"] == "none":
        qs = qs.filter(klass="")
    if f["town"]:
        qs = qs.filter(entity__town_id=f["town"])
    if f["answer"] == "confirmed":
        qs = qs.filter(confirmed_at__isnull=False)
    elif f["answer"] == "objected":
        qs = qs.filter(objection__isnull=False)
    elif f["answer"] == "none":
        qs = qs.filter(confirmed_at__isnull=True, objection__isnull=True)
    if f["q"]:
        qs = qs.filter(Q(entity__name__contains=f["q"]) | Q(entity_id=f["q"].upper()))
    return qs.order_by("group", "rank", "entity_id"), f


@staff_required
def results(request, year: int):
    evaluation = queries.latest(year) or _404()
    qs, f = _filtered(request, evaluation)
    if request.GET.get("format") == "xlsx":
        return _results_xlsx(request, evaluation, qs)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    m = queries.method_of(evaluation)
    return render(request, "web/land_results.html", {
        "year": year, "evaluation": evaluation, "page": page, "f": f, "query": query.urlencode(),
        "groups": [(g, queries.group_label(g, m.large_mu)) for g in GROUPS if g in m.groups], "classes": CLASSES,
        "towns": [] if scope.town_of(request.user) else Township.objects.all(),
    })


def _404():
    raise Http404("这一年度还没有亩均评价")


def _results_xlsx(request, evaluation, qs):
    m = queries.method_of(evaluation)
    names = m.indicators
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("亩均评价结果")
    ws.append(["统一社会信用代码", "企业名称", "所属镇街", "分组", "用地面积(亩)", "得分", "组内名次", "类别", "说明",
               *(f"{queries.methods.INDICATOR_LABELS[n]}得分" for n in names), "企业确认", "异议诉求"])
    n = 0
    for r in qs.iterator(chunk_size=2000):
        spreadsheets.append(ws, [r.entity_id, r.entity.name, r.entity.town.name if r.entity.town_id else "",
                                 queries.group_label(r.group, m.large_mu) if r.group else "", r.area_mu,
                                 None if r.score is None else round(r.score, 2), r.rank, queries.class_label(r), r.note,
                                 *((r.points or {}).get(x) for x in names),
                                 "已确认" if r.confirmed_at else "", r.objection.number if r.objection_id else ""])
        n += 1
    return audited_xlsx(request, wb, f"land-{evaluation.year}-results", f"亩均评价结果 {evaluation.year} 年度 {n} 行")


@staff_required
def lists(request, year: int):
    """The four lists a county publishes (Cixi: above threshold; below threshold ≥ 3 mu and
    < 3 mu; tenants), one sheet each, best first."""
    evaluation = queries.latest(year) or _404()
    if evaluation.status == Evaluation.Status.DRAFT:
        messages.error(request, "草稿尚未公示，不能导出公示名单；请先公示（或导出评价结果核对）")
        return redirect("land-year", year=year)
    m = queries.method_of(evaluation)
    wb = spreadsheets.workbook()
    qs = _results(request, evaluation).select_related("entity", "entity__town")
    n = 0
    for group in GROUPS:
        if group not in m.groups:
            continue
        ws = wb.create_sheet(LIST_NAMES[group].format(large=f"{float(m.large_mu):g}"))
        ws.append(["序号", "企业名称", "统一社会信用代码", "所属镇街", "用地面积(亩)", "综合得分", "组内名次", "评价类别", "备注"])
        rows = qs.filter(group=group).order_by("rank", "entity_id")
        ranked = [r for r in rows if r.rank is not None] + [r for r in rows if r.rank is None]
        for i, r in enumerate(ranked, 1):
            spreadsheets.append(ws, [i, r.entity.name, r.entity_id, r.entity.town.name if r.entity.town_id else "",
                                     None if r.area_mu is None else round(r.area_mu, 2),
                                     None if r.score is None else round(r.score, 2), r.rank,
                                     r.klass or "不参评（按B类管理）", r.note])
            n += 1
    return audited_xlsx(request, wb, f"land-{year}-lists", f"亩均评价公示名单 {year} 年度 {n} 行")


PRICE_HEADERS = {"uscc": "统一社会信用代码", "name": "企业名称", "town": "所属镇街", "class": "评价类别",
                 "managed_class": "按类管理", "consecutive_d": "连续D类年数", "electricity": "用电量(万千瓦时)",
                 "surcharge_per_kwh": "加价标准(元/千瓦时)", "surcharge": "预计加价(万元)",
                 "reward_per_kwh": "奖励返还标准(元/千瓦时)", "reward": "预计返还(万元)",
                 "land_tax_relief": "城镇土地使用税减免比例"}


@staff_required
def prices(request, year: int):
    """The differential-price file for the power company and the tax bureau (final results only)."""
    evaluation = queries.latest(year) or _404()
    if evaluation.status != Evaluation.Status.FINAL:
        messages.error(request, "评价定稿后才能导出差别化价格清单")
        return redirect("land-year", year=year)
    usccs = list(_results(request, evaluation).values_list("entity_id", flat=True))
    try:
        table = queries.prices(evaluation, actions.consequences(), usccs)
    except actions.LandError as e:
        messages.error(request, str(e))
        return redirect("land-year", year=year)
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("差别化价格清单")
    ws.append([PRICE_HEADERS[c] for c in queries.PRICE_COLUMNS])
    for row in table.iter_rows():
        spreadsheets.append(ws, row)
    return audited_xlsx(request, wb, f"land-{year}-prices", f"亩均评价差别化价格清单 {year} 年度 {table.height} 行")


@staff_required
def firm(request, year: int, uscc: str):
    entity = scope.entity_or_403(request.user, uscc)
    evaluation = queries.latest(year) or _404()
    result = get_object_or_404(Result.objects.select_related("evaluation", "evaluation__method", "objection"),
                               evaluation=evaluation, entity=entity)
    return render(request, "web/land_sheet.html", {
        "e": entity, "sheet": queries.sheet(result), "history": queries.classes_by_year([entity.uscc]).get(entity.uscc, {}),
    })


# --- low-efficiency land -------------------------------------------------------------------------

BOARD_CARDS = 30  # per column, largest first; the rest through the filters and the export


def _cases(request):
    return scope.filter_by_town(Remediation.objects.select_related("entity", "town", "department"), request.user)


@staff_required
def remediation(request):
    qs = _cases(request)
    f = {k: text.CONTROL.sub("", request.GET.get(k, "")).strip() for k in ("town", "status", "plan", "year")}
    if f["town"]:
        qs = qs.filter(town_id=f["town"])
    if f["status"] in Remediation.Status.values:
        qs = qs.filter(status=f["status"])
    if f["plan"] in Remediation.Plan.values and f["plan"]:
        qs = qs.filter(plan=f["plan"])
    if f["year"].isdigit():
        qs = qs.filter(flagged_year=int(f["year"]))
    qs = qs.order_by("status", "town__code", "-area_mu")
    if request.GET.get("format") == "xlsx":
        wb = spreadsheets.workbook()
        ws = wb.create_sheet("低效用地整治")
        ws.append(["宗地编号", "使用企业", "统一社会信用代码", "责任镇街", "责任部门", "面积(亩)", "认定年度", "认定理由",
                   "整治方式", "状态", "整治前亩均税收", "整治后亩均税收", "节点"])
        for c in qs:
            spreadsheets.append(ws, [c.parcel_id, c.entity.name if c.entity_id else "", c.entity_id or "", c.town.name,
                                     c.department.name if c.department_id else "", c.area_mu, c.flagged_year, c.reasons,
                                     c.get_plan_display(), c.get_status_display(), c.tax_per_mu_before, c.tax_per_mu_after,
                                     "；".join(f"{m['label']}{'（已完成）' if m.get('done') else ''}" for m in c.milestones)])
        return audited_xlsx(request, wb, "land-remediation", f"低效用地整治 {qs.count()} 宗")
    by_town = queries.remediation_by_town(_cases(request))
    columns = []
    for status, label in Remediation.Status.choices:
        column = qs.filter(status=status).order_by("-area_mu", "parcel_id")
        columns.append({"status": status, "label": label, "count": column.count(), "cases": column[:BOARD_CARDS]})
    return render(request, "web/land_remediation.html", {
        "columns": columns, "f": f, "by_town": by_town, "statuses": Remediation.Status.choices,
        "plans": [p for p in Remediation.Plan.choices if p[0]],
        "towns": [] if scope.town_of(request.user) else Township.objects.all(),
        "totals": {"flagged": round(sum(t["flagged"] for t in by_town), 1), "done": round(sum(t["done"] for t in by_town), 1),
                   "cases": sum(t["cases"] for t in by_town)},
        "charts": {"towns": {"labels": [t["name"] for t in by_town], "horizontal": True, "series": [
            {"label": "认定面积（亩）", "values": [t["flagged"] for t in by_town]},
            {"label": "已整治面积（亩）", "values": [t["done"] for t in by_town]}]}},
    })


@staff_required
def case(request, case_id: int):
    c = get_object_or_404(_cases(request), pk=case_id)
    can_edit = scope.role_of(request.user) in (Role.ADMIN, Role.OFFICER)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("只有局管理员和镇街专管员可以更新整治案件")
        try:
            due = request.POST.get("milestone_due") or None
            after = request.POST.get("tax_per_mu_after", "").strip()
            dep = request.POST.get("department", "")
            done = request.POST.get("done_milestone", "")
            actions.do_update_case(
                c, request.user,
                plan=request.POST.get("plan") if request.POST.get("plan") not in (None, c.plan) else None,
                status=request.POST.get("status") if request.POST.get("status") not in (None, "", c.status) else None,
                department_id=int(dep) if dep.isdigit() and int(dep) != c.department_id else None,
                milestone=(request.POST["milestone"], dt.date.fromisoformat(due) if due else None)
                if request.POST.get("milestone", "").strip() else None,
                done_milestone=int(done) if done.isdigit() else None,
                tax_per_mu_after=float(after) if after else None,
                note=request.POST.get("note", ""))
        except actions.LandError as e:
            messages.error(request, str(e))
        except ValueError:
            messages.error(request, "日期应为 年-月-日，亩均税收应为数字")
        else:
            messages.success(request, "已保存")
            return redirect("land-case", case_id=c.id)
    return render(request, "web/land_case.html", {
        "c": c, "can_edit": can_edit, "statuses": Remediation.Status.choices,
        "plans": Remediation.Plan.choices, "departments": Department.objects.filter(active=True),
        "history": queries.classes_by_year([c.entity_id]).get(c.entity_id, {}) if c.entity_id else {},
    })
