"""Phased acceptance's JSON endpoints (``qifu.api``, /api/v1/projects/): the signed-in owner
firm's projects phase by phase, and a stuck step raised as an enterprise request."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Router, Schema, Status

from qifu.portal.api import Error, PortalSession
from qifu.projects import actions, queries
from qifu.projects.models import Project

router = Router(auth=PortalSession(), tags=["分期验收"])


class ItemOut(Schema):
    name: str
    kind: str = Field(description="document 资料 / inspection 专项验收")
    status: str = Field(description="pending / submitted / passed / failed / promised (承诺容缺)")


class DefectOut(Schema):
    text: str = Field(description="整改问题")
    inspection: str = Field(description="提出问题的专项验收")
    status: str = Field(description="open 待整改 / fixed 已整改，待复验 / closed 已销项")
    raised_at: dt.datetime
    fixed_at: dt.datetime | None


class PhaseOut(Schema):
    seq: int
    name: str
    state: str = Field(description="planned / ready / notified / rectifying / accepted / in_use")
    state_label: str
    accepted_at: dt.datetime | None
    items: list[ItemOut]
    defects: list[DefectOut] = Field(description="联合验收提出的整改问题（整改照片在企业端上传）")


class ProjectOut(Schema):
    code: str
    name: str
    status: str = Field(description="building / partial / accepted / filed")
    filing_no: str
    phases: list[PhaseOut]


class RaiseIn(Schema):
    text: str = Field(min_length=4, max_length=2000, description="卡在哪一步、需要什么帮助")


class RaiseOut(Schema):
    request_number: str


def _project(p: Project) -> dict:
    return {"code": p.code, "name": p.name, "status": p.status, "filing_no": p.filing_no, "phases": [
        {"seq": ph.seq, "name": ph.name, "state": ph.state, "state_label": ph.get_state_display(),
         "accepted_at": ph.accepted_at,
         "items": [{"name": i.name, "kind": i.kind, "status": i.status} for i in ph.items.all()],
         "defects": [{"text": d.text, "inspection": d.item.name, "status": d.status, "raised_at": d.raised_at,
                      "fixed_at": d.fixed_at} for d in ph.defects.all()]}
        for ph in p.phases.all()]}


@router.get("", response=list[ProjectOut], summary="本企业的建设项目及各期验收进度")
def projects(request):
    projects = queries.for_entity(request.entity.uscc).prefetch_related("phases__items", "phases__defects__item")
    return [_project(p) for p in projects]


@router.post("/{code}/phases/{seq}/raise", response={201: RaiseOut, 400: Error, 404: Error},
             summary="某一期卡住了：作为企业诉求转给承办部门")
def raise_step(request, code: str, seq: int, body: RaiseIn):
    p = Project.objects.filter(entity=request.entity, code=code).first()
    phase = p.phases.filter(seq=seq).first() if p else None
    if phase is None:
        return Status(404, {"detail": "没有这个项目或这一期"})
    try:
        req = actions.do_raise(phase, body.text)
    except actions.ProjectActionError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, {"request_number": req.number})
