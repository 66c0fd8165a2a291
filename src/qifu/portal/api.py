"""The enterprise portal's JSON endpoints and the self-check (``qifu.api``, /api/v1/).

Every endpoint needs a signed-in enterprise session (the portal's one-time-code sign-in) and,
for changes, Django's CSRF token in the ``X-CSRFToken`` header.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.security import APIKeyCookie

from qifu.abnormal import actions as abnormal
from qifu.abnormal import queries as abnormal_queries
from qifu.abnormal.models import Listing
from qifu.checks import single
from qifu.checks.models import Finding
from qifu.corrections import actions as corrections
from qifu.inspections import actions as inspections
from qifu.inspections import queries as inspection_queries
from qifu.inspections.models import Sample
from qifu.portal import forms
from qifu.portal.views import current_entity


class PortalSession(APIKeyCookie):
    """The portal's session cookie; the entity is the one signed in."""

    param_name = settings.SESSION_COOKIE_NAME

    def authenticate(self, request, key):
        entity = current_entity(request)
        if entity is not None:
            request.entity = entity
        return entity


router = Router(auth=PortalSession(), tags=["企业端"])


class Me(Schema):
    uscc: str
    name: str
    entity_type: str
    town: str
    report_year: int = Field(description="当前申报季的报告年度")


class FindingOut(Schema):
    id: int
    rule_id: str
    severity: Literal["block", "high", "medium", "low", "info"]
    fields: list[str]
    message: str
    suggestion: str
    status: Literal["open", "resolved", "confirmed"]


class ExplanationIn(Schema):
    reason: str = Field(min_length=4, max_length=1000, description="数值无误的理由")


class ExplanationOut(Schema):
    id: int
    status: str


class Problem(Schema):
    rule_id: str
    severity: str
    fields: list[str]
    message: str
    suggestion: str


class SelfCheckIn(Schema):
    figures: dict[str, str | float | int | bool | None] = Field(
        description="年报字段（契约字段名）到填报值；只返回涉及所填字段的问题。金额单位万元，整数部分最多14位"
                    "（绝对值小于 1e14），最多6位小数；人数为整数，绝对值不超过 2147483647。"
                    "无法识别或超出范围的值答 422，并按字段说明原因。",
        examples=[{"total_revenue": 1250}])


class SelfCheckOut(Schema):
    report_year: int
    problems: list[Problem]
    errors: dict[str, str] = Field(description="无法识别的值，按字段（答 200 时为空）")


class FieldErrors(Schema):
    detail: str
    errors: dict[str, str] = Field(description="无法识别、超出范围或不属于本类主体年报的值，按字段")


class Error(Schema):
    detail: str


@router.get("/me", response=Me, summary="当前登录的主体")
def me(request):
    e = request.entity
    return {"uscc": e.uscc, "name": e.name, "entity_type": e.entity_type, "town": e.town.name,
            "report_year": single.season_year()}


@router.get("/findings", response=list[FindingOut], summary="本主体当前申报季的年报问题")
def findings(request):
    qs = Finding.objects.filter(entity=request.entity, report_year=single.season_year()).order_by("id")
    return [_finding(f) for f in qs]


def _finding(f: Finding) -> dict:
    return {"id": f.id, "rule_id": f.rule_id, "severity": f.severity, "fields": f.fields.split(";"),
            "message": f.message, "suggestion": f.suggestion, "status": f.status}


@router.post("/findings/{finding_id}/explanation", response={201: ExplanationOut, 400: Error, 404: Error},
          summary="说明数值无误")
def explain(request, finding_id: int, body: ExplanationIn):
    finding = get_object_or_404(Finding, pk=finding_id, entity=request.entity)
    try:
        item = corrections.explain(finding, body.reason)
    except ValueError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, {"id": item.id, "status": item.status})


@router.post("/selfcheck", response={200: SelfCheckOut, 422: FieldErrors},
          summary="年报自检：用与批量校验相同的规则检查填报值")
def selfcheck(request, body: SelfCheckIn):
    entity = request.entity
    year = single.season_year()
    allowed = set(forms.names_for(entity.entity_type))
    unknown = {k[:60]: "不是本类主体年报的字段" for k in body.figures if k not in allowed}
    values, errors = single.parse_figures({k: v for k, v in body.figures.items() if k in allowed})
    errors.update(unknown)
    if errors:
        return Status(422, {"detail": "以下字段的值无法识别：" + "、".join(sorted(errors)), "errors": errors})
    problems = single.check(entity, year, values, only_fields=set(values)) if values else []
    return {"report_year": year, "errors": {},
            "problems": [{"rule_id": p["rule_id"], "severity": p["severity"], "fields": p["fields"].split(";"),
                          "message": p["message"], "suggestion": p["suggestion"]} for p in problems]}


