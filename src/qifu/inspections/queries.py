"""What the spot checks' pages show: their measures for the samples a reader sees."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from qifu.inspections.models import Sample


def measures(qs: QuerySet[Sample], today: dt.date | None = None) -> dict:
    """Of ``qs``: drawn, checked, waiting, overdue (not checked by the check's last day), listed
    because of a result, and how many of each result, in the results' order."""
    today = today or timezone.localdate()
    m = qs.aggregate(drawn=Count("id"), checked=Count("id", filter=~Q(result="")),
                     overdue=Count("id", filter=Q(result="", inspection__finish_by__lt=today)),
                     listed=Count("id", filter=Q(listing__isnull=False)),
                     **{r.value: Count("id", filter=Q(result=r.value)) for r in Sample.Result})
    m["waiting"] = m["drawn"] - m["checked"]
    m["problems"] = m["checked"] - m[Sample.Result.OK]
    m["results"] = [(r.label, m[r.value]) for r in Sample.Result]
    return m


def for_entity(uscc: str) -> QuerySet[Sample]:
    return (Sample.objects.filter(entity_id=uscc).select_related("inspection", "listing")
            .prefetch_related("inspectors").order_by("-inspection__drawn_at"))
