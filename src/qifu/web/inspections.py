"""Staff pages of the spot checks (年报抽查): the checks drawn, with their results in a chart, the
samples waiting for the signed-in inspector, the draw (the county's administrators), one check's
entities with their inspectors and the result form, and its workbook. Views only: changes go
through ``inspections.actions``; who sees what through ``accounts.scope``."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.db.models import Count, Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets
from qifu.abnormal import actions as abnormal_actions
from qifu.accounts import masking, scope
from qifu.accounts.decorators import staff_required
from qifu.accounts.models import AuditEvent
from qifu.checks.models import Finding
from qifu.engine import reference
from qifu.inspections import actions, queries
from qifu.inspections.models import Evidence, Inspection, Sample
from qifu.registry.models import Township
from qifu.reports.models import AnnualReport
from qifu.service_requests import attachments
from qifu.web import queries as web_queries
from qifu.web import uploads, views
from qifu.web.downloads import audited_xlsx, local_time, person

SHOWN = 500  # samples on a check's page; the workbook has them all
MINE_SHOWN = 100  # an inspector's waiting samples listed, the nearest last day first


def _samples(request):
    return actions.samples_for(request.user)


def _can_draw(request) -> bool:
    return scope.role_of(request.user) == scope.Role.ADMIN


def _inspections(request):
    """The checks a reader sees: every one for the county's roles; for an officer, those that
    drew an entity of their township (a department member sees none)."""
    qs = Inspection.objects.all()
    if scope.role_of(request.user) in (scope.Role.OFFICER, scope.Role.DEPARTMENT):
        qs = qs.filter(pk__in=_samples(request).values("inspection_id"))
    return qs


@staff_required
def overview(request):
    samples = _samples(request)
    checks = list(_inspections(request).select_related("town").annotate(
        drawn=Count("samples", filter=Q(samples__in=samples)),
        checked=Count("samples", filter=Q(samples__in=samples) & ~Q(samples__result=""))))
    m = queries.measures(samples)
    today = timezone.localdate()
    waiting = actions.assigned_to(request.user, samples)
    mine = list(waiting.select_related("entity", "town", "inspection").annotate(documents=Count("evidence"))
                .order_by("inspection__finish_by", "entity_id")[:MINE_SHOWN])
    follow = samples.filter(queries.follow_up_due(today), inspectors=request.user)
    to_follow = list(follow.select_related("entity", "town", "inspection").order_by("correct_by", "entity_id")[:MINE_SHOWN])
    closed = abnormal_actions.closed_year()
    return render(request, "web/inspections.html", {
        "checks": checks, "m": m, "mine": mine, "mine_total": waiting.count() if len(mine) == MINE_SHOWN else len(mine),
        "to_follow": to_follow, "to_follow_total": follow.count() if len(to_follow) == MINE_SHOWN else len(to_follow),
        "today": today, "can_draw": _can_draw(request),
        "years": list(range(closed, closed - 3, -1)), "kinds": Inspection.Kind.choices,
        "towns": Township.objects.filter(entity__isnull=False).distinct().order_by("code"),
        "finish_by": timezone.localdate() + dt.timedelta(days=actions.FINISH_DAYS),
        "documents_by": timezone.localdate() + dt.timedelta(days=actions.DOCUMENTS_DAYS),
        "town_name": views.town_name(scope.town_of(request.user)),
        "charts": {"inspection-results": m["chart"]},
    })


@staff_required(write=True)
@require_POST
def draw(request):
    """A new check, drawn at once: the county's administrators only."""
    if not _can_draw(request):
        messages.error(request, "只有局管理员可以抽取抽查对象")
        return redirect("inspections")
    p = request.POST
    try:
        year = int(p.get("year", ""))
    except ValueError:
        messages.error(request, "请选择报告年度")
        return redirect("inspections")
    try:
        finish_by = dt.date.fromisoformat(p.get("finish_by", "")) if p.get("finish_by") else None
        documents_by = dt.date.fromisoformat(p.get("documents_by", "")) if p.get("written") else None
    except ValueError:
        messages.error(request, "检查完成期限和材料提交期限应为日期")
        return redirect("inspections")
    try:
        x = actions.do_draw(year, p.get("kind", ""), p.get("title", ""), p.get("rate", ""), by=request.user,
                            town=p.get("town") or None, criteria=p.get("criteria", ""), finish_by=finish_by,
                            documents_by=documents_by)
    except actions.InspectionError as e:
        messages.error(request, str(e))
        return redirect("inspections")
    told = "；将以短信或邮件告知被抽中的主体上传依据材料" if x.documents_by else ""
    messages.success(request, f"已抽取 {x.samples.count()} 户（{x.number}，范围内 {x.population} 户），"
                              f"每户已随机选派检查人员{told}")
    return redirect("inspection", inspection_id=x.pk)


