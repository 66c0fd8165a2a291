"""Exports made in the background (后台导出): asked for on a list's page, made by `qifu worker`,
downloaded from 我的导出.

A background export runs the list's own export view, as the person who asked, with the filters
they had (the URL they would have followed), and keeps the file it answers. So it holds exactly
what the direct download would: the same rows, the same masking, the same township, the same
audit line. While it runs, every row the view writes (``spreadsheets.counting``) moves its
progress, written to the database about once a second. Its file is kept ``KEEP_DAYS`` days.

Only the exports ``_label`` names can be asked for; each writes its header row first, and
every row, through ``spreadsheets``. An export interrupted by the worker's
stop is made again when the worker starts (``MAX_ATTEMPTS`` times at most).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import PermissionDenied
from django.core.handlers.wsgi import WSGIRequest
from django.http import Http404
from django.urls import Resolver404, resolve
from django.utils import timezone

from qifu import config, spreadsheets
from qifu.queued import Queue
from qifu.web.models import Export

log = logging.getLogger(__name__)

KEEP_DAYS = 7
MAX_ATTEMPTS = 3
MAX_WAITING = 3  # a person's exports queued or running at once
PROGRESS_EVERY = 1.0  # seconds between writes of the progress


class ExportError(ValueError):
    """Something the person can understand, said in Chinese."""


def _label(name: str, kwargs: dict, query: dict) -> str | None:
    """What the export at URL ``name`` is called, or None when it cannot be made in the background."""
    fmt = (query.get("format") or [""])[0]
    if name == "entities-export":
        return "市场主体名单（Excel）"
    if name == "entities-export-csv":
        return "市场主体名单（CSV）"
    if name == "requests-export":
        return "企业诉求名单（Excel）"
    if name == "requests-export-csv":
        return "企业诉求名单（CSV）"
    if name == "abnormal" and fmt == "xlsx":
        return f"经营异常名录 {(query.get('year') or [''])[0]} 年度（Excel）"
    if name == "policy" and fmt in ("xlsx", "csv"):
        return f"政策 {kwargs['code']} 匹配名单（{'Excel' if fmt == 'xlsx' else 'CSV'}）"
    return None


def folder() -> Path:
    return config.data_dir() / "exports"


def do_request(user, path: str, expected_rows: int, ip: str | None) -> Export:
    """Queue the export at ``path`` (a URL of this site, with its query) for ``user``."""
    path = str(path or "")
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or len(path) > 2000:
        raise ExportError("导出地址无效")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise ExportError("导出地址无效") from None
    label = _label(match.url_name or "", match.kwargs, parse_qs(parts.query))
    if label is None:
        raise ExportError("这个名单不能在后台导出")
    waiting = Export.objects.filter(user=user, status__in=(Export.Status.PENDING, Export.Status.RUNNING)).count()
    if waiting >= MAX_WAITING:
        raise ExportError(f"已有 {waiting} 个导出在排队或生成中，请等其完成后再申请")
    return Export.objects.create(user=user, label=label, path=path, ip=ip,
                                 expected_rows=max(0, min(int(expected_rows or 0), 100_000_000)))


QUEUE = Queue(Export, Export.Status.PENDING, Export.Status.RUNNING, Export.Status.FAILED, MAX_ATTEMPTS,
              "生成多次中断，请重新申请", claim={"rows_done": 0})


def run_pending() -> int:
    """Make every queued export, oldest first (`qifu worker`, every few seconds); one left
    running by a worker that stopped is made again (``MAX_ATTEMPTS``). Returns how many were
    taken up (made, or failed with their reason)."""
    return QUEUE.run(_make)


def _make(export: Export) -> None:
    written, last = 0, time.monotonic()

    def tick():  # every row written, the header first; rows_done counts the list's rows
        nonlocal written, last
        written += 1
        if time.monotonic() - last >= PROGRESS_EVERY:
            last = time.monotonic()
            Export.objects.filter(pk=export.pk).update(rows_done=max(written - 1, 0))

    partial = None
    try:
        with spreadsheets.counting(tick):  # a streamed body writes its rows as it is read, below
            response = _answer(export)
            if response.status_code != 200:
                raise ExportError(_refusal(response))
            target = _file(export, _suffix(response))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".part")
            with partial.open("wb") as out:
                for chunk in (response.streaming_content if response.streaming else [response.content]):
                    out.write(chunk)
        partial.replace(target)
    except Exception as e:  # the person sees why; the worker goes on with the next
        if partial is not None:
            partial.unlink(missing_ok=True)
        if isinstance(e, ExportError):
            reason = str(e)
        else:
            log.exception("后台导出 %s 失败", export.pk)
            reason = "生成时出错，请重新申请；再次失败请联系管理员"
        Export.objects.filter(pk=export.pk).update(status=Export.Status.FAILED, finished_at=timezone.now(),
                                                   rows_done=max(written - 1, 0), error=reason)
        return
    Export.objects.filter(pk=export.pk).update(
        status=Export.Status.DONE, finished_at=timezone.now(), rows_done=max(written - 1, 0), size=target.stat().st_size,
        filename=_filename(response) or target.name, content_type=response.get("Content-Type", ""), error="")


def _answer(export: Export):
    """The export view's answer to ``export.path``, asked as its user from their address."""
    parts = urlsplit(export.path)
    request = WSGIRequest({
        "REQUEST_METHOD": "GET", "PATH_INFO": parts.path, "QUERY_STRING": parts.query, "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "REMOTE_ADDR": export.ip or "", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
    })
    request.user = export.user
    match = resolve(parts.path)
    if _label(match.url_name or "", match.kwargs, parse_qs(parts.query)) is None:
        raise ExportError("这个名单不能在后台导出")
    try:
        return match.func(request, *match.args, **match.kwargs)
    except Http404:
        raise ExportError("名单已不存在") from None
    except PermissionDenied:
        raise ExportError("账号已无权导出这个名单") from None


def _refusal(response) -> str:
    if response.status_code in (301, 302):
        return "账号已无权导出这个名单"
    return f"导出未完成（{response.status_code}）"


def _filename(response) -> str:
    found = re.search(r'filename="([^"]+)"', response.get("Content-Disposition", ""))
    return found.group(1) if found else ""


def _suffix(response) -> str:
    return Path(_filename(response)).suffix or ".bin"


def _file(export: Export, suffix: str) -> Path:
    return folder() / f"{export.pk}-{export.created_at:%Y%m%d%H%M%S}{suffix}"


def path_of(export: Export) -> Path | None:
    """The file of a finished export, while it is kept."""
    if export.status != Export.Status.DONE:
        return None
    found = _file(export, Path(export.filename).suffix or ".bin")
    return found if found.exists() else None


def expire_old(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): files of exports older than ``KEEP_DAYS`` days are deleted.
    Returns how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=KEEP_DAYS)
    old = list(Export.objects.filter(created_at__lt=cutoff).exclude(status=Export.Status.EXPIRED)
               .exclude(status__in=(Export.Status.PENDING, Export.Status.RUNNING)))
    for export in old:
        if (found := path_of(export)) is not None:
            found.unlink(missing_ok=True)
    Export.objects.filter(pk__in=[e.pk for e in old]).update(status=Export.Status.EXPIRED)
    return len(old)
