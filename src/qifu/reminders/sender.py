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

from django.db import connection, transaction
from django.db.models import F
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
    batch: list[OutboxMessage] = []
    for message in (queue[:limit] if limit else queue).iterator(chunk_size=2000):
        channel = channels.get(message.channel) or channels.setdefault(message.channel, channel_for(message.channel))
        if channel.idempotent and not rate:
            # A channel that drops repeats of a key (the SMS gateway, the file backend) is sent
            # in batches: one transaction marks a batch sending and one marks it sent. A crash in
            # between re-sends the batch, and the channel keeps one copy of each.
            batch.append(message)
            if len(batch) >= BATCH:
                _send_batch(batch, now, channel, counts)
                batch = []
            continue
        outcome = send_one(message, now, channels)
        if outcome:
            counts[outcome] += 1
        if outcome == "sent" and rate:
            time.sleep(1 / rate)
    by_channel: dict[str, list[OutboxMessage]] = {}
    for m in batch:
        by_channel.setdefault(m.channel, []).append(m)
    for name, messages in by_channel.items():
        _send_batch(messages, now, channels[name], counts)
    return counts


BATCH = 500


def _send_batch(batch: list[OutboxMessage], now: dt.datetime, channel, counts: dict[str, int]) -> None:
    if len({m.channel for m in batch}) > 1:
        for name in {m.channel for m in batch}:
            _send_batch([m for m in batch if m.channel == name], now, channel_for(name), counts)
        return
    ids = [m.pk for m in batch]
    with transaction.atomic():
        mine = set(OutboxMessage.objects.select_for_update().filter(
            pk__in=ids, status=OutboxMessage.Status.PENDING).values_list("pk", flat=True))
        OutboxMessage.objects.filter(pk__in=mine).update(status=OutboxMessage.Status.SENDING,
                                                         attempts=F("attempts") + 1)
    sent: list[OutboxMessage] = []
    for message in batch:
        if message.pk not in mine:
            continue  # another sender took it
        try:
            message.provider_id = channel.send(message)[:120]
        except ChannelError as e:
            counts[_failed(message, now, e)] += 1
            continue
        message.status, message.sent_at = OutboxMessage.Status.SENT, now
        sent.append(message)
    when = connection.ops.adapt_datetimefield_value(now)
    # executemany: the ORM's bulk_update builds a CASE per row, minutes for a day's 100,000 texts
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(f"UPDATE {OutboxMessage._meta.db_table} SET status = %s, sent_at = %s, provider_id = %s "
                        "WHERE id = %s", [(OutboxMessage.Status.SENT, when, m.provider_id, m.pk) for m in sent])
        record_history(sent, now)
    counts["sent"] += len(sent)


def _failed(message: OutboxMessage, now: dt.datetime, error: ChannelError) -> str:
    """Back off and retry, or give up after MAX_ATTEMPTS: "retry" or "failed"."""
    attempts = message.attempts + 1
    final = attempts >= MAX_ATTEMPTS
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.FAILED if final else OutboxMessage.Status.PENDING,
        last_error=str(error)[:1000], next_attempt_at=now + dt.timedelta(minutes=2 ** attempts),
    )
    return "failed" if final else "retry"


def send_one(message: OutboxMessage, now: dt.datetime, channels: dict | None = None) -> str | None:
    """Send one pending message: "sent", "retry", "failed", or None if another sender has it."""
    channels = {} if channels is None else channels
    with transaction.atomic():
        updated = OutboxMessage.objects.filter(pk=message.pk, status=OutboxMessage.Status.PENDING).update(
            status=OutboxMessage.Status.SENDING, attempts=message.attempts + 1
        )
    if not updated:
        return None
    channel = channels.get(message.channel) or channels.setdefault(message.channel, channel_for(message.channel))
    try:
        provider_id = channel.send(message)
    except ChannelError as e:
        return _failed(message, now, e)
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=OutboxMessage.Status.SENT, sent_at=now, provider_id=provider_id[:120]
        )
        record_history([message], now)
    return "sent"


def record_history(messages, when: dt.datetime) -> None:
    """The reminder history (contract §1.6) gets one row per entity each reminder or notice
    was for (sign-in codes are not contacts); delivery receipts later update its status
    through `qifu import reminders`. Runs in the caller's transaction."""
    at = connection.ops.adapt_datetimefield_value(when)
    rows = [(u, at, m.channel, m.purpose, "unknown", at)
            for m in messages if m.purpose in HISTORY_PURPOSES
            for u in [m.entity_id, *(x for x in m.also_for.split(",") if x)]]
    with connection.cursor() as cur:
        cur.executemany(f"INSERT INTO {ReminderRecord._meta.db_table} (uscc, sent_at, channel, purpose, status, "
                        "imported_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)
