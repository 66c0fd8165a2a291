"""我的导出: a staff member's background exports (``web.export_jobs``): asking for one from a
list's page, following its progress, downloading the file. Only the person who asked sees or
downloads an export."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from qifu.accounts import scope
from qifu.accounts.clients import client_ip
from qifu.accounts.decorators import staff_required
from qifu.accounts.models import AuditEvent
from qifu.web import export_jobs
from qifu.web.models import Export


@staff_required
def mine(request):
    since = timezone.now() - dt.timedelta(days=export_jobs.KEEP_DAYS)
    exports = list(Export.objects.filter(user=request.user, created_at__gte=since).order_by("-created_at", "-pk")[:50])
    waiting = any(e.status in (Export.Status.PENDING, Export.Status.RUNNING) for e in exports)
    return render(request, "web/exports.html", {"exports": exports, "waiting": waiting,
                                                "keep_days": export_jobs.KEEP_DAYS})


@require_POST
@staff_required
def ask(request):
    try:
        rows = int(request.POST.get("rows") or 0)
    except ValueError:
        rows = 0
    try:
        export = export_jobs.do_request(request.user, request.POST.get("path", ""), rows, client_ip(request))
    except export_jobs.ExportError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"已开始在后台生成“{export.label}”，完成后在本页下载；可以先去做别的事")
    return redirect("exports")


@staff_required
def download(request, export_id: int):
    export = get_object_or_404(Export, pk=export_id, user=request.user)
    found = export_jobs.path_of(export)
    if found is None:
        raise Http404("文件已过期或尚未生成")
    scope.audit(request, AuditEvent.Action.EXPORT, detail=f"下载后台导出：{export.label}")
    return FileResponse(found.open("rb"), as_attachment=True, filename=export.filename,
                        content_type=export.content_type or None)
