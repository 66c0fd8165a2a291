"""A staff export as a download: the workbook saved (or, for a long list, CSV streamed as it
is read), the export written to the audit log (who took which list, with its filters), the
file named by its list and today's date."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from qifu import spreadsheets
from qifu.accounts import scope
from qifu.accounts.models import AuditEvent

# a list longer than this offers CSV as the recommended export, and its workbook made in the
# background (我的导出, ``web.export_jobs``)
LONG_LIST = 20_000


def local_time(at):
    """A stored time as the wall-clock time in the county, without a zone (a workbook cell
    cannot hold one); None stays None."""
    return timezone.localtime(at).replace(tzinfo=None) if at else None


def person(user, nobody: str = "") -> str:
    """Who did something, for a workbook's column: the staff member's name, else their
    username; ``nobody`` where no one is recorded."""
    return (user.get_full_name() or user.get_username()) if user else nobody


def audited_xlsx(request, wb, name: str, what: str) -> HttpResponse:
    buf = io.BytesIO()
    wb.save(buf)
    scope.audit(request, AuditEvent.Action.EXPORT, detail=what)
    return _attachment(HttpResponse(buf.getvalue(), content_type=spreadsheets.MEDIA_TYPE), name, "xlsx")


def _attachment(response, name: str, suffix: str):
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.localdate():%Y%m%d}.{suffix}"'
    return response


def audited_list(request, fmt: str, sheet: str, header: list[str], rows: Iterable[list], name: str,
                 what: Callable[[int, str], str]) -> HttpResponse | StreamingHttpResponse:
    """A list as a workbook (sheet ``sheet``) or, with ``fmt`` "csv", as CSV: ``header`` and then
    ``rows``, read once as they come. The audit line is ``what(rows written, "（CSV）" or "")``;
    CSV is streamed as the rows are read (a county's list is not held in memory), and its audit
    line written when the last row has gone, or the download stopped, with the rows sent."""
    n = 0

    def counted():
        nonlocal n
        for row in rows:
            n += 1
            yield row

    if fmt == "csv":
        def body():
            try:
                for chunk in spreadsheets.csv_chunks(itertools.chain([header], counted())):
                    yield chunk.encode("utf-8")
            finally:
                scope.audit(request, AuditEvent.Action.EXPORT, detail=what(n, "（CSV）"))

        return _attachment(StreamingHttpResponse(body(), content_type="text/csv; charset=utf-8"), name, "csv")
    wb = spreadsheets.workbook()
    ws = wb.create_sheet(sheet)
    spreadsheets.append(ws, header)
    for row in counted():
        spreadsheets.append(ws, row)
    return audited_xlsx(request, wb, name, what(n, ""))
