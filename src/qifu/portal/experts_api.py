"""Expert partners' JSON endpoints (``qifu.api``, /api/v1/experts/): the signed-in enterprise's
technical needs and a new one. Same session and CSRF rules as the rest of the portal API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ninja import Field, Router, Schema, Status

from qifu.experts import actions
from qifu.experts.models import Need, Pairing
from qifu.portal.api import Error, PortalSession
from qifu.portal.experts import expert_shown

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
