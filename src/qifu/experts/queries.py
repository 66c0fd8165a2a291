"""Reading expert partners' data for pages: the measures (visits, firms served, projects agreed)
and what a reader may see of a need."""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.db.models.functions import ExtractMonth
from django.utils import timezone

from qifu.experts.models import Cooperation, Need, Pairing
from qifu.service_requests.models import Satisfaction


def measures(needs, visits, coops) -> dict:
    """Over querysets already narrowed to what the reader may see."""
    year = timezone.localdate().year
    status = dict(needs.values_list("status").annotate(n=Count("id")))
    months = dict(visits.filter(visited_on__year=year).annotate(m=ExtractMonth("visited_on")).values_list("m")
                  .annotate(n=Count("id")))
    by_town = list(needs.values("town__name").annotate(n=Count("id")).order_by("-n"))
    served = set(visits.values_list("entity_id", flat=True)) | set(coops.values_list("entity_id", flat=True))
    grades = dict(coops.exclude(rating="").values_list("rating").annotate(n=Count("id")))
    rated = sum(grades.values())
    return {
        "year": year, "status": [(label, status.get(v, 0)) for v, label in Need.Status.choices],
        "needs": sum(status.values()), "open": status.get(Need.Status.OPEN, 0),
        "visits": visits.count(), "visits_year": sum(months.values()), "firms": len(served),
        "projects": coops.count(), "completed": coops.filter(status=Cooperation.Status.COMPLETED).count(),
        "amount": coops.aggregate(s=Sum("amount"))["s"] or 0,
        "months": [months.get(m, 0) for m in range(1, 13)], "by_town": by_town,
        "experts_engaged": coops.values("expert").distinct().count(),
        "confirmed": needs.filter(pairings__status="confirmed").distinct().count(),
        "urgent_open": needs.filter(Q(status=Need.Status.OPEN) & Q(urgent=True)).count(),
        # experts with a desk who have not answered yet, and needs whose experts only declined
        "awaiting": Pairing.objects.filter(need__in=needs, status=Pairing.Status.CONFIRMED, answer="",
                                           expert__user__isnull=False).count(),
        # experts who offered to take an open need from their desk, waiting for the broker
        "volunteered": Pairing.objects.filter(need__in=needs.filter(status=Need.Status.OPEN),
                                              status=Pairing.Status.PROPOSED, volunteered_at__isnull=False).count(),
        "declined": needs.exclude(status=Need.Status.CLOSED).filter(pairings__answer=Pairing.Answer.DECLINED)
        .exclude(pairings__answer=Pairing.Answer.ACCEPTED).distinct().count(),
        # the firms' ratings of ended projects: satisfied = 满意 + 基本满意, as for requests
        "rated": rated, "dissatisfied": grades.get(Satisfaction.DISSATISFIED, 0),
        "satisfaction": (rated - grades.get(Satisfaction.DISSATISFIED, 0)) / rated if rated else None,
    }
