"""`qifu worker`: the scheduled jobs, in a process of their own.

The web server forks its workers; a thread running in the process that forks can hold a lock
(an import lock, a logging lock, a database driver's) that the child then waits on for ever.
So nothing that is scheduled runs inside `qifu serve`: it runs here, in one process that never
forks, beside the server (`qifu demo` starts one; deploy/qifu-worker.service for production).

The scheduler is APScheduler 3 (``BlockingScheduler``, jobs in memory). Why it and not the
others (docs/decisions/0001-scheduler.md): every job here is periodic and idempotent, and its
state is in the database already (the outbox, the requests' clocks); we need a clock, not a
queue. huey needs Redis or a SQLite file of its own; procrastinate runs only on PostgreSQL
while SQLite is the embedded default; django-tasks' database backend queues tasks but has no
periodic schedule. APScheduler needs no broker and works the same on both databases.

Each job is named in ``JOBS`` with its trigger; a job that was due while the worker was down
and can catch up (``catch_up``) runs once at start (the day's reminder plan at 10:00 after a
restart at 10:00). SIGTERM or SIGINT ends the process; a job still running is abandoned
(the sender is safe against that: see ``reminders.sender``), so the process ends at once.
"""

from __future__ import annotations

import datetime as dt
import faulthandler
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
log = logging.getLogger("qifu.worker")


@dataclass(frozen=True)
class Job:
    id: str
    handler: str  # "module:function", called with no arguments
    trigger: Callable[[], object]  # builds the APScheduler trigger (reads settings when called)
    catch_up: Callable[[dt.datetime], bool] | None = None  # due now, though its time passed while down?
    label: str = ""


def _every_minute():
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(minutes=1, timezone=SHANGHAI)


def _daily_in_season():
    from apscheduler.triggers.cron import CronTrigger

    from qifu.reminders.tasks import remind_at

    at = remind_at()
    return CronTrigger(month="1-6", hour=at.hour, minute=at.minute, timezone=SHANGHAI)


def _plan_due(now: dt.datetime) -> bool:
    from qifu.reminders.tasks import plan_due

    return plan_due(now)


def _every_few_seconds():
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(seconds=5, timezone=SHANGHAI)


def _every_ten_minutes():
    from apscheduler.triggers.interval import IntervalTrigger

    return IntervalTrigger(minutes=10, timezone=SHANGHAI)


def _every_morning():
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(hour=9, minute=30, timezone=SHANGHAI)


def _every_night():
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger(hour=2, minute=30, timezone=SHANGHAI)


def _backup_missed(now: dt.datetime) -> bool:
    from qifu.backup import missed

    return missed(now)


def _daytime(now: dt.datetime) -> bool:
    """Started in the day: today's morning run is made up now (it is idempotent); at night the
    morning's run comes first."""
    return 9 <= now.astimezone(SHANGHAI).hour < 20


