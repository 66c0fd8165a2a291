"""Staff pages for phased acceptance (分期验收、一次备案): projects with the days gained against a
single final acceptance (a chart), filings overdue, XLSX; a project's phases with their
checklists, the moves of each phase, every step on the record and the one filing. Views only:
changes go through ``projects.actions``; who sees what through ``accounts.scope``."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu import spreadsheets
from qifu.accounts import scope
from qifu.accounts.decorators import staff_required
from qifu.engine.projects import workflow
from qifu.projects import actions, queries
from qifu.projects.models import ChecklistItem, Defect, Project, Step
from qifu.service_requests import attachments
from qifu.web import downloads
from qifu.web.downloads import audited_xlsx


def _projects(request):
    return scope.filter_projects(Project.objects.all(), request.user)


def _can_act(request) -> bool:
    return scope.can_write(request.user) and scope.role_of(request.user) != scope.Role.LEADER


@staff_required
def overview(request):
    projects = _projects(request)
    m = queries.measures(projects)
    if request.GET.get("format") == "xlsx":
        return _xlsx(request, projects, m)
    return render(request, "web/projects_overview.html", {
        "m": m, "projects": projects.select_related("entity", "town").prefetch_related("phases")[:200],
        "types": actions.templates(), "can_act": _can_act(request), "charts": {"gains": m["chart"]},
    })


def _xlsx(request, projects, m):
    wb = spreadsheets.workbook()
    ws = wb.create_sheet("建设项目")
    spreadsheets.append(ws, ["项目代码", "项目名称", "建设单位", "统一社会信用代码", "镇街", "类型", "分期数", "已验收", "状态", "备案编号",
                             "待整改问题"])
    types = actions.templates()
    to_fix = queries.open_defects(projects.values("pk"))
    for p in projects.select_related("entity", "town").prefetch_related("phases"):
        phases = list(p.phases.all())
        spreadsheets.append(ws, [p.code, p.name, p.entity.name, p.entity_id, p.town.name,
                                 types[p.project_type].name if p.project_type in types else p.project_type, len(phases),
                                 sum(ph.state in workflow.DONE for ph in phases), p.get_status_display(), p.filing_no,
                                 to_fix.get(p.pk, 0)])
    ws = wb.create_sheet("整改问题")
    spreadsheets.append(ws, ["项目代码", "项目名称", "建设单位", "期次", "专项验收", "问题", "提出时间", "状态", "整改时间", "整改说明",
                             "销项时间"])
    local = downloads.local_time
    for d in (Defect.objects.filter(phase__project__in=projects).select_related("phase__project__entity", "item")
              .order_by("phase__project__code", "phase__seq", "id")):
        p = d.phase.project
        spreadsheets.append(ws, [p.code, p.name, p.entity.name, d.phase.seq, d.item.name, d.text, local(d.raised_at),
                                 d.get_status_display(), local(d.fixed_at), d.fixed_note, local(d.closed_at)])
    ws = wb.create_sheet("提前投用")
    spreadsheets.append(ws, ["项目代码", "项目名称", "首期从具备条件到投入使用（天）", "整体一次验收基准（天）", "提前（天）"])
    for r in m["rows"]:
        spreadsheets.append(ws, [r["project"].code, r["project"].name, r["days"], r["baseline"], r["gained"]])
    return audited_xlsx(request, wb, "projects", f"分期验收项目 {projects.count()} 个")


def _project(request, code: str) -> Project:
    p = _projects(request).filter(code=code).select_related("entity", "town").first()
    if p is None:
        raise Http404("没有这个项目，或不属于您的范围")
    return p


@staff_required
def project(request, code: str):
    p = _project(request, code)
    phases = list(p.phases.prefetch_related("items", "defects__item"))
    types = actions.templates()
    return render(request, "web/project.html", {
        "p": p, "type": types.get(p.project_type), "can_act": _can_act(request), "today": timezone.localdate(),
        "phases": [(ph, [(m.value, workflow.MOVE_LABELS[m]) for m in workflow.allowed(ph.state)]) for ph in phases],
        "steps": Step.objects.filter(project=p).select_related("phase", "request").order_by("-at", "-id")[:200],
        "can_file": p.filed_at is None and phases and all(ph.state in workflow.DONE for ph in phases)
        and not any(i.status == ChecklistItem.Status.PROMISED for ph in phases for i in ph.items.all()),
    })


@staff_required(write=True)
@require_POST
def register(request):
    post = request.POST
    entity, why = scope.entity_in_form(request.user, post.get("uscc", ""))
    if entity is None:
        messages.error(request, why)
        return redirect("projects")
    try:
        p = actions.do_register(entity, post.get("code", ""), post.get("name", ""), post.get("project_type", ""),
                                post.get("site", ""), post.get("permits", ""), actions.parse_phases(post.get("phases", "")),
                                by=request.user)
    except actions.ProjectActionError as e:
        messages.error(request, str(e))
        return redirect("projects")
    messages.success(request, f"已登记项目 {p.code}，分 {p.phases.count()} 期验收")
    return redirect("project", code=p.code)


@staff_required(write=True)
@require_POST
def act(request, code: str):
    p = _project(request, code)
    if not _can_act(request):
        raise Http404
    post = request.POST
    try:
        if post.get("defect"):
            defect = Defect.objects.filter(pk=post["defect"], phase__project=p).first()
            if defect is None:
                raise Http404("没有这个问题")
            files = attachments.checked(request.FILES.getlist("document"), what="每个问题")
            actions.do_fix(defect, files[0] if files else None, post.get("note", ""), by=request.user)
            messages.success(request, f"已登记整改：{defect.text}")
        elif post.get("item"):
            item = ChecklistItem.objects.filter(pk=post["item"], phase__project=p).first()
            if item is None:
                raise Http404("没有这个事项")
            files = attachments.checked(request.FILES.getlist("document"), what="每个事项")
            due = post.get("due")
            actions.do_item(item, post.get("result", ""), document=files[0] if files else None, note=post.get("note", ""),
                            due=dt.date.fromisoformat(due) if due else None,
                            keep=[int(k) for k in post.getlist("keep") if k.isdigit()], by=request.user)
            messages.success(request, f"已登记：{item.name}")
        elif post.get("phase"):
            phase = p.phases.filter(pk=post["phase"]).first()
            if phase is None:
                raise Http404("没有这一期")
            when = post.get("inspection_on")
            actions.do_move(phase, post.get("move", ""), inspection_on=dt.date.fromisoformat(when) if when else None,
                            note=post.get("note", ""), by=request.user)
            messages.success(request, f"{phase}：{phase.get_state_display()}")
        elif post.get("action") == "file":
            actions.do_file(p, post.get("filing_no", ""), by=request.user)
            messages.success(request, "已办理竣工验收备案")
        else:
            messages.error(request, "请选择要办理的事项")
    except (actions.ProjectActionError, attachments.AttachmentError) as e:
        messages.error(request, str(e))
    except ValueError:
        messages.error(request, "日期应写作 2026-12-31")
    return redirect("project", code=p.code)


@staff_required
def document(request, code: str, step_id: int):
    p = _project(request, code)
    return _stored(Step.objects.filter(pk=step_id, project=p), "没有这份文件")


@staff_required
def defect_document(request, code: str, defect_id: int):
    """The photo or document that shows a problem fixed, for the re-inspection."""
    p = _project(request, code)
    return _stored(Defect.objects.filter(pk=defect_id, phase__project=p), "没有这份材料")


def _stored(rows, missing: str) -> FileResponse:
    """The document of the one row of ``rows`` (a step or a defect: ``document_name``,
    ``document_sha256``), or 404 with ``missing`` where there is none."""
    row = rows.exclude(document_sha256="").first()
    if row is None:
        raise Http404(missing)
    return FileResponse(attachments.open_stored(row.document_sha256), filename=row.document_name)
