"""Phased acceptance's JSON endpoints (``qifu.api``, /api/v1/projects/): the signed-in owner
firm's projects phase by phase, a checklist's document handed in, a problem of a failed
inspection reported fixed with its photo, and a stuck step raised as an enterprise request.
The uploads are multipart forms, checked as the portal's (an image or a PDF by its content, at
most 10 MB)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, File, Form, Router, Schema, Status, UploadedFile

from qifu.portal.api import Error, PortalSession
from qifu.projects import actions, queries
from qifu.projects.models import ChecklistItem, Defect, Project
from qifu.service_requests import attachments

router = Router(auth=PortalSession(), tags=["分期验收"])


class ItemOut(Schema):
    id: int
    name: str
    kind: str = Field(description="document 资料 / inspection 专项验收")
    status: str = Field(description="pending / submitted / passed / failed / promised (承诺容缺)")


class DefectOut(Schema):
    id: int
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
    defects: list[DefectOut] = Field(description="联合验收提出的整改问题")


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
         "items": [_item(i) for i in ph.items.all()], "defects": [_defect(d) for d in ph.defects.all()]}
        for ph in p.phases.all()]}


def _item(i: ChecklistItem) -> dict:
    return {"id": i.pk, "name": i.name, "kind": i.kind, "status": i.status}


def _defect(d: Defect) -> dict:
    return {"id": d.pk, "text": d.text, "inspection": d.item.name, "status": d.status, "raised_at": d.raised_at,
            "fixed_at": d.fixed_at}


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


@router.post("/{code}/items/{item_id}/document", response={200: ItemOut, 400: Error, 404: Error},
             summary="提交验收清单中的一份资料（PDF 或图片）")
def hand_in(request, code: str, item_id: int, document: File[UploadedFile]):
    item = ChecklistItem.objects.filter(pk=item_id, phase__project__entity=request.entity, phase__project__code=code,
                                        kind="document").first()
    if item is None:
        return Status(404, {"detail": "没有这个项目或这项资料"})
    try:
        files = attachments.checked([document], what="每个事项")
        item = actions.do_item(item, ChecklistItem.Status.SUBMITTED, document=files[0])
    except (attachments.AttachmentError, actions.ProjectActionError) as e:
        return Status(400, {"detail": str(e)})
    return _item(item)


@router.post("/{code}/defects/{defect_id}/fix", response={200: DefectOut, 400: Error, 404: Error},
             summary="报告一项整改问题已整改，附整改后的照片或材料，等待复验")
def fix(request, code: str, defect_id: int, document: File[UploadedFile],
        note: str = Form("", max_length=500, description="整改说明")):
    defect = (Defect.objects.filter(pk=defect_id, phase__project__entity=request.entity, phase__project__code=code)
              .select_related("item").first())
    if defect is None:
        return Status(404, {"detail": "没有这个项目或这个问题"})
    try:
        files = attachments.checked([document], what="每个问题")
        actions.do_fix(defect, files[0], note)
    except (attachments.AttachmentError, actions.ProjectActionError) as e:
        return Status(400, {"detail": str(e)})
    return _defect(Defect.objects.select_related("item").get(pk=defect.pk))
