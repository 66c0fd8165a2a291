"""What the spot checks' pages show: their measures for the samples a reader sees."""

from __future__ import annotations

import datetime as dt

from django.db.models import Case, Count, DateField, DecimalField, Exists, F, OuterRef, Q, QuerySet, When
from django.utils import timezone

from qifu.inspections.models import Evidence, Sample
from qifu.reports.models import AnnualReport


def follow_up_due(today: dt.date) -> Q:
    """The orders to correct that wait for their follow-up (复查) on ``today``: the entity said it
    has corrected, or the last day has passed (``Correction.STATED`` and ``OVERDUE``)."""
    return (Q(result=Sample.Result.CORRECTED, corrected_on__isnull=True, listing__isnull=True)
            & (Q(stated_at__isnull=False) | Q(correct_by__lt=today)))


def sent_documents() -> Q:
    """The samples whose entity (or staff for it) has sent a document (``Evidence``)."""
    return Q(Exists(Evidence.objects.filter(sample=OuterRef("pk"))))


def sent_nothing() -> Q:
    """The samples waiting for their check whose entity has sent no document."""
    return Q(result="") & ~sent_documents()


def more_time_waiting() -> Q:
    """The samples whose firm asked for more time and waits for its inspectors' answer
    (``Sample.more_time_waiting``)."""
    return Q(result="", more_time_asked_at__isnull=False, more_time_answered_at__isnull=True)


def documents_due() -> Case:
    """Each sample's day for its documents, in the database (``Sample.documents_due``): its own
    where that is later than its check's; NULL for an on-site check."""
    return Case(When(documents_by__gt=F("inspection__documents_by"), then=F("documents_by")),
                default=F("inspection__documents_by"), output_field=DateField())


def measures(qs: QuerySet[Sample], today: dt.date | None = None) -> dict:
    """Of ``qs``: drawn, checked, waiting, overdue (not checked by the check's last day), listed
    because of a result, orders to correct waiting for their follow-up and found corrected, and
    how many of each result, in the results' order (``results``, and as a chart's ``chart``); and those that sent documents
    (``documents``), those waiting for their check that have sent none (``no_documents``), and
    those a written check's notice reached (``told``), and those whose firm asked for more time
    and waits for an answer (``more_time``)."""
    today = today or timezone.localdate()
    m = qs.aggregate(documents=Count("id", filter=sent_documents()),
                     no_documents=Count("id", filter=sent_nothing()),
                     told=Count("id", filter=Q(notified_at__isnull=False)),
                     more_time=Count("id", filter=more_time_waiting()),
                     drawn=Count("id"), checked=Count("id", filter=~Q(result="")),
                     overdue=Count("id", filter=Q(result="", inspection__finish_by__lt=today)),
                     listed=Count("id", filter=Q(listing__isnull=False)),
                     follow_up=Count("id", filter=follow_up_due(today)),
                     corrected_done=Count("id", filter=Q(corrected_on__isnull=False)),
                     **{r.value: Count("id", filter=Q(result=r.value)) for r in Sample.Result})
    m["waiting"] = m["drawn"] - m["checked"]
    m["problems"] = m["checked"] - m[Sample.Result.OK]
    m["results"] = [(r.label, m[r.value]) for r in Sample.Result]
    m["chart"] = {"labels": [label for label, _ in m["results"]], "values": [n for _, n in m["results"]]}
    return m


def untold(qs: QuerySet[Sample]) -> QuerySet[Sample]:
    """Those of ``qs`` waiting for their check that no notice of a written check reached (neither
    a mobile nor an email; or not told yet): for their inspectors to phone or visit."""
    return qs.filter(result="", notified_at__isnull=True)


# what an inspection record (检查记录表) asks the inspectors to check of each kind of entity's
# report: the published figures that can be held against evidence (payroll, accounts, tax,
# social insurance)
SHEET_FIELDS = {
    "enterprise": ("employees", "total_assets", "total_liabilities", "total_revenue", "total_profit", "total_tax_paid",
                   "si_pension_insured", "operating_status", "contact_address"),
    "individual": ("employees", "turnover", "total_tax_paid", "operating_status", "contact_address"),
    "cooperative": ("coop_members", "coop_sales", "coop_surplus", "coop_gov_subsidies", "operating_status",
                    "contact_address"),
}


def sheet_rows(report, entity_type: str) -> list[tuple[str, object]]:
    """The published values of ``report`` an inspection record lists for checking, with their
    labels (``SHEET_FIELDS``): 未填报 where the report left one empty, or for every one when no
    report of the year was imported (``report`` None)."""
    rows = []
    for name in SHEET_FIELDS.get(entity_type, SHEET_FIELDS["enterprise"]):
        field = AnnualReport._meta.get_field(name)
        value = getattr(report, name) if report is not None else None
        if value is not None and field.choices:
            value = dict(field.choices).get(value, value)
        elif value is not None and isinstance(field, DecimalField):
            value = f"{value.normalize():f} 万元"
        rows.append((field.verbose_name, "未填报" if value is None else value))
    return rows


def for_entity(uscc: str, today: dt.date | None = None) -> list[Sample]:
    """An entity's samples, newest first, each with where its order to correct stands
    (``state_label``, empty for other results), its documents sent, and whether more may be
    sent (``may_send``)."""
    today = today or timezone.localdate()
    samples = list(Sample.objects.filter(entity_id=uscc).select_related("inspection", "listing")
                   .prefetch_related("inspectors", "evidence").order_by("-inspection__drawn_at"))
    for s in samples:
        s.state_label = s.correction_label(today)
        s.may_send = s.takes_evidence(today)
    return samples