@staff_required(write=True)
@require_POST
def extend(request, inspection_id: int):
    """A written check's day put later, with the reason: the county's administrators only."""
    x = get_object_or_404(_inspections(request), pk=inspection_id)
    back = reverse("inspection", args=[x.pk])
    if not _can_draw(request):
        messages.error(request, "只有局管理员可以延长材料提交期限")
        return redirect(back)
    e = _extended(request, lambda day, reason: actions.do_extend_documents(x, day, reason, by=request.user))
    if e:
        messages.success(request, f"材料提交期限已由 {e.from_day:%Y-%m-%d} 延长至 {e.to_day:%Y-%m-%d}；"
                                  f"将以短信或邮件告知已告知过、尚未上传材料的主体")
    return redirect(back)


def _extended(request, extend):
    """The day put later by the form (新的期限, 理由) through ``extend(day, reason)``: the
    ``Extension``, or None with the reason said (a day that cannot be read, or the action's)."""
    try:
        to_day = dt.date.fromisoformat(request.POST.get("to_day", ""))
    except ValueError:
        messages.error(request, "请填写新的材料提交期限（日期）")
        return None
    try:
        return extend(to_day, request.POST.get("reason", ""))
    except actions.InspectionError as err:
        messages.error(request, str(err))
        return None


@staff_required(write=True)
@require_POST
def extend_sample(request, sample_id: int):
    """One entity's day for its documents put later (it asked for time): its inspectors or an
    administrator, with the reason; the entity is told the new day."""
    s, back, refused = _inspectors_sample(request, sample_id, "为该主体延长材料提交期限")
    if refused:
        return refused
    e = _extended(request, lambda day, reason: actions.do_extend_sample_documents(s, day, reason, by=request.user))
    if e:
        told = "已以短信或邮件告知企业" if s.entity.phone or s.entity.email else "该主体没有手机和邮箱，请电话或上门告知"
        messages.success(request, f"{s.entity.name} 的材料提交期限已由 {e.from_day:%Y-%m-%d} 延长至 {e.to_day:%Y-%m-%d}；{told}")
    return redirect(back)


@staff_required(write=True)
@require_POST
def refuse_more_time(request, sample_id: int):
    """The firm's request for more time not granted, with the reason it is told."""
    s, back, refused = _inspectors_sample(request, sample_id, "答复延长申请")
    if refused:
        return refused
    try:
        actions.do_refuse_more_time(s, request.POST.get("note", ""), request.user)
    except actions.InspectionError as err:
        messages.error(request, str(err))
        return redirect(back)
    messages.success(request, "已答复不予延长，将以短信或邮件告知企业")
    return redirect(back)


