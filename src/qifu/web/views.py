from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from qifu.imports.models import ImportRun
from qifu.web import queries


@login_required
def home(request):
    year = queries.latest_report_year()
    towns = queries.filing_progress(year) if year else []
    due = sum(t.due for t in towns)
    filed = sum(t.filed for t in towns)
    return render(
        request,
        "web/home.html",
        {
            "counts": queries.entity_counts(),
            "year": year,
            "towns": sorted(towns, key=lambda t: t.rate),
            "due": due,
            "filed": filed,
            "rate_pct": 100 * filed / due if due else 0,
            "imports": ImportRun.objects.all()[:10],
        },
    )


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")
