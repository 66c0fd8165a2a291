"""Serve the WSGI application with Granian, and run the day's reminder plan on a schedule.

Granian's HTTP stack is Rust (wheels for Linux, macOS and Windows; nothing to download at run
time); Python runs only the application. ``QIFU_WORKERS`` processes (default: one per core),
each with ``QIFU_THREADS`` threads for the application (default 4: a slow page, such as an
Excel export, does not hold up the others). The main process loads Django and compiles the
rule catalogue before the workers start, supervises them, and runs the schedule
(``qifu.reminders.schedule``).

Measured against the pure-Python server used before (waitress): a burst of 200 simultaneous
self-checks on two cores, p95 about 130 ms instead of 210 ms (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import threading

from qifu import config


def serve(host: str, port: int, workers: int | None = None, schedule: bool = True) -> None:
    from django.db import connections
    from granian import Granian
    from granian.constants import Interfaces

    from qifu.checks import single
    from qifu.wsgi import application  # noqa: F401  (loaded here, inherited by the workers)

    workers = workers or int(config.get("QIFU_WORKERS", "0") or 0) or (os.cpu_count() or 1)
    threads = int(config.get("QIFU_THREADS", "4") or 4)
    single.warm()  # the rule catalogue, compiled once here and inherited by the workers
    connections.close_all()  # a worker must not share the main process's database connection
    server = Granian(
        "qifu.wsgi:application", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
        blocking_threads=threads, websockets=False, backlog=2048, log_access=False,
        respawn_failed_workers=True, workers_kill_timeout=30,
    )
    print(f"企服 qifu 已启动：http://{host}:{port}/  （{workers} 个进程 × {threads} 个线程；Ctrl+C 停止）", flush=True)
    if schedule:
        _start_schedule()
    server.serve()


def _start_schedule() -> None:
    from qifu.reminders import schedule

    threading.Thread(target=schedule.loop, name="qifu-schedule", daemon=True).start()