JOBS: tuple[Job, ...] = (
    Job("send_outbox", "qifu.reminders.tasks:send_outbox", _every_minute, label="发送发件箱中到期的短信和邮件"),
    Job("request_clocks", "qifu.service_requests.actions:tick", _every_ten_minutes, catch_up=lambda now: True,
        label="企业诉求临期提醒、超期督办和七天自动办结"),
    Job("plan_day", "qifu.reminders.tasks:plan_day", _daily_in_season, catch_up=_plan_due,
        label="申报季每天决定并发送当天的年报提醒"),
    Job("lab_waits", "qifu.labs.actions:expire_waits", _every_ten_minutes, catch_up=lambda now: True,
        label="候补到开始前 24 小时仍无空位的，结束候补并告知企业"),
    Job("lab_unconfirmed", "qifu.labs.actions:expire_unconfirmed", _every_ten_minutes, catch_up=lambda now: True,
        label="需实验室确认的预约，到开始前 24 小时仍未确认的，取消并告知企业"),
    Job("policy_tell_reached", "qifu.policies.notices:tell_reached", _every_morning, catch_up=_daytime,
        label="符合政策条件、匹配时联系不上的企业，登记了手机或邮箱后告知"),
    Job("policy_follow_up", "qifu.policies.notices:follow_up", _every_morning, catch_up=_daytime,
        label="政策通知两周后仍未确认收款账户（或未申请、未放弃）的企业，再提醒一次"),
    Job("expert_new_needs", "qifu.experts.notices:new_needs", _every_morning, catch_up=_daytime,
        label="告诉开通工作台的专家：与其专长相近、可以自荐的新技术需求"),
    Job("project_filings", "qifu.projects.actions:remind_filings", _every_morning, catch_up=_daytime,
        label="建设项目全部验收后、一次备案期限前提醒建设单位"),
    Job("project_inspections", "qifu.projects.actions:remind_inspections", _every_morning, catch_up=_daytime,
        label="联合验收前一个工作日提醒建设单位"),
    Job("project_promises", "qifu.projects.actions:remind_promises", _every_morning, catch_up=_daytime,
        label="承诺容缺的资料补交期限前提醒建设单位"),
    Job("abnormal_serious", "qifu.abnormal.actions:warn_serious", _every_morning, catch_up=_daytime,
        label="列入经营异常名录将满三年的主体，提前 60 天书面预警一次"),
    Job("inspection_corrections", "qifu.inspections.actions:remind_corrections", _every_morning, catch_up=_daytime,
        label="年报抽查责令改正的主体，期限前 3 天仍未告知已更正的，提醒一次"),
    Job("inspection_notices", "qifu.inspections.actions:tell_drawn", _every_ten_minutes, catch_up=lambda now: True,
        label="书面检查：告知被抽中的主体在期限前上传年报的依据材料"),
    Job("inspection_documents", "qifu.inspections.actions:remind_documents", _every_morning, catch_up=_daytime,
        label="书面检查材料提交期限前 3 天仍未上传材料的主体，提醒一次"),
    Job("policy_matches", "qifu.policies.actions:run_pending_matches", _every_few_seconds,
        label="匹配局管理员在页面上保存的政策，并通知新符合条件的企业"),
    Job("exports", "qifu.web.export_jobs:run_pending", _every_few_seconds, label="生成工作人员申请的后台导出"),
    Job("exports_expire", "qifu.web.export_jobs:expire_old", _every_morning, catch_up=_daytime,
        label="删除保留期已过的后台导出文件"),
    Job("backup", "qifu.backup:nightly", _every_night, catch_up=_backup_missed, label="每晚备份数据库和附件（设置了 QIFU_BACKUP_DIR 时）"),
)


def handler(job: Job) -> Callable[[], object]:
    module, _, name = job.handler.partition(":")
    return getattr(importlib.import_module(module), name)


def _run(job: Job) -> None:
    """One run of a job in a scheduler thread, with its own database connection, closed at the
    end with the write-ahead log copied back (``db.release``: the day's reminder plan writes a
    log of up to 256 MiB, which the server's next request would otherwise copy)."""
    from django.db import close_old_connections

    from qifu import db

    close_old_connections()
    try:
        handler(job)()
    except Exception:  # logged; the next run tries again
        log.exception("定时任务 %s 执行失败", job.id)
    finally:
        db.release()


def build(jobs: tuple[Job, ...] = JOBS):
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=SHANGHAI, job_defaults={
        "coalesce": True,  # a backlog of missed runs is one run
        "max_instances": 1,  # a slow run is never overlapped by the next
        "misfire_grace_time": 300,
    })
    for job in jobs:
        scheduler.add_job(_run, job.trigger(), args=[job], id=job.id, name=job.label or job.id)
    return scheduler


def run(jobs: tuple[Job, ...] = JOBS) -> None:
    """Run the schedule until SIGTERM or SIGINT."""
    from qifu import config, in_use

    for job in jobs:
        handler(job)  # every handler imports before anything runs: a typo fails the start
    config.require_real_sms()
    running = in_use.hold("qifu worker")  # for the worker's life: no restore under it  # noqa: F841
    scheduler = build(jobs)

    def stop(signum, frame):
        # A job still running is abandoned rather than waited for: the sender's claims and journal
        # make an interrupted send safe, and an operator's stop should not wait minutes. Nor is
        # the scheduler shut down first: the signal can land while this thread holds the
        # executor's lock (inside submit), which shutdown would wait on for ever.
        log.warning("收到信号 %s，定时任务进程退出", signum)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints every thread's stack to stderr
    now = dt.datetime.now(tz=SHANGHAI)
    for job in jobs:
        if job.catch_up is not None and job.catch_up(now):
            scheduler.add_job(_run, args=[job], id=f"{job.id}-catch-up", name=f"{job.label}（补跑）")
    threads = os.environ.get("OMP_NUM_THREADS", "默认")
    print(f"企服 qifu 定时任务已启动（进程 {os.getpid()}，计算线程 {threads}）：" + "；".join(j.label or j.id for j in jobs), flush=True)
    scheduler.start()