@staff_required
def inspection(request, inspection_id: int):
    x = get_object_or_404(_inspections(request), pk=inspection_id)
    samples = _samples(request).filter(inspection=x)
    status = request.GET.get("status", "")
    today = timezone.localdate()
    shown = samples
    if status == "follow_up":
        shown = shown.filter(queries.follow_up_due(today))
    elif status == "waiting":
        shown = shown.filter(result="")
    elif status == "problems":
        shown = shown.exclude(result="").exclude(result=Sample.Result.OK)
    elif status == "mine":
        shown = actions.assigned_to(request.user, shown)
    elif status == "no_documents":
        shown = shown.filter(queries.sent_nothing())
    elif status == "untold":
        shown = queries.untold(shown)
    elif status == "more_time":
        shown = shown.filter(queries.more_time_waiting())
    shown = shown.select_related("entity", "town", "recorded_by", "followed_by", "listing", "inspection",
                                 "more_time_answered_by").prefetch_related(
        "inspectors", "evidence__sent_by", "extensions__by")
    if request.GET.get("format") == "xlsx":
        return _xlsx(request, x, shown)
    rows = list(shown.order_by("town_id", "entity_id")[:SHOWN])
    open_findings = dict(Finding.objects.filter(report_year=x.year, status=Finding.Status.OPEN,
                                                entity_id__in=[s.entity_id for s in rows])
                         .values_list("entity_id").annotate(n=Count("id")))
    for s in rows:
        s.open_findings = open_findings.get(s.entity_id, 0)
        s.may_record = actions.may_record(request.user, s)
        s.state, s.state_label = s.correction(today), s.correction_label(today)
        s.may_send = s.may_record and s.takes_evidence(today)
        s.may_extend = s.may_record and x.documents_by and not s.result
    return render(request, "web/inspection.html", {
        "x": x, "samples": rows, "total": shown.count(), "limit": SHOWN, "m": queries.measures(samples),
        "untold": queries.untold(samples).count() if x.told_at else 0,
        "extensions": list(x.extensions.filter(sample=None).select_related("by")),
        "can_extend": _can_draw(request) and x.documents_by, "tomorrow": today + dt.timedelta(days=1),
        "extend_at_least": today + dt.timedelta(days=actions.EXTEND_DAYS_AT_LEAST),
        "status": status, "results": Sample.Result.choices, "today": today,
        "correct_within": actions.CORRECT_WITHIN_DAYS, "evidence_files": actions.EVIDENCE_FILES,
        "can_write": scope.can_write(request.user),
        "town_name": views.town_name(scope.town_of(request.user)),
    })


def _inspectors_sample(request, sample_id: int, what: str):
    """The sample a form acts on, the way back to its row, and a redirect saying no when the
    reader is neither one of its inspectors nor an administrator (``what``: what they may do)."""
    s = get_object_or_404(_samples(request).select_related("inspection"), pk=sample_id)
    back = f"{reverse('inspection', args=[s.inspection_id])}#sample-{s.pk}"
    if not actions.may_record(request.user, s):
        messages.error(request, f"只有被选派的检查人员或局管理员可以{what}")
        return s, back, redirect(back)
    return s, back, None


@staff_required(write=True)
@require_POST
def record(request, sample_id: int):
    s, back, refused = _inspectors_sample(request, sample_id, "录入检查结果")
    if refused:
        return refused
    try:
        checked_on = dt.date.fromisoformat(request.POST.get("checked_on", ""))
    except ValueError:
        messages.error(request, "请填写检查日期")
        return redirect(back)
    try:
        s = actions.do_record(s, request.POST.get("result", ""), request.POST.get("found", ""), checked_on,
                              request.user)
    except actions.InspectionError as e:
        messages.error(request, str(e))
        return redirect(back)
    done = f"已录入检查结果：{s.get_result_display()}"
    if s.listing_id:
        done += f"；已据此列入经营异常名录（{s.listing.number}）"
    messages.success(request, done)
    return redirect(back)


