"""The firm's own land-efficiency sheet in the portal (一企一单): its data, points and class of
each published year; within the publication window it confirms the sheet or objects to one
data item, which becomes an enterprise request to the department that owns that data."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu.land import actions, queries
from qifu.land.models import Evaluation, Result
from qifu.portal.views import portal_required


def _result(entity, year: int) -> Result | None:
    evaluation = queries.latest_public(year)
    if evaluation is None:
        return None
    return (Result.objects.select_related("evaluation", "evaluation__method", "objection")
            .filter(evaluation=evaluation, entity=entity).first())


@portal_required
def land_page(request, year: int | None = None):
    entity = request.entity
    history = queries.classes_by_year([entity.uscc], public=True).get(entity.uscc, {})
    if year is None and history:
        year = max(history)
    result = _result(entity, year) if year else None
    if year is not None and history and result is None:
        raise Http404("这一年度没有您的亩均评价结果")
    now = timezone.now()
    open_window = bool(result and result.evaluation.status == Evaluation.Status.PUBLISHED
                       and (result.evaluation.window_ends is None or now <= result.evaluation.window_ends)
                       and not result.confirmed_at and not result.objection_id)
    return render(request, "portal/land.html", {
        "entity": entity, "sheet": queries.sheet(result) if result else None, "history": history,
        "open_window": open_window, "items": list(actions.ITEM_LABELS.items()), "year": year,
    })


@portal_required
@require_POST
def land_act(request, year: int):
    result = _result(request.entity, year)
    if result is None:
        raise Http404("这一年度没有您的亩均评价结果")
    try:
        if request.POST.get("action") == "confirm":
            actions.do_confirm(result)
            messages.success(request, "已确认，感谢配合")
        elif request.POST.get("action") == "object":
            result = actions.do_object(result, request.POST.get("item", ""), request.POST.get("text", ""))
            messages.success(request, f"异议已提交，诉求编号 {result.objection.number}，由{result.objection.department.name}核实")
        else:
            messages.error(request, "请选择确认或提出异议")
    except actions.LandError as e:
        messages.error(request, str(e))
    return redirect("portal:land-year", year=year)
