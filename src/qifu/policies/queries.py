"""What the pages read about policies: a firm's matches, a policy's ledger, the measures of
policy delivery (paid by policy, township and industry; days from eligibility to payment;
eligible firms not yet confirmed). Township isolation is applied by the caller's queryset."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from django.db.models import Count, Q, Sum

from qifu.policies.models import Match, Payment, Policy

ACTIONABLE = (Match.Status.ELIGIBLE,)
# matches that owe nothing: no longer eligible, refused, or declined by the firm
NOT_OWED = (Match.Status.LAPSED, Match.Status.REJECTED, Match.Status.DECLINED)


def for_entity(uscc: str):
    """A firm's matches, newest data year first."""
    return (Match.objects.filter(entity_id=uscc).select_related("policy")
            .order_by("-policy__year", "policy__code"))


def overview(matches) -> list[dict]:
    """Per policy: firms eligible, waiting, held, lapsed, declined, paid; amounts owed (matched
    and still owed), released, paid; budget."""
    by = {r["policy"]: r for r in matches.values("policy").annotate(
        firms=Count("id"), waiting=Count("id", filter=Q(status__in=(Match.Status.ELIGIBLE, Match.Status.APPLIED))),
        held=Count("id", filter=Q(status=Match.Status.HELD)),
        lapsed=Count("id", filter=Q(status=Match.Status.LAPSED)),
        declined=Count("id", filter=Q(status=Match.Status.DECLINED)),
        paid_firms=Count("id", filter=Q(status=Match.Status.PAID)),
        matched=Sum("amount", filter=~Q(status__in=NOT_OWED)))}
    pay = {r["policy"]: r for r in Payment.objects.filter(match__in=matches).values("policy").annotate(
        released=Sum("amount", filter=~Q(status=Payment.Status.CANCELLED)),
        paid=Sum("amount", filter=Q(status=Payment.Status.PAID)))}
    out = []
    for p in Policy.objects.filter(pk__in=by).order_by("-year", "code"):
        row = {**by[p.pk], **pay.get(p.pk, {"released": None, "paid": None}), "policy": p}
        for k in ("matched", "released", "paid"):
            row[k] = row[k] or Decimal(0)
        row["used"] = (row["released"] / p.budget * 100) if p.budget else None
        out.append(row)
    return out


def paid_by(payments, key: str) -> list[tuple[str, float]]:
    """Paid amounts (万元) grouped by ``key`` (a lookup on Payment), largest first."""
    rows = (payments.filter(status=Payment.Status.PAID).values(key).annotate(s=Sum("amount")).order_by("-s"))
    return [(r[key] or "—", float(r["s"])) for r in rows]


def days_to_payment(payments) -> dict:
    """From eligibility to the first installment's arrival (直达 speed): median, 90th percentile,
    and the distribution in bands."""
    rows = list(payments.filter(status=Payment.Status.PAID, seq=1).values_list("match__eligible_on", "paid_on"))
    days = [(paid - eligible).days for eligible, paid in rows if paid and eligible]
    if not days:
        return {"n": 0, "median": None, "p90": None, "bands": []}
    s = pl.Series(days)
    bands = [("7天内", sum(d <= 7 for d in days)), ("8–15天", sum(7 < d <= 15 for d in days)),
             ("16–30天", sum(15 < d <= 30 for d in days)), ("30天以上", sum(d > 30 for d in days))]
    return {"n": len(days), "median": float(s.median()), "p90": float(s.quantile(0.9, "nearest")), "bands": bands}


def by_town(matches) -> list[dict]:
    """Per township: amounts owed (matched, not lapsed, rejected or declined), paid, and firms waiting."""
    live = matches.exclude(status__in=NOT_OWED)
    owed = {r["town__name"]: r for r in live.values("town__name").annotate(
        owed=Sum("amount"), waiting=Count("id", filter=Q(status__in=ACTIONABLE)))}
    paid = dict(Payment.objects.filter(match__in=matches, status=Payment.Status.PAID)
                .values_list("match__town__name").annotate(s=Sum("amount")))
    rows = [{"town": t, "owed": float(r["owed"] or 0), "paid": float(paid.get(t) or 0), "waiting": r["waiting"]}
            for t, r in owed.items()]
    return sorted(rows, key=lambda r: -r["owed"])
