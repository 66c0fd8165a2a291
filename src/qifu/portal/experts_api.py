"""Expert partners' JSON endpoints (``qifu.api``, /api/v1/experts/): the signed-in enterprise's
technical needs and a new one, the public results library (科技成果) and asking about one of
its results. Same session and CSRF rules as the rest of the portal API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Query, Router, Schema, Status

from qifu.experts import actions
from qifu.experts.models import Achievement, Need, Pairing
from qifu.portal.api import Error, PortalSession
from qifu.portal.experts import achievement_expert, asked_about, expert_shown, library

router = Router(auth=PortalSession(), tags=["科创伙伴"])


class NeedIn(Schema):
    title: str = Field(min_length=4, max_length=100, description="需求名称")
    text: str = Field(min_length=10, max_length=4000, description="需求描述")
    budget: float | None = Field(None, ge=0, lt=1e8, description="预算（万元），最多两位小数")
    urgent: bool = False
    confidential: bool = False


class NeedOut(Schema):
    number: str
    title: str
    status: Literal["open", "paired", "cooperating", "closed"]
    created_at: dt.datetime
    experts: list[str] = Field(description="已确认对接的专家（未同意公开的只写单位）")
    cooperation: str | None = Field(description="合作项目及状态")


def _need(n: Need) -> dict:
    coop = getattr(n, "cooperation", None)
    return {"number": n.number, "title": n.title, "status": n.status, "created_at": n.created_at,
            "experts": [expert_shown(p) for p in n.pairings.all() if p.status == Pairing.Status.CONFIRMED],
            "cooperation": f"{coop.title}（{coop.get_status_display()}）" if coop else None}


@router.get("/needs", response=list[NeedOut], summary="本企业的技术需求")
def needs(request):
    qs = Need.objects.filter(entity=request.entity).prefetch_related("pairings__expert").select_related("cooperation")
    return [_need(n) for n in qs.order_by("-created_at")[:200]]


@router.post("/needs", response={201: NeedOut, 400: Error}, summary="提出技术需求（科技部门对接专家）")
def submit(request, body: NeedIn):
    try:
        budget = None if body.budget is None else round(body.budget, 2)
        n = actions.do_submit_need(request.entity, body.title, body.text, Need.Source.PORTAL, budget=budget,
                                   urgent=body.urgent, confidential=body.confidential)
    except actions.ExpertActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, _need(n))


class AchievementOut(Schema):
    code: str
    title: str
    summary: str
    fields: str = Field(description="领域")
    holder: str = Field(description="成果持有单位")
    maturity: Literal["lab", "pilot", "ready"] = Field(description="成熟度：实验室阶段、小试中试、可产业化")
    transfer: Literal["transfer", "license", "joint", "equity"] = Field(
        description="转化方式：转让、许可使用、合作开发、作价入股")
    price: float | None = Field(description="参考价格（万元）")
    expert: str | None = Field(description="联系专家（同意公开的写姓名和单位）")
    matched: list[str] = Field(description="与检索词相合的词")
    asked: bool = Field(description="本企业已提出了解，正在对接")


class AchievementsQuery(Schema):
    q: str = Field("", max_length=100, description="检索词（中文）；不填则按编号列出")


class AskIn(Schema):
    note: str = Field(min_length=4, max_length=500, description="想用这项成果做什么")


def _achievement(a: Achievement, words, asked: set[int]) -> dict:
    return {"code": a.code, "title": a.title, "summary": a.summary, "fields": a.fields, "holder": a.holder,
            "maturity": a.maturity, "transfer": a.transfer, "price": None if a.price is None else float(a.price),
            "expert": achievement_expert(a), "matched": list(words), "asked": a.pk in asked}


@router.get("/achievements", response=list[AchievementOut], summary="科技成果库（公开的成果，可中文检索）")
def achievements(request, query: Query[AchievementsQuery]):
    asked = asked_about(request.entity)
    return [_achievement(a, w, asked) for a, w in library(query.q.strip())]


@router.post("/achievements/{code}/ask", response={201: NeedOut, 400: Error, 404: Error},
             summary="我想了解这项成果（成为本企业的技术需求，科技部门安排对接）")
def ask(request, code: str, body: AskIn):
    a = Achievement.objects.filter(code=code, public=True).select_related("expert").first()
    if a is None:
        return Status(404, {"detail": "没有这项成果"})
    try:
        n = actions.do_ask_about(request.entity, a, body.note)
    except actions.ExpertActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, _need(n))
