"""Phased acceptance in the portal: the owner firm follows each project phase by phase, hands in
the documents of a phase's checklist, reports each problem of a failed inspection fixed, and
raises a stuck step as an enterprise request."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu.portal.views import portal_required
from qifu.projects import actions, queries
from qifu.projects.models import ChecklistItem, Defect, Project, Step
from qifu.service_requests import attachments


def _project(entity, code: str) -> Project:
    p = Project.objects.filter(entity=entity, code=code).first()
    if p is None:
        raise Http404("没有这个项目")
    return p


@portal_required
def projects_page(request):
    return render(request, "portal/projects.html", {"entity": request.entity,
                                                    "projects": queries.for_entity(request.entity.uscc)})


@portal_required
def project_page(request, code: str):
    p = _project(request.entity, code)
    due = actions.filing_due(p)
    return render(request, "portal/project.html", {
        "entity": request.entity, "p": p, "phases": p.phases.prefetch_related("items", "defects__item"),
        "filing_due": due, "filing_overdue": due is not None and due < timezone.localdate(),
        "steps": Step.objects.filter(project=p).select_related("phase", "request").order_by("-at", "-id")[:100],
    })


@portal_required
@require_POST
def project_act(request, code: str):
    p = _project(request.entity, code)
    post = request.POST
    try:
        if post.get("defect"):
            defect = Defect.objects.filter(pk=post["defect"], phase__project=p).first()
            if defect is None:
                raise Http404("没有这个问题")
            files = attachments.checked(request.FILES.getlist("document"), what="每个问题")
            actions.do_fix(defect, files[0] if files else None, post.get("note", ""))
            messages.success(request, f"已登记整改：{defect.text}")
        elif post.get("item"):
            item = ChecklistItem.objects.filter(pk=post["item"], phase__project=p, kind="document").first()
            if item is None:
                raise Http404("没有这个事项")
            files = attachments.checked(request.FILES.getlist("document"), what="每个事项")
            actions.do_item(item, ChecklistItem.Status.SUBMITTED, document=files[0] if files else None)
            messages.success(request, f"已提交：{item.name}")
        elif post.get("phase"):
            phase = p.phases.filter(pk=post["phase"]).first()
            if phase is None:
                raise Http404("没有这一期")
            req = actions.do_raise(phase, post.get("text", ""))
            messages.success(request, f"已转给承办部门，诉求编号 {req.number}")
        else:
            messages.error(request, "请选择要办理的事项")
    except (actions.ProjectActionError, attachments.AttachmentError) as e:
        messages.error(request, str(e))
    return redirect("portal:project", code=p.code)
