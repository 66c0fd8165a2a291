"""The day's reminder plan on a schedule, inside `qifu serve`.

Every minute: send what is due in the outbox (outside quiet hours); once a day at
``QIFU_REMIND_AT`` (default 09:00, local time), during the filing season (1 January–30 June),
decide the day's reminders (`run_day`). Both are idempotent — outbox keys are per entity,
purpose and day — so several servers or a restart cannot send twice. ``QIFU_SCHEDULE=0`` turns
the schedule off (e.g. when cron runs `qifu remind run` instead).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from django.db import close_old_connections

from qifu import config

SHANGHAI = ZoneInfo("Asia/Shanghai")
log = logging.getLogger(__name__)


def remind_at() -> dt.time:
    return dt.time.fromisoformat(config.get("QIFU_REMIND_AT", "09:00") or "09:00")


def in_season(day: dt.date) -> bool:
    return dt.date(day.year, 1, 1) <= day <= dt.date(day.year, 6, 30)


def tick(now: dt.datetime, last_run: dt.date | None) -> dt.date | None:
    """One step of the schedule at ``now``; returns the day whose plan has been run."""
    from qifu.reminders import sender
    from qifu.reminders.actions import run_day

    local = now.astimezone(SHANGHAI)
    today = local.date()
    if last_run != today and in_season(today) and local.time() >= remind_at():
        result = run_day(today)
        log.warning("提醒计划 %s：决定 %s 条，任务 %s", today, result.decided, result.tasks)
        last_run = today
    counts = sender.send_due(now=now)
    if counts.get("sent"):
        from qifu import analytics

        analytics.refresh("reminders")  # the dashboard reads the copy; export it now, not on a view
    return last_run


def loop() -> None:  # pragma: no cover - runs for the life of the server
    if not config.get_bool("QIFU_SCHEDULE", True):
        return
    last_run = None
    while True:
        try:
            last_run = tick(dt.datetime.now(tz=SHANGHAI), last_run)
        except Exception:  # a failed step is logged and retried next minute
            log.exception("提醒计划执行失败")
        finally:
            close_old_connections()
        time.sleep(60)
