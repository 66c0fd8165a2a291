"""Limits counted in the database, atomically, so that they hold across worker processes and
under concurrent requests: sixty wrong codes sent at once are five failures and fifty-five
refusals, not six failures.

A limit is a key (what and whose, e.g. ``signin-ip:203.0.113.9``), a window in seconds and a
maximum. ``take`` counts one more if the window's count is below the maximum, in one statement
(an upsert whose update is conditional), and says whether it did; ``give_back`` uncounts one
(an attempt that turned out not to count); ``reset`` forgets the window (a right code ends the
failures before it). Windows are fixed (an hour is 10:00–11:00), which
is simple to explain: "try again after 11:00".
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import connection
from django.db.models import F
from django.utils import timezone

from qifu.accounts.models import RateCounter


def window_start(window: int, now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % window, tz=dt.UTC)


def _key(key: str, window: int, now: dt.datetime | None) -> tuple[str, dt.datetime]:
    start = window_start(window, now)
    return f"{key}@{int(start.timestamp())}/{window}", start


def take(key: str, limit: int, window: int, now: dt.datetime | None = None) -> bool:
    """Count one for ``key`` in the current window if fewer than ``limit`` were counted."""
    full, start = _key(key, window, now)
    table = RateCounter._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} ({connection.ops.quote_name('key')}, window_start, count) VALUES (%s, %s, 1) "
            f"ON CONFLICT ({connection.ops.quote_name('key')}) DO UPDATE SET count = {table}.count + 1 "
            f"WHERE {table}.count < %s RETURNING count",
            [full, connection.ops.adapt_datetimefield_value(start), limit],
        )
        row = cur.fetchone()
    if random.random() < 0.01:
        prune(now)
    return row is not None and row[0] <= limit


def give_back(key: str, window: int, now: dt.datetime | None = None) -> None:
    full, _ = _key(key, window, now)
    RateCounter.objects.filter(key=full, count__gt=0).update(count=F("count") - 1)


def reset(key: str, window: int, now: dt.datetime | None = None) -> None:
    full, _ = _key(key, window, now)
    RateCounter.objects.filter(key=full).delete()


def count(key: str, window: int, now: dt.datetime | None = None) -> int:
    full, _ = _key(key, window, now)
    return RateCounter.objects.filter(key=full).values_list("count", flat=True).first() or 0


def ends(window: int, now: dt.datetime | None = None) -> dt.datetime:
    """When the current window ends (and its limits reset)."""
    return window_start(window, now) + dt.timedelta(seconds=window)


def prune(now: dt.datetime | None = None) -> None:
    """Forget windows that ended more than a day ago."""
    now = now or timezone.now()
    RateCounter.objects.filter(window_start__lt=now - dt.timedelta(days=2)).delete()


