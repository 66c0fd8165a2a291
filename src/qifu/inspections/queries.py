"""What the spot checks' pages show: their measures for the samples a reader sees."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from qifu.inspections.models import Sample


def follow_up_due(today: dt.date) -> Q:
    """The orders to correct that wait for their follow-up (复查) on ``today``: the entity said it
    has corrected, or the last day has passed (``Correction.STATED`` and ``OVERDUE``)."""
    return (Q(result=Sample.Result.CORRECTED, corrected_on__isnull=True, listing__isnull=True)
            & (Q(stated_at__isnull=False) | Q(correct_by__lt=today)))


def measures(qs: QuerySet[Sample], today: dt.date | None = None) -> dict:
    """Of ``qs``: drawn, checked, waiting, overdue (not checked by the check's last day), listed
    because of a result, orders to correct waiting for their follow-up and found corrected, and
    how many of each result, in the results' order."""
    today = today or timezone.localdate()
    m = qs.aggregate(drawn=Count("id"), checked=Count("id", filter=~Q(result="")),
                     overdue=Count("id", filter=Q(result="", inspection__finish_by__lt=today)),
                     listed=Count("id", filter=Q(listing__isnull=False)),
                     follow_up=Count("id", filter=follow_up_due(today)),
                     corrected_done=Count("id", filter=Q(corrected_on__isnull=False)),
                     **{r.value: Count("id", filter=Q(result=r.value)) for r in Sample.Result})
    m["waiting"] = m["drawn"] - m["checked"]
    m["problems"] = m["checked"] - m[Sample.Result.OK]
    m["results"] = [(r.label, m[r.value]) for r in Sample.Result]
    return m


def for_entity(uscc: str, today: dt.date | None = None) -> list[Sample]:
    """An entity's samples, newest first, each with where its order to correct stands
    (``state_label``, empty for other results)."""
    today = today or timezone.localdate()
    samples = list(Sample.objects.filter(entity_id=uscc).select_related("inspection", "listing")
                   .prefetch_related("inspectors").order_by("-inspection__drawn_at"))
    for s in samples:
        s.state_label = s.correction_label(today)
    return samples
