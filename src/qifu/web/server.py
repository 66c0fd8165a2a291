"""Serve the WSGI application with waitress (pure Python, runs anywhere), and run the day's
reminder plan on a schedule.

On Linux ``QIFU_WORKERS`` processes (default: one per core) share one listening socket, each
with ``QIFU_THREADS`` threads; a single Python process is held to one core by the GIL. The
parent process forks the workers and then runs the schedule (``qifu.reminders.schedule``).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

from waitress import create_server

from qifu import config


def _options() -> dict:
    # Portal users keep connections open (keep-alive, the instant self-check); waitress's
    # default limit of 100 connections would leave the rest waiting in the backlog.
    return {"threads": int(config.get("QIFU_THREADS", "8") or 8),
            "connection_limit": int(config.get("QIFU_CONNECTION_LIMIT", "1000") or 1000),
            "backlog": 2048, "ident": "qifu"}


def serve(host: str, port: int, workers: int | None = None, schedule: bool = True) -> None:
    from django.db import connections

    from qifu.wsgi import application

    workers = workers or int(config.get("QIFU_WORKERS", "0") or 0) or (os.cpu_count() or 1)
    if not hasattr(os, "fork"):
        workers = 1
    print(f"企服 qifu 已启动：http://{host}:{port}/  （{workers} 个进程；Ctrl+C 停止）", flush=True)
    if workers == 1:
        if schedule:
            _start_schedule()
        create_server(application, host=host, port=port, **_options()).run()
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    connections.close_all()  # a worker must not share the parent's database connection
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                create_server(application, sockets=[sock], **_options()).run()
            finally:
                os._exit(0)
        children.append(pid)
    sock.close()

    def stop(signum, frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if schedule:
        _start_schedule()
    pid, status = os.wait()  # a worker died: stop the rest and let the process manager restart us
    print(f"qifu: 工作进程 {pid} 退出（{status}），服务停止", file=sys.stderr, flush=True)
    stop(None, None)


def _start_schedule() -> None:
    from qifu.reminders import schedule

    threading.Thread(target=schedule.loop, name="qifu-schedule", daemon=True).start()