class RulingOut(Schema):
    kind: Literal["remove", "refuse", "annul"] = Field(description="移出、不予移出、撤销")
    number: str = Field(description="决定书文号")
    title: str = Field(description="决定书标题")
    decided_on: dt.date
    reason: str = Field(description="不予移出的理由，或撤销时核实的情况")


class ListingOut(Schema):
    id: int
    ground: Literal["not_filed", "unreachable", "false_info", "uncorrected"] = Field(
        description="列入情形：not_filed 未按规定期限公示年度报告；unreachable 通过登记的住所或者经营场所无法联系；"
                    "false_info 公示企业信息隐瞒真实情况、弄虚作假（年报抽查查实）；"
                    "uncorrected 未在责令的期限内公示有关企业信息（年报抽查责令更正，逾期未更正）")
    report_year: int | None = Field(description="未报送的报告年度（其他情形的为空）")
    kind: Literal["list", "mark"] = Field(description="list：列入经营异常名录（企业、合作社）；mark：标注经营异常状态（个体工商户）")
    number: str = Field(description="决定书文号")
    listed_on: dt.date
    status: Literal["listed", "applied", "removed", "annulled"] = Field(description="列入中、已申请移出、已移出、已撤销（列入有误）")
    back_filed: bool = Field(description="已补报该年度年报（补报后才能申请移出；其他情形的总为 false）")
    found_on: dt.date | None = Field(description="无法联系、信息不实、逾期未改正的：查实的日期")
    found: str = Field(description="无法联系、信息不实、逾期未改正的：查实的情况")
    applied_note: str = Field(description="无法联系、信息不实、逾期未改正的：申请移出时企业的说明")
    applied_at: dt.datetime | None
    answer_by: dt.date | None = Field(description="已申请移出的：市场监管部门最迟在这一天前作出决定（5 个工作日）")
    removed_on: dt.date | None
    note: str = Field(description="移出或不予移出的说明")
    rulings: list[RulingOut] = Field(description="后续决定：移出、不予移出或撤销，各有决定书文号，可在企服平台查看打印")


def _listing(x) -> dict:
    return {"id": x.pk, "ground": x.ground, "report_year": x.report_year, "kind": x.kind, "number": x.number,
            "listed_on": x.listed_on, "status": x.status, "back_filed": x.back_filed, "found_on": x.found_on,
            "found": x.found, "applied_note": x.applied_note, "applied_at": x.applied_at,
            "answer_by": x.answer_by,
            "removed_on": x.removed_on, "note": x.note,
            "rulings": [{"kind": r.kind, "number": r.number, "title": r.title, "decided_on": r.decided_on,
                         "reason": r.reason if r.kind != "remove" else ""} for r in x.rulings.all()]}


@router.get("/abnormal", response=list[ListingOut],
            summary="本主体的经营异常名录记录（未按期报送年报、登记住所无法联系、公示信息不实或逾期未按责令更正）")
def listings(request):
    return [_listing(x) for x in abnormal_queries.for_entity(request.entity)]


class ApplyIn(Schema):
    statement: str = Field("", max_length=300, description="无法联系的：现在如何能在登记住所联系到本单位，或已办理住所变更登记；"
                                                          "信息不实、逾期未改正的：已更正了哪些公示的信息（均至少4个字）；"
                                                          "未报送年报的不需要")


@router.post("/abnormal/{listing_id}/apply", response={200: ListingOut, 400: Error, 404: Error},
             summary="申请移出经营异常名录（未报送年报的补报后；其他情形的附说明）")
def apply(request, listing_id: int, body: ApplyIn | None = None):
    x = Listing.objects.filter(pk=listing_id, entity=request.entity).first()
    if x is None:
        return Status(404, {"detail": "没有这条记录"})
    try:
        abnormal.do_apply(x, statement=body.statement if body is not None else "")
    except abnormal.ListingError as e:
        return Status(400, {"detail": str(e)})
    return Status(200, _listing(abnormal_queries.with_back_filed(Listing.objects.filter(pk=x.pk)).prefetch_related("rulings").get()))


class ObjectionIn(Schema):
    text: str = Field(min_length=4, max_length=1000, description="异议理由，如：已于6月20日在公示系统报送")


class ObjectionOut(Schema):
    request_number: str = Field(description="异议作为企业诉求办理的编号")


@router.post("/abnormal/{listing_id}/object", response={201: ObjectionOut, 400: Error, 404: Error},
             summary="对列入经营异常名录提出异议（已按期报送或不应报送），作为企业诉求办理")
def object_to(request, listing_id: int, body: ObjectionIn):
    x = Listing.objects.filter(pk=listing_id, entity=request.entity).first()
    if x is None:
        return Status(404, {"detail": "没有这条记录"})
    try:
        req = abnormal.do_object(x, body.text)
    except abnormal.ListingError as e:
        return Status(400, {"detail": str(e)})
    return Status(201, {"request_number": req.number})


