"""Read-only queries behind the request pages: the queue and the measures.

The measures (domain/enterprise-services.md §B.2, B.6), each over the requests a user may see:
- closure rate (办结率) = closed ÷ all;
- on-time signing rate (按时签收率) = signed by the deadline ÷ signed (a request imported from a
  ledger that never recorded its signing is left out);
- on-time answer rate (按时答复率) = answered by the deadline ÷ answered;
- satisfaction rate (满意率) = (满意 + 基本满意) ÷ rated;
- reopen rate (重办率) = requests reopened at least once ÷ answered or closed.
The department ranking weighs response, resolution and satisfaction 30 : 35 : 35, as Jungar
Banner's published scheme does (§B.2; Beijing's own weights are not public).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from qifu.engine.requests.workflow import State
from qifu.service_requests.models import ServiceRequest

WEIGHTS = {"signing": 0.30, "closure": 0.35, "satisfaction": 0.35}


@dataclass
class Measures:
    label: str
    total: int
    closed: int
    signed: int
    signed_on_time: int
    answered: int
    answered_on_time: int
    rated: int
    satisfied: int
    reopened: int
    overdue_open: int
    transfers: int

    @staticmethod
    def _rate(a: int, b: int) -> float | None:
        return a / b if b else None

    @property
    def closure_rate(self):
        return self._rate(self.closed, self.total)

    @property
    def signing_rate(self):
        return self._rate(self.signed_on_time, self.signed)

    @property
    def answer_rate(self):
        return self._rate(self.answered_on_time, self.answered)

    @property
    def satisfaction_rate(self):
        return self._rate(self.satisfied, self.rated)

    @property
    def reopen_rate(self):
        return self._rate(self.reopened, self.answered)

    @property
    def score(self) -> float | None:
        parts = {"signing": self.signing_rate, "closure": self.closure_rate, "satisfaction": self.satisfaction_rate}
        known = {k: v for k, v in parts.items() if v is not None}
        if not known:
            return None
        return 100 * sum(WEIGHTS[k] * v for k, v in known.items()) / sum(WEIGHTS[k] for k in known)


AGGREGATES = dict(
    total=Count("id"),
    closed=Count("id", filter=Q(status=State.CLOSED)),
    signed=Count("id", filter=Q(signed_at__isnull=False, sign_due__isnull=False)),
    signed_on_time=Count("id", filter=Q(signed_at__isnull=False, sign_due__isnull=False, signed_at__lte=F("sign_due"))),
    answered=Count("id", filter=Q(answered_at__isnull=False) | Q(status=State.CLOSED)),
    answered_on_time=Count("id", filter=(Q(answered_at__isnull=False, answered_at__lte=F("answer_due")))
                           | Q(answered_at__isnull=True, status=State.CLOSED, closed_at__lte=F("answer_due"))),
    rated=Count("id", filter=~Q(satisfaction="")),
    satisfied=Count("id", filter=Q(satisfaction__in=["satisfied", "basically"])),
    reopened=Count("id", filter=Q(reopen_count__gt=0)),
    overdue_open=Count("id", filter=Q(overdue=True) & ~Q(status=State.CLOSED)),
    transfers=Count("id", filter=Q(transfer_count__gt=0)),
)


EXTRA = dict(  # what the page and the panel show beside the measures
    satisfied_only=Count("id", filter=Q(satisfaction="satisfied")),
    basically_only=Count("id", filter=Q(satisfaction="basically")),
    dissatisfied=Count("id", filter=Q(satisfaction="dissatisfied")),
    open=Count("id", filter=~Q(status=State.CLOSED)),
    waiting_sign=Count("id", filter=Q(status=State.SUBMITTED)),
    callbacks=Count("id", filter=Q(callback_needed=True, callback_done=False)),
)
DIMENSIONS = ("department__name", "town__name", "category")


def _measures(label: str, row: dict) -> Measures:
    return Measures(label, **{k: row.get(k) or 0 for k in AGGREGATES})


def overall(qs: QuerySet[ServiceRequest], label: str = "合计") -> Measures:
    return _measures(label, qs.aggregate(**AGGREGATES))


def cube(qs: QuerySet[ServiceRequest]) -> list[dict]:
    """Every count, per department × township × category, in one pass over the requests; the
    page's tables and charts add these up (seven passes over 100,000 requests took a second)."""
    return list(qs.values(*DIMENSIONS).annotate(**AGGREGATES, **EXTRA).order_by())


def roll(rows: list[dict], field: str | None, labels: dict | None = None) -> list[Measures]:
    """The cube added up by ``field`` (None: everything)."""
    totals: dict = {}
    for row in rows:
        key = row[field] if field else "合计"
        acc = totals.setdefault(key, dict.fromkeys([*AGGREGATES, *EXTRA], 0))
        for k in acc:
            acc[k] += row[k]
    return [_measures((labels or {}).get(k, k) or "（未填）", v) for k, v in sorted(totals.items(), key=lambda kv: str(kv[0]))]


def by(qs: QuerySet[ServiceRequest], field: str, labels: dict | None = None) -> list[Measures]:
    """Measures per value of ``field`` (``department__name``, ``town__name``, ``category``)."""
    return roll(cube(qs), field, labels)


def rank(measures: list[Measures]) -> list[Measures]:
    """Best first (those with no rated, signed or closed request last)."""
    return sorted(measures, key=lambda m: (m.score is None, -(m.score or 0), m.label))


def ranking(qs: QuerySet[ServiceRequest]) -> list[Measures]:
    """Departments by score, best first."""
    return rank(by(qs, "department__name"))


def panel(qs: QuerySet[ServiceRequest], today: dt.date | None = None) -> dict:
    """The home dashboard's requests panel: the open queue, what is overdue, and the rates, in
    one query; and the requests received and closed in each of the last twelve months, as a
    chart (``request-months``)."""
    row = qs.aggregate(**AGGREGATES, **EXTRA)
    months = last_months(today or timezone.localdate())
    return {"measures": _measures("合计", row), "open": row["open"] or 0, "waiting_sign": row["waiting_sign"] or 0,
            "overdue": row["overdue_open"] or 0, "callbacks": row["callbacks"] or 0,
            "charts": {"request-months": {"labels": [f"{m.year}年{m.month}月" for m in months], "integer": True, "series": [
                {"label": "受理", "values": per_month(qs, "submitted_at", months)},
                {"label": "办结", "values": per_month(qs, "closed_at", months)}]}}}


def last_months(today: dt.date, n: int = 12) -> list[dt.date]:
    """The first days of the ``n`` months up to ``today``'s, oldest first."""
    first, out = today.replace(day=1), []
    for _ in range(n):
        out.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return out[::-1]


def per_month(qs: QuerySet[ServiceRequest], field: str, months: list[dt.date]) -> list[int]:
    """How many of ``qs`` have ``field`` (a time) in each of ``months`` (local time)."""
    since = timezone.make_aware(dt.datetime.combine(months[0], dt.time()))
    counts = {timezone.localtime(m).date() if isinstance(m, dt.datetime) else m: n for m, n in
              qs.filter(**{f"{field}__gte": since}).annotate(month=TruncMonth(field)).values_list("month")
              .annotate(n=Count("id")).order_by()}
    return [counts.get(m, 0) for m in months]


def satisfaction_counts(rows: list[dict]) -> list[int]:
    return [sum(r[k] for r in rows) for k in ("satisfied_only", "basically_only", "dissatisfied")]
