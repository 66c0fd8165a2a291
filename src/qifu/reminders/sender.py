"""Sending the outbox: nothing lost, nothing sent twice.

Each message is marked ``sending`` (and its attempt counted) in a committed transaction before
the channel sees it, and ``sent`` in another after. A sender killed between the two leaves
``sending`` rows; the next run re-sends them through channels that deduplicate by key (SMS)
and marks the others ``unknown`` for staff (email: SMTP cannot say whether it went out).
Failures retry with exponential backoff, up to ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from qifu import config
from qifu.reminders.channels import ChannelError, channel_for
from qifu.reminders.models import OutboxMessage, ReminderRecord

MAX_ATTEMPTS = 5
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Reminders and correction notices go into the contact history; sign-in codes do not.
HISTORY_PURPOSES = ("filing", "correction")


def recover() -> int:
    """Resolve messages a crashed sender left ``sending``."""
    stuck = OutboxMessage.objects.filter(status=OutboxMessage.Status.SENDING)
    n = 0
    for message in stuck:
        if channel_for(message.channel).idempotent:
            message.status = OutboxMessage.Status.PENDING
        else:
            message.status = OutboxMessage.Status.UNKNOWN
            message.last_error = "发送过程中断，无法确认是否已发出；请人工核实，不自动重发"
        message.save(update_fields=["status", "last_error"])
        n += 1
    return n


def quiet_hours() -> tuple[dt.time, dt.time] | None:
    """``QIFU_QUIET_HOURS`` (default 21:00-08:00, local time; ``off`` for none): no texts or
    emails then."""
    value = config.get("QIFU_QUIET_HOURS", "21:00-08:00") or ""
    if value.strip().lower() in ("off", "none", "0"):
        return None
    start, _, end = value.partition("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


def is_quiet(now: dt.datetime) -> bool:
    hours = quiet_hours()
    if hours is None:
        return False
    t = now.astimezone(SHANGHAI).time()
    start, end = hours
    return (start <= t or t < end) if start > end else (start <= t < end)


def send_due(now: dt.datetime | None = None, limit: int | None = None) -> dict[str, int]:
    """Send the reminders and notices that are due; nothing during quiet hours."""
    now = now or timezone.now()
    recover()
    if is_quiet(now):
        return {"sent": 0, "retry": 0, "failed": 0, "quiet": 1}
    rate = float(config.get("QIFU_SMS_RATE", "0") or 0)  # messages per second, 0 = unlimited
    counts = {"sent": 0, "retry": 0, "failed": 0}
    channels: dict[str, object] = {}
    queue = OutboxMessage.objects.filter(
        status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now, channel__in=("sms", "email")
    ).order_by("id")
    for message in queue[:limit] if limit else queue:
        outcome = send_one(message, now, channels)
        if outcome:
            counts[outcome] += 1
        if outcome == "sent" and rate:
            time.sleep(1 / rate)
    return counts


def send_one(message: OutboxMessage, now: dt.datetime, channels: dict | None = None) -> str | None:
    """Send one pending message: "sent", "retry", "failed", or None if another sender has it."""
    channels = {} if channels is None else channels
    with transaction.atomic():
        updated = OutboxMessage.objects.filter(pk=message.pk, status=OutboxMessage.Status.PENDING).update(
            status=OutboxMessage.Status.SENDING, attempts=message.attempts + 1
        )
    if not updated:
        return None
    channel = channels.setdefault(message.channel, channel_for(message.channel))
    try:
        provider_id = channel.send(message)
    except ChannelError as e:
        attempts = message.attempts + 1
        final = attempts >= MAX_ATTEMPTS
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=OutboxMessage.Status.FAILED if final else OutboxMessage.Status.PENDING,
            last_error=str(e)[:1000],
            next_attempt_at=now + dt.timedelta(minutes=2 ** attempts),
        )
        return "failed" if final else "retry"
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=OutboxMessage.Status.SENT, sent_at=now, provider_id=provider_id[:120]
        )
        if message.purpose in HISTORY_PURPOSES:
            record_history(message, now)
    return "sent"


def record_history(message: OutboxMessage, when: dt.datetime) -> None:
    """The reminder history (contract §1.6) gets one row per entity the message was for;
    delivery receipts later update its status through `qifu import reminders`."""
    usccs = [message.entity_id] + [u for u in message.also_for.split(",") if u]
    ReminderRecord.objects.bulk_create(
        [ReminderRecord(entity_id=u, sent_at=when, channel=message.channel, purpose=message.purpose,
                        status="unknown", imported_at=when) for u in usccs],
        ignore_conflicts=True,
    )