class CheckOut(Schema):
    id: int
    number: str = Field(description="抽查任务编号，如 抽〔2026〕001号")
    report_year: int = Field(description="被抽查的年报年度")
    kind: Literal["random", "targeted"] = Field(description="random 双随机抽查；targeted 定向抽查")
    finish_by: dt.date = Field(description="检查完成期限：检查人员在这一天前与本单位联系")
    documents_by: dt.date | None = Field(description="书面检查的：请在这一天前上传年报所填信息的依据材料（门户首页；"
                                                     "本单位获准单独延长的，为延长后的期限）；空为实地检查，事先不告知")
    result: Literal["", "ok", "corrected", "false_info", "unreachable", "refused"] = Field(
        description="检查结果，尚未检查的为空：ok 未发现问题；corrected 发现问题已责令改正；false_info 公示信息隐瞒真实情况、"
                    "弄虚作假；unreachable 通过登记的住所或者经营场所无法联系；refused 不予配合情节严重")
    checked_on: dt.date | None
    found: str = Field(description="检查情况")
    correct_by: dt.date | None = Field(description="责令改正的：改正期限（检查之日起 10 日）")
    correction: Literal["", "waiting", "stated", "overdue", "done", "listed"] = Field(
        description="责令改正的进展：waiting 期限内；stated 已说明更正、待复查；overdue 逾期未确认改正、待复查；"
                    "done 复查已改正；listed 逾期未改正、已列入经营异常名录")
    statement: str = Field(description="本单位说明的更正情况")
    corrected_on: dt.date | None = Field(description="复查确认已改正的日期")
    listing_number: str = Field(description="因此列入经营异常名录的决定书文号（见 /abnormal）")
    more_time_to: dt.date | None = Field(description="书面检查的：本单位申请延长材料提交期限到哪一天（未申请的为空）")
    more_time_waiting: bool = Field(description="延长申请是否在等待检查人员答复")
    more_time_answer: str = Field(description="检查人员对延长申请的答复：同意延长至…，或不予延长的理由")


def _check(s) -> dict:
    x = s.inspection
    return {"id": s.pk, "number": x.number, "report_year": x.year, "kind": x.kind, "finish_by": x.finish_by,
            "documents_by": s.documents_due, "result": s.result, "checked_on": s.checked_on, "found": s.found, "correct_by": s.correct_by,
            "correction": s.correction(timezone.localdate()), "statement": s.statement,
            "corrected_on": s.corrected_on, "listing_number": s.listing.number if s.listing else "",
            "more_time_to": s.more_time_to, "more_time_waiting": s.more_time_waiting, "more_time_answer": s.more_time_answer}


@router.get("/inspections", response=list[CheckOut], summary="本主体被年报抽查的记录与结果")
def checks(request):
    return [_check(s) for s in inspection_queries.for_entity(request.entity.uscc)]


class CorrectionIn(Schema):
    statement: str = Field(max_length=300, description="已更正了哪些公示的信息（至少4个字），如：已在公示系统更正2025年度年报的从业人数")


@router.post("/inspections/{sample_id}/correction", response={200: CheckOut, 400: Error, 404: Error},
             summary="责令改正的：告知检查人员已更正了什么，待复查")
def state_correction(request, sample_id: int, body: CorrectionIn):
    return _on_check(request, sample_id, lambda s: inspections.do_state_correction(s, body.statement))


def _on_check(request, sample_id: int, act):
    """``act(sample)`` on one of the firm's own checks: the check as it then stands, 400 with the
    action's reason, or 404 for a check that is not the firm's."""
    s = Sample.objects.filter(pk=sample_id, entity=request.entity).first()
    if s is None:
        return Status(404, {"detail": "没有这条记录"})
    try:
        act(s)
    except inspections.InspectionError as e:
        return Status(400, {"detail": str(e)})
    return Status(200, _check(Sample.objects.select_related("inspection", "listing").get(pk=s.pk)))


class MoreTimeIn(Schema):
    to_day: dt.date = Field(description="希望延长到哪一天：晚于现在的材料提交期限，不晚于检查完成期限")
    why: str = Field(max_length=300, description="需要延长的原因（至少4个字），如：会计休假，工资表下周才能打印")


@router.post("/inspections/{sample_id}/more-time", response={200: CheckOut, 400: Error, 404: Error},
             summary="书面检查的：申请延长材料提交期限，待检查人员答复")
def ask_more_time(request, sample_id: int, body: MoreTimeIn):
    return _on_check(request, sample_id, lambda s: inspections.do_ask_more_time(s, body.to_day, body.why))
