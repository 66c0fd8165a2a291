"""A write that waited its whole turn for the database and gave up is answered "busy, try
again", never a bare 500 (``server_error``, the site's ``handler500``).

SQLite, the embedded default, has one writer at a time: while a bulk import (a county's
registry, all or nothing in one transaction) or the demo's filling holds the write lock, any
other write waits up to ``PRAGMA busy_timeout`` (10 s, ``qifu.settings``) and then fails with
``database is locked``. That is no fault of the person who clicked, and nothing of theirs was
stored (the request's transaction is rolled back): they are told so, with a 503 and
``Retry-After``, in the shape their client reads (a page, the JSON API's ``detail``, Open311's
errors). Any other error is still Django's 500. PostgreSQL, which deployments use, locks rows
and does not fail this way.
"""

from __future__ import annotations

import logging
import sys

from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults

log = logging.getLogger(__name__)

RETRY_AFTER = 30  # seconds
MESSAGE = "系统正在写入大批数据（如导入年报或登记数据），您的操作没有保存，请稍后再试一次。"
LOCKED = ("database is locked", "database table is locked")


def locked(exception: BaseException) -> bool:
    """Whether ``exception`` is SQLite's write lock not obtained in time."""
    return isinstance(exception, OperationalError) and any(m in str(exception) for m in LOCKED)


def server_error(request):
    """The site's 500 handler (``handler500``), called while the exception is being handled, in a
    view or in a middleware (the session's save, say): SQLite's lock not obtained is answered
    503 "try again" as above; anything else is Django's 500 page."""
    exception = sys.exc_info()[1]
    if not locked(exception):
        return defaults.server_error(request)
    log.warning("database busy, %s %s answered 503: %s", request.method, request.path, exception)
    path = request.path
    if path.startswith(("/api/", "/hooks/")):
        response = JsonResponse({"detail": MESSAGE}, status=503, json_dumps_params={"ensure_ascii": False})
    elif path.startswith("/open311/"):
        from qifu.service_requests import open311

        response = open311.errors("xml" if path.endswith(".xml") else "json", 503, MESSAGE)
    else:
        response = HttpResponse(loader.render_to_string("503.html", {"message": MESSAGE, "retry_after": RETRY_AFTER}),
                                status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response
