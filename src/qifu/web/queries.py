"""Read-only queries behind the staff pages."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Max, Q

from qifu.registry.models import Entity, Township
from qifu.reports.models import AnnualReport


@dataclass
class TownProgress:
    name: str
    due: int
    filed: int

    @property
    def rate(self) -> float:
        return self.filed / self.due if self.due else 0.0


def latest_report_year() -> int | None:
    return AnnualReport.objects.aggregate(y=Max("report_year"))["y"]


def filing_progress(year: int) -> list[TownProgress]:
    """Per township: entities due to file for ``year`` (active, established before the year's end)
    and how many of them have filed."""
    due = dict(
        Entity.objects.filter(status="active", established_on__year__lte=year)
        .values_list("town_id")
        .annotate(n=Count("uscc"))
    )
    filed = dict(
        AnnualReport.objects.filter(report_year=year, is_current=True, entity__status="active")
        .values_list("entity__town_id")
        .annotate(n=Count("id"))
    )
    return [TownProgress(t.name, due.get(t.code, 0), filed.get(t.code, 0)) for t in Township.objects.all()]


def entity_counts() -> dict[str, int]:
    return Entity.objects.aggregate(
        total=Count("uscc"),
        enterprise=Count("uscc", filter=Q(entity_type="enterprise")),
        individual=Count("uscc", filter=Q(entity_type="individual")),
        cooperative=Count("uscc", filter=Q(entity_type="cooperative")),
        active=Count("uscc", filter=Q(status="active")),
    )
