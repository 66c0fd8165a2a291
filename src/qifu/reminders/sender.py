"""Sending the outbox: nothing lost, nothing sent twice.

Each message is stored before it is sent. An email (SMTP cannot be asked whether a message
went out) is marked ``sending`` and its attempt counted in a committed transaction before the
channel sees it, and ``sent`` in another after; a sender killed between the two leaves it
``sending``, and the next run marks it ``unknown`` for staff instead of sending it again.
Texts go through channels that drop repeats of a key (the SMS gateway, the file backend): they
are handed over in batches and marked sent after, so a crash re-sends the batch and the
channel keeps one copy of each. Failures retry with exponential backoff, up to ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from qifu import config
from qifu.reminders import decency
from qifu.reminders.channels import ChannelError, channel_for
from qifu.reminders.models import OutboxMessage, ReminderRecord

MAX_ATTEMPTS = 5
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Reminders and correction notices go into the contact history; sign-in codes do not.
HISTORY_PURPOSES = decency.SEASON_PURPOSES


# 状态未知: a message that may or may not have gone out, left for staff to check (``recover``,
# ``hold_unconfirmed``) and then to send again or drop (``do_resend``, ``do_drop``)
AFTER_RESTORE = "恢复备份后无法确认是否已发送：请核对后重发或作废"
DROPPED = "工作人员核对后作废，不再发送"


def hold_unconfirmed(now: dt.datetime) -> int:
    """After a database is restored from an archive: the messages it holds as still to send, or
    being sent, whose time came before ``now``. Between the archive and now the sender may have
    sent them, and the restored database cannot say; sending them again could tell a firm twice.
    They become 状态未知 for staff, as a message the sender cannot confirm does; messages
    planned for later go out as planned. Returns how many."""
    return OutboxMessage.objects.filter(
        status__in=(OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING), next_attempt_at__lte=now,
    ).update(status=OutboxMessage.Status.UNKNOWN, last_error=AFTER_RESTORE)


def do_resend(ids: list[int], now: dt.datetime | None = None) -> int:
    """Messages 状态未知 that staff checked and found not sent: back in the outbox, with their
    attempts counted afresh, for the sender's next run (their key still keeps a text from
    going out twice). Returns how many."""
    return OutboxMessage.objects.filter(pk__in=ids, status=OutboxMessage.Status.UNKNOWN).update(
        status=OutboxMessage.Status.PENDING, attempts=0, next_attempt_at=now or timezone.now(), last_error="")


def do_drop(ids: list[int]) -> int:
    """Messages 状态未知 that staff checked and found sent already, or no longer worth sending:
    失败, with the reason, and never sent. Returns how many."""
    return OutboxMessage.objects.filter(pk__in=ids, status=OutboxMessage.Status.UNKNOWN).update(
        status=OutboxMessage.Status.FAILED, last_error=DROPPED)


def recover() -> int:
    """Resolve messages a sender that stopped (a crash, SIGKILL) left ``sending``: from its
    journal, an email it handed to SMTP is ``sent``, one it had claimed but not yet tried goes
    back to ``pending``, and the one it was handing over is ``unknown`` for staff. A text goes
    back to ``pending`` (its channel drops the repeat). Messages of a sender still running are
    left alone."""
    stuck = list(OutboxMessage.objects.filter(status=OutboxMessage.Status.SENDING)
                 .only("id", "entity_id", "also_for", "purpose", "channel"))
    if not stuck:
        Journal.discard_finished()
        return 0
    live, log = Journal.read_all()
    n = 0
    for message in stuck:
        if message.pk in live:
            continue
        entry = log.get(message.pk, {})
        with transaction.atomic():
            if "sent" in entry:
                provider_id, at = entry["sent"]
                OutboxMessage.objects.filter(pk=message.pk).update(
                    status=OutboxMessage.Status.SENT, sent_at=at, provider_id=provider_id)
                record_history([message], at)
            elif channel_for(message.channel).idempotent or ("claim" in entry and "try" not in entry):
                OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.PENDING)
            else:
                OutboxMessage.objects.filter(pk=message.pk).update(
                    status=OutboxMessage.Status.UNKNOWN,
                    last_error="发送过程中断，无法确认是否已发出；请人工核实，不自动重发")
        n += 1
    Journal.discard_finished()
    return n


class Journal:
    """What this process is doing with the emails it claimed, appended to a file (under
    ``$QIFU_DATA_DIR/outbox``) as it happens: ``claim`` before the claim commits, ``try`` before
    a message goes to SMTP, ``sent`` after SMTP accepted it. Unbuffered writes survive the
    process being killed, so a group of emails needs two transactions, not two per message,
    and a restart still knows which went out."""

    def __init__(self):
        folder = config.data_dir() / "outbox"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"journal-{socket.gethostname()}-{os.getpid()}.log"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, *words) -> None:
        os.write(self.fd, (" ".join(str(w) for w in words) + "\n").encode())

    def clear(self) -> None:
        os.ftruncate(self.fd, 0)

    def close(self) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)

    @staticmethod
    def _files():
        return sorted((config.data_dir() / "outbox").glob(f"journal-{socket.gethostname()}-*.log"))

    @staticmethod
    def _running(path: Path) -> bool:
        pid = int(path.stem.rsplit("-", 1)[1])
        if pid == os.getpid():
            return False  # this process is between groups when it recovers
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @classmethod
    def read_all(cls) -> tuple[set[int], dict[int, dict]]:
        """Messages of senders still running, and what the stopped ones recorded per message."""
        live: set[int] = set()
        log: dict[int, dict] = {}
        for path in cls._files():
            lines = path.read_text(encoding="utf-8").splitlines()
            if cls._running(path):
                live.update(int(i) for line in lines if line.startswith("claim ") for i in line.split()[1:])
                continue
            for line in lines:
                word, *rest = line.split()
                if word == "claim":
                    for i in rest:
                        log.setdefault(int(i), {})["claim"] = True
                elif word == "try" and rest:
                    log.setdefault(int(rest[0]), {})["try"] = True
                elif word == "sent" and len(rest) == 3:
                    log.setdefault(int(rest[0]), {})["sent"] = (rest[1], dt.datetime.fromisoformat(rest[2]))
        return live, log

    @classmethod
    def discard_finished(cls) -> None:
        for path in cls._files():
            if not cls._running(path) and path.stem.rsplit("-", 1)[1] != str(os.getpid()):
                path.unlink(missing_ok=True)


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
    try:
        _send_queue(_queue(now, limit), now, rate, channels, counts)
    finally:
        for channel in channels.values():
            channel.close()
    return counts


@dataclass(slots=True)
class Outgoing:
    """What sending a message needs of its outbox row (a heavy day reads 160,000 of them)."""

    pk: int
    key: str
    entity_id: str
    also_for: str
    purpose: str
    channel: str
    recipient: str
    body: str
    attempts: int
    provider_id: str = ""


def _queue(now: dt.datetime, limit: int | None):
    table = OutboxMessage._meta.db_table
    key = connection.ops.quote_name("key")
    # Sign-in codes are sent by the web process that made them, once: the stored body has the
    # code blanked, and a filer whose code failed asks for another.
    sql = (f"SELECT id, {key}, uscc, also_for, purpose, channel, recipient, body, attempts FROM {table} "
           "WHERE status = %s AND next_attempt_at <= %s AND channel IN ('sms', 'email') AND purpose <> 'signin' "
           "ORDER BY id")
    params = [OutboxMessage.Status.PENDING, connection.ops.adapt_datetimefield_value(now)]
    if limit:
        sql += " LIMIT %s"
        params.append(limit)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()  # not a cursor held open across the sender's own writes
    return [Outgoing(*row) for row in rows]


def _send_queue(queue: list[Outgoing], now: dt.datetime, rate: float, channels: dict, counts: dict[str, int]) -> None:
    """One waiting list per channel: a channel that drops repeats of a key (the SMS gateway,
    the file backend) is sent in batches (``_send_batch``), any other (email) in journalled
    groups (``_send_group``); with a rate limit, one message at a time."""
    waiting: dict[str, list[Outgoing]] = {}
    journal: Journal | None = None

    def flush(name: str) -> None:
        nonlocal journal
        messages, channel = waiting.pop(name), channels[name]
        if channel.idempotent:
            _send_batch(messages, now, channel, counts)
        else:
            journal = journal or Journal()
            _send_group(messages, now, channel, counts, journal)

    try:
        for message in queue:
            channel = channels.get(message.channel) or channels.setdefault(message.channel, channel_for(message.channel))
            if rate:
                outcome = send_one(message, now, channels)
                if outcome:
                    counts[outcome] += 1
                if outcome == "sent":
                    time.sleep(1 / rate)
                continue
            messages = waiting.setdefault(message.channel, [])
            messages.append(message)
            if len(messages) >= (BATCH if channel.idempotent else GROUP):
                flush(message.channel)
        for name in list(waiting):
            flush(name)
    finally:
        if journal is not None:
            journal.close()


GROUP = 100


def _send_group(group: list[Outgoing], now: dt.datetime, channel, counts: dict[str, int], journal: Journal) -> None:
    """Emails: a group claimed in one transaction and marked sent in another, each message's
    hand-over recorded in the journal in between (see ``recover``)."""
    journal.write("claim", *(m.pk for m in group))
    marks = ", ".join(["%s"] * len(group))
    table = OutboxMessage._meta.db_table
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"UPDATE {table} SET status = %s, attempts = attempts + 1 WHERE status = %s AND id IN ({marks}) "
                    "RETURNING id", [OutboxMessage.Status.SENDING, OutboxMessage.Status.PENDING, *(m.pk for m in group)])
        mine = {row[0] for row in cur.fetchall()}
    sent: list[Outgoing] = []
    for message in group:
        if message.pk not in mine:
            continue  # another sender took it
        journal.write("try", message.pk)
        try:
            message.provider_id = channel.send(message)[:120]
        except ChannelError as e:
            counts[_failed(message, now, e)] += 1
            continue
        journal.write("sent", message.pk, message.provider_id.replace(" ", ""), now.isoformat())
        sent.append(message)
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(f"UPDATE {table} SET status = %s, sent_at = %s, provider_id = %s WHERE id = %s",
                        [(OutboxMessage.Status.SENT, connection.ops.adapt_datetimefield_value(now), m.provider_id, m.pk)
                         for m in sent])
        record_history(sent, now)
    journal.clear()
    counts["sent"] += len(sent)


BATCH = 2000


def _send_batch(batch: list[Outgoing], now: dt.datetime, channel, counts: dict[str, int]) -> None:
    """A batch for a channel that drops repeats of a key, handed over and then marked sent in
    one transaction. It needs no ``sending`` claim: a crash before the mark (or a second sender
    taking the same rows) re-sends the batch, the channel keeps one copy of each message, and
    only rows still pending are marked, so the history takes each message once."""
    sent: list[Outgoing] = []
    if hasattr(channel, "send_many"):
        try:
            ids = channel.send_many(batch)
        except ChannelError as e:
            for message in batch:
                counts[_failed(message, now, e)] += 1
            return
        for message, provider_id in zip(batch, ids):
            message.provider_id = provider_id[:120]
        sent = batch
    else:
        for message in batch:
            try:
                message.provider_id = channel.send(message)[:120]
            except ChannelError as e:
                counts[_failed(message, now, e)] += 1
                continue
            sent.append(message)
    if not sent:
        return
    table, when = OutboxMessage._meta.db_table, connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(f"UPDATE {table} SET status = %s, sent_at = %s, provider_id = %s, attempts = attempts + 1 "
                        "WHERE id = %s AND status = %s",
                        [(OutboxMessage.Status.SENT, when, m.provider_id, m.pk, OutboxMessage.Status.PENDING)
                         for m in sent])
        marked = cur.rowcount  # summed over the rows, on SQLite and PostgreSQL alike
        if marked != len(sent):  # another sender marked some first; its history rows are its own
            cur.execute(f"SELECT id FROM {table} WHERE sent_at = %s AND id IN ({', '.join(['%s'] * len(sent))})",
                        [when, *(m.pk for m in sent)])
            mine = {row[0] for row in cur.fetchall()}
            sent = [m for m in sent if m.pk in mine]
        record_history(sent, now)  # the same contact twice is one row (unique entity, time, channel)
    counts["sent"] += marked


def _failed(message: OutboxMessage | Outgoing, now: dt.datetime, error: ChannelError) -> str:
    """Back off and retry, or give up after MAX_ATTEMPTS: "retry" or "failed". ``message``
    holds the attempts before this one (a claim counted it already; a text batch has no claim)."""
    attempts = message.attempts + 1
    final = attempts >= MAX_ATTEMPTS or message.purpose == "signin"
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.FAILED if final else OutboxMessage.Status.PENDING, attempts=attempts,
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
    own = message.channel not in channels  # a channel made here is closed here (a sign-in code)
    channel = channels.get(message.channel) or channels.setdefault(message.channel, channel_for(message.channel))
    try:
        provider_id = channel.send(message)
    except ChannelError as e:
        return _failed(message, now, e)
    finally:
        if own:
            channels.pop(message.channel).close()
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

