"""What the abnormal-operation list's pages show: its measures for the listings a reader sees."""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from qifu.abnormal.actions import STANDING, overdue_from, refusal_key, warn_before
from qifu.abnormal.models import ABOUT, Listing, Ruling
from qifu.engine.requests.workflow import State
from qifu.reminders.models import OutboxMessage
from qifu.reports.models import AnnualReport


def with_back_filed(qs: QuerySet[Listing]) -> QuerySet[Listing]:
    """``qs`` with ``back_filed``: whether the entity has filed the listed year's report since."""
    return qs.annotate(back_filed=Exists(AnnualReport.objects.filter(entity_id=OuterRef("entity_id"),
                                                                      report_year=OuterRef("report_year"))))


def overdue_before(now: dt.datetime | None = None) -> dt.datetime:
    """An application made before this moment has waited longer than the bureau may take
    (``actions.answer_by``: five working days after the day it was received, county time)."""
    return dt.datetime.combine(overdue_from(timezone.localdate(now or timezone.now())), dt.time(),
                               tzinfo=timezone.get_current_timezone())


def unreached(qs: QuerySet[Listing]) -> QuerySet[Listing]:
    """The standing listings of ``qs`` whose decision reached the entity neither by text nor by
    email (none stored for it, or its delivery failed) and has not been served on paper yet:
    their written decisions are to be printed and served. Not those imported from the national
    system: their decisions were made and served there."""
    which = Case(When(~Q(ground=Listing.Ground.NOT_FILED), then=Concat(Value("u"), Cast("pk", output_field=CharField()))),
                 default=Cast("report_year", output_field=CharField()), output_field=CharField())
    told = OutboxMessage.objects.filter(  # actions.told_key
        key=Concat(Value("abnormal-listed:"), OuterRef("entity_id"), Value(":"), OuterRef("which"),
                   output_field=CharField())
    ).exclude(status=OutboxMessage.Status.FAILED)
    qs = qs.annotate(which=which)
    return qs.filter(status__in=STANDING, served_on__isnull=True, imported=False).exclude(Exists(told))


def unreached_refusals(listings: QuerySet[Listing]) -> list[Ruling]:
    """The refusals to remove (不予移出) of ``listings`` that reached the entity neither by text
    nor by email and have not been served on paper, while their listing still stands as refused
    (not applied for again, removed or annulled since): their written decisions are to be printed
    and served, as a listing's are (the appeal's periods run from the service). Oldest first."""
    refusals = list(Ruling.objects.filter(kind=Ruling.Kind.REFUSE, served_on__isnull=True,
                                          listing__in=listings.filter(status=Listing.Status.LISTED))
                    .select_related("listing", "listing__entity").order_by("decided_at", "pk"))
    reached = set(OutboxMessage.objects.filter(key__in=[refusal_key(r) for r in refusals])
                  .exclude(status=OutboxMessage.Status.FAILED).values_list("key", flat=True))
    return [r for r in refusals if refusal_key(r) not in reached]


def moved(qs: QuerySet[Listing]) -> QuerySet[Listing]:
    """The standing listings of ``qs`` for an unreachable address whose entity has registered
    another address since (``Listing.moved``): staff can check it and take them off."""
    return (qs.filter(status__in=STANDING, ground=Listing.Ground.UNREACHABLE).exclude(address="")
            .exclude(entity__address=F("address")))


# standing with an objection not yet settled (its request not closed)
OBJECTED = Q(status__in=STANDING, objection__isnull=False) & ~Q(objection__status=State.CLOSED)


def measures(qs: QuerySet[Listing], today: dt.date | None = None) -> dict:
    """Counts of ``qs``: standing (listed or applied), listed and marked among them, applications
    waiting and those waiting too long, entities that filed late but have not applied (whom
    staff can help off the list: 信用修复), removed, annulled as wrong, standing with an objection
    not yet settled, standing listings reaching three years within ``WARN_DAYS`` days (the
    serious list follows), and standing for an unreachable address, those registered anew since
    among them, and standing for false information. Entities (户) are counted once however many
    listings they have (one for each year not filed, say); applications and objections (件) and
    the standing decisions (``standing_decisions``) are counted each."""
    today = today or timezone.localdate()

    def entities(q: Q) -> Count:
        return Count("entity", distinct=True, filter=q)

    m = qs.aggregate(
        standing=entities(Q(status__in=STANDING)),
        standing_decisions=Count("id", filter=Q(status__in=STANDING)),
        listed=entities(Q(status__in=STANDING, kind=Listing.Kind.LIST)),
        marked=entities(Q(status__in=STANDING, kind=Listing.Kind.MARK)),
        applied=Count("id", filter=Q(status=Listing.Status.APPLIED)),
        overdue=Count("id", filter=Q(status=Listing.Status.APPLIED, applied_at__lt=overdue_before())),
        removed=entities(Q(status=Listing.Status.REMOVED)),
        annulled=entities(Q(status=Listing.Status.ANNULLED)),
        objected=Count("id", filter=OBJECTED),
        warn=entities(Q(status__in=STANDING, listed_on__lte=warn_before(today))),
        unreachable=entities(Q(status__in=STANDING, ground=Listing.Ground.UNREACHABLE)),
        false_info=entities(Q(status__in=STANDING, ground=Listing.Ground.FALSE_INFO)),
        uncorrected=entities(Q(status__in=STANDING, ground=Listing.Ground.UNCORRECTED)),
    )
    # apart: a count filtered on an EXISTS annotation counted none on SQLite (Django 5.2)
    m["back_filed"] = (with_back_filed(qs.filter(status=Listing.Status.LISTED)).filter(back_filed=True)
                       .values("entity").distinct().count())
    m["moved"] = moved(qs).count()  # apart: the address compared across the join, as the filter reads it
    by_year = (qs.values("report_year", "ground").annotate(on=Count("id", filter=Q(status__in=STANDING)),
                                                           off=Count("id", filter=Q(status=Listing.Status.REMOVED)))
               .order_by("report_year", "ground"))
    by_year = [r for r in by_year if r["report_year"]] + [r for r in by_year if not r["report_year"]]
    m["chart"] = {"labels": [f"{r['report_year']} 年度" if r["report_year"] else ABOUT.get(r["ground"], "")
                             for r in by_year],
                  "stacked": True,
                  "series": [{"label": "列入中", "values": [r["on"] for r in by_year]},
                             {"label": "已移出", "values": [r["off"] for r in by_year]}]}
    return m


def for_entity(entity) -> list[Listing]:
    """An entity's listings, newest first, each with ``back_filed`` and its later decisions
    (its page, its portal)."""
    return list(with_back_filed(Listing.objects.filter(entity=entity)).select_related("objection")
                .prefetch_related("rulings").order_by("-listed_on", "-pk"))