@staff_required
def evidence_file(request, evidence_id: int):
    """A document an entity sent for its check, to the staff who see the check (audited: payroll
    and accounts hold personal data)."""
    e = get_object_or_404(Evidence.objects.select_related("sample__inspection"), pk=evidence_id,
                          sample__in=_samples(request))
    scope.audit(request, AuditEvent.Action.VIEW_ENTITY, uscc=e.sample.entity_id,
                detail=f"年报抽查依据材料 {e.sample.inspection.number}：{e.name}")
    return FileResponse(attachments.open_stored(e.sha256), content_type=e.content_type, as_attachment=True,
                        filename=e.name)


SHEETS_SHOWN = 200  # inspection records printed at once


@staff_required
def sheets(request, inspection_id: int):
    """Inspection records (检查记录表) to print and take along: one sample's (``?sample=``), or
    those waiting for the signed-in inspector (``?status=mine``, the default) or for anyone
    (``waiting``). Each lists the entity, what its report published to check against evidence,
    the open findings of the quality rules, the results to tick, and room for the inspectors'
    and the entity's signatures. Contacts in full for staff who may see them (audited, each
    entity), masked otherwise."""
    x = get_object_or_404(_inspections(request), pk=inspection_id)
    samples = _samples(request).filter(inspection=x)
    status = request.GET.get("status", "mine")
    if request.GET.get("sample"):
        shown = samples.filter(pk=int(request.GET["sample"]) if request.GET["sample"].isdigit() else 0)
    elif status == "waiting":
        shown = samples.filter(result="")
    else:
        shown = actions.assigned_to(request.user, samples)
    rows = list(shown.select_related("entity", "town", "inspection").prefetch_related("inspectors", "evidence")
                .order_by("town_id", "entity_id")[:SHEETS_SHOWN])
    reveal = scope.can_see_contacts(request.user)
    codes = [s.entity_id for s in rows]
    reports = {r.entity_id: r for r in AnnualReport.objects.filter(entity_id__in=codes, report_year=x.year, is_current=True)}
    findings: dict[str, list] = {}
    for f in Finding.objects.filter(report_year=x.year, status=Finding.Status.OPEN, entity_id__in=codes).order_by("rule_id"):
        findings.setdefault(f.entity_id, []).append(f)
    known = web_queries.personal_values(codes) if not reveal else {}
    for s in rows:
        e = s.entity
        s.rep, s.phone = (e.legal_rep, e.phone) if reveal else (masking.name(e.legal_rep), masking.phone(e.phone))
        s.published = queries.sheet_rows(reports.get(s.entity_id), e.entity_type)
        s.filed_at = reports[s.entity_id].filed_at if s.entity_id in reports else None
        s.findings = [(f.rule_id, f.message if reveal else masking.text(f.message, known.get(s.entity_id, ())))
                      for f in findings.get(s.entity_id, [])]
        if reveal:
            scope.audit(request, AuditEvent.Action.VIEW_CONTACT, uscc=e.uscc, detail=f"年报抽查检查记录表 {x.number}")
    return render(request, "web/inspection_sheets.html", {
        "x": x, "samples": rows, "total": shown.count(), "limit": SHEETS_SHOWN, "status": status,
        "results": Sample.Result.choices, "county": reference.county()["county"],
    })


@staff_required(write=True)
@require_POST
def follow_up(request, sample_id: int):
    """The follow-up of an order to correct: corrected, or not by the last day (which lists it)."""
    s, back, refused = _inspectors_sample(request, sample_id, "复查")
    if refused:
        return refused
    corrected = request.POST.get("corrected") == "1"
    try:
        s = actions.do_follow_up(s, corrected, request.POST.get("note", ""), request.user)
    except actions.InspectionError as e:
        messages.error(request, str(e))
        return redirect(back)
    messages.success(request, "已记录复查：已改正，已告知企业" if corrected else
                     f"已记录复查：逾期未改正，已列入经营异常名录（{s.listing.number}）")
    return redirect(back)


