"""Reading shared labs' data for pages and the API: a week of an instrument's slots, a firm's
voucher and bookings, and the measures (test batches by lab, industry and township; voucher
use)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import ExtractYear, Substr
from django.utils import timezone

from qifu.labs import actions
from qifu.labs.models import FREE_CANCEL_HOURS, Booking, Instrument, SampleOrder, Voucher, Waiting


def week(instrument: Instrument, first: dt.date, days: int = 7) -> list[dict]:
    """Each day from ``first``: its slots with the units free, past slots marked, and why it
    is closed where the lab closed it (``closed``)."""
    now = timezone.now()
    closed = actions.closed_days(instrument, first, first + dt.timedelta(days=days - 1))
    out = []
    for n in range(days):
        day = first + dt.timedelta(days=n)
        free = actions.free_units(instrument, day, closed)
        out.append({"day": day, "weekday": "周" + actions.WEEKDAYS[day.weekday()], "closed": closed.get(day, ""),
                    "slots": [{"start": s, "free": k, "past": s <= now} for s, k in free.items()]})
    return out


def closures(lab, today: dt.date):
    """The lab's closures not yet over, soonest first."""
    return lab.closures.filter(last_day__gte=today).select_related("instrument").order_by("first_day", "id")


def voucher(entity, year: int) -> dict | None:
    v = Voucher.objects.filter(entity=entity, year=year).first()
    if v is None:
        return None
    used = actions.voucher_used(v)
    return {"voucher": v, "year": year, "budget": v.budget, "used": used, "left": v.budget - used, "share": v.share}


def bookings_of(entity):
    return Booking.objects.filter(entity=entity).select_related("instrument__lab", "batch").order_by("-start")


def waiting_of(entity):
    """A firm's waits (候补), the newest first."""
    return Waiting.objects.filter(entity=entity).select_related("instrument__lab", "booking").order_by("-created_at", "-id")


def samples_held(orders):
    """Of ``orders``, those whose report is issued and whose samples are still at the lab (to
    hand back or dispose of: ``SampleOrder.samples_held``)."""
    return orders.filter(status=SampleOrder.Status.ISSUED, samples_out_at__isnull=True)


def place_in_queue(w: Waiting) -> int:
    """Where an open wait stands in its slot's queue (1: served first), counted over every
    firm's waits for the same instrument and start, in the order they were made."""
    ahead = Waiting.objects.filter(instrument_id=w.instrument_id, start=w.start, status=Waiting.Status.WAITING).filter(
        Q(created_at__lt=w.created_at) | Q(created_at=w.created_at, id__lt=w.id))
    return ahead.count() + 1


def measures(bookings, batches, vouchers, waits, orders=None) -> dict:
    """The measures over querysets already narrowed to what the reader may see; of ``waits``,
    the open ones a cancellation could still serve, and those served; of send-in ``orders``,
    those open at each step, and what the received ones cost."""
    by_lab = list(batches.values("lab__name").annotate(n=Count("id"), samples=Sum("samples")).order_by("-n"))
    by_town = list(batches.values("town__name").annotate(n=Count("id")).order_by("-n"))
    by_section = list(batches.annotate(section=Substr("entity__industry_code", 1, 1)).values("section")
                      .annotate(n=Count("id")).order_by("-n"))
    by_year = list(batches.annotate(year=ExtractYear("tested_on")).values("year").annotate(n=Count("id")).order_by("year"))
    live = bookings.exclude(status=Booking.Status.CANCELLED)
    paid = live.aggregate(price=Sum("price"), voucher=Sum("voucher_amount"))
    granted = vouchers.aggregate(s=Sum("budget"))["s"] or Decimal(0)
    steps = dict(orders.values_list("status").annotate(n=Count("id"))) if orders is not None else {}
    sent = orders.aggregate(price=Sum("price"), voucher=Sum("voucher_amount")) if orders is not None else {}
    return {
        "by_lab": by_lab, "by_town": by_town, "by_section": by_section, "by_year": by_year,
        "batches": batches.count(), "firms": batches.values("entity").distinct().count(),
        "bookings": live.count(), "cancelled": bookings.filter(status=Booking.Status.CANCELLED).count(),
        "upcoming": live.filter(status=Booking.Status.BOOKED, start__gte=timezone.now()).count(),
        # waiting for the lab's confirmation (a lab that confirms bookings)
        "to_confirm": live.filter(status=Booking.Status.PENDING).count(),
        # its time is past and the lab has not recorded the test batch yet
        "unrecorded": live.filter(status=Booking.Status.BOOKED, end__lt=timezone.now()).count(),
        "price": (paid["price"] or Decimal(0)) + (sent.get("price") or Decimal(0)),
        "voucher_used": (paid["voucher"] or Decimal(0)) + (sent.get("voucher") or Decimal(0)),
        # send-in orders (送检) waiting for the lab: to receive, being tested, to sign off
        "to_receive": steps.get("submitted", 0), "testing": steps.get("testing", 0), "to_review": steps.get("review", 0),
        "orders": sum(steps.values()),
        # reports issued, the samples still at the lab: to hand back or dispose of
        "samples_held": samples_held(orders).count() if orders is not None else 0,
        "voucher_granted": granted, "voucher_firms": vouchers.count(),
        "hours": sum(((b["end"] - b["start"]).total_seconds() / 3600 for b in live.values("start", "end")), 0.0),
        "waiting": waits.filter(status=Waiting.Status.WAITING,
                                start__gte=timezone.now() + dt.timedelta(hours=FREE_CANCEL_HOURS)).count(),
        "waits_served": waits.filter(status=Waiting.Status.BOOKED).count(),
        # the firms' ratings of done tests, booked or sent in: 满意 and 基本满意 over all rated
        **_ratings([bookings] if orders is None else [bookings, orders]),
    }


def _ratings(rated_querysets) -> dict:
    counts: dict[str, int] = {}
    to_call_back = 0
    for qs in rated_querysets:
        for rating, n in qs.exclude(rating="").values_list("rating").annotate(n=Count("id")):
            counts[rating] = counts.get(rating, 0) + n
        to_call_back += qs.filter(rating="dissatisfied", callback_at__isnull=True).count()
    rated = sum(counts.values())
    good = counts.get("satisfied", 0) + counts.get("basically", 0)
    return {"rated": rated, "dissatisfied": counts.get("dissatisfied", 0), "to_call_back": to_call_back,
            "satisfaction": round(100 * good / rated, 1) if rated else None}
