"""The reminder jobs that `qifu worker` runs on a schedule (``qifu.worker``).

- ``send_outbox`` every minute: send what is due in the outbox (nothing in quiet hours);
- ``plan_day`` once a day at ``QIFU_REMIND_AT`` (default 09:00, local time) during the filing
  season (1 January–30 June): decide the day's reminders and send them (`run_day`).

Both are idempotent (outbox keys are per entity, purpose and day; a message is claimed before
it is sent), so a restart, a second worker or a catch-up run cannot send twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from qifu import config
from qifu.engine.season import in_season

SHANGHAI = ZoneInfo("Asia/Shanghai")
log = logging.getLogger(__name__)


def remind_at() -> dt.time:
    value = config.get("QIFU_REMIND_AT", "09:00") or "09:00"
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise config.ConfigError(f"QIFU_REMIND_AT 应为 HH:MM，而不是 {value!r}") from None


def plan_due(now: dt.datetime) -> bool:
    """Whether today's plan is due at ``now``: in season and at or after the planning time."""
    local = now.astimezone(SHANGHAI)
    return in_season(local.date()) and local.time() >= remind_at()


def plan_day(now: dt.datetime | None = None) -> dt.date | None:
    """Decide and send today's reminders, if it is a day of the season; returns the day."""
    from qifu.reminders.actions import run_day

    now = now or dt.datetime.now(tz=SHANGHAI)
    today = now.astimezone(SHANGHAI).date()
    if not in_season(today):
        return None
    result = run_day(today)
    log.warning("提醒计划 %s：决定 %s 条，任务 %s", today, result.decided, result.tasks)
    return today


def send_outbox(now: dt.datetime | None = None) -> dict[str, int]:
    """Send what is due; after sending, bring the history's analytical copy up to date (the
    dashboard reads it) here rather than in a page view."""
    from qifu import analytics
    from qifu.reminders import sender

    counts = sender.send_due(now=now)
    if counts.get("sent"):
        analytics.refresh("reminders")
    return counts