@staff_required(write=True)
@require_POST
def send_evidence(request, sample_id: int):
    """Documents the firm brought or sent on paper or by other means (one no notice reached, say),
    uploaded for it by its inspectors or an administrator."""
    s, back, refused = _inspectors_sample(request, sample_id, "代企业上传材料")
    if refused:
        return refused
    try:
        sent = actions.do_send_evidence(s, request.FILES.getlist("files"), request.POST.get("note", ""), by=request.user)
    except actions.InspectionError as e:
        messages.error(request, str(e))
        return redirect(back)
    messages.success(request, f"已代企业上传 {len(sent)} 份材料")
    return redirect(back)


@staff_required(write=True)
@require_POST
def results_upload(request, inspection_id: int):
    """The check's workbook with the results filled in, all or nothing: each bad row named."""
    x = get_object_or_404(_inspections(request), pk=inspection_id)
    back = reverse("inspection", args=[x.pk])
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "请选择填好检查结果的工作簿")
        return redirect(back)
    with uploads.as_file(upload, "results") as path:
        try:
            done, same, problems = actions.do_record_results(actions.read_results(path), x, request.user)
        except actions.InspectionError as e:
            messages.error(request, str(e))
            return redirect(back)
    if problems:
        messages.error(request, uploads.refused("检查结果", "录入", problems))
    else:
        messages.success(request, f"已录入检查结果 {done} 户" + (f"，{same} 户与已录入的相同" if same else ""))
    return redirect(back)


def _more_time(s: Sample) -> str:
    """The firm's request for more time, as the workbook says it: the day, why, and the answer."""
    if not s.more_time_asked_at:
        return ""
    answer = "待答复" if s.more_time_waiting else s.more_time_answer
    return f"申请延长至 {s.more_time_to:%Y-%m-%d}（{s.more_time_why}）；{answer}"


def _xlsx(request, x: Inspection, shown):
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("抽查对象")
    spreadsheets.append(ws, ["统一社会信用代码", "名称", "类型", "镇街", "检查人员", "检查结果", "检查情况", "检查日期", "录入人",
               "录入时间", "改正期限", "改正情况", "企业说明", "复查情况", "列入经营异常名录决定书", "材料提交期限",
               "企业申请延长", "依据材料（份）"])
    n = 0
    today = timezone.localdate()
    for s in shown.order_by("town_id", "entity_id").iterator(chunk_size=2000):
        spreadsheets.append(ws, [s.entity_id, s.entity.name, s.entity.get_entity_type_display(), s.town.name,
                   "、".join(person(u) for u in s.inspectors.all()), s.get_result_display(), s.found,
                   s.checked_on, person(s.recorded_by), local_time(s.recorded_at), s.correct_by,
                   s.correction_label(today), s.statement, s.follow_up, s.listing.number if s.listing else "",
                   s.documents_due, _more_time(s), len(s.evidence.all())])
        n += 1
    about = wb.create_sheet("抽查任务")
    for label, value in (("任务编号", x.number), ("任务名称", x.title), ("报告年度", x.year),
                         ("抽查方式", x.get_kind_display()), ("定向条件", x.criteria), ("抽查比例(%)", float(x.rate)),
                         ("范围", x.town.name if x.town else "全市"), ("范围内主体数", x.population),
                         ("随机种子", x.seed), ("抽取时间", local_time(x.drawn_at)), ("检查完成期限", x.finish_by),
                         ("材料提交期限", x.documents_by or "（实地检查，事先不告知）")):
        spreadsheets.append(about, [label, value])
    for e in x.extensions.select_related("by", "sample"):
        who = f"{e.sample.entity_id} " if e.sample else ""
        spreadsheets.append(about, ["材料提交期限延长" + ("（单户）" if e.sample else ""),
                                    f"{who}{e.from_day:%Y-%m-%d} → {e.to_day:%Y-%m-%d}：{e.reason}"
                                    f"（{person(e.by)}，{local_time(e.at):%Y-%m-%d %H:%M}）"])
    return audited_xlsx(request, wb, f"年报抽查-{x.pk}", f"年报抽查 {x.number}：{n} 户")
