"""Serve the WSGI application with Granian.

Granian's HTTP stack is Rust (wheels for Linux, macOS and Windows; nothing to download at run
time); Python runs only the application. ``QIFU_WORKERS`` processes (default: one per core),
each with ``QIFU_THREADS`` threads for the application (default 4: a slow page, such as an
Excel export, does not hold up the others).

Workers are started as new interpreters ("spawn"), never forked from this process. A lock held
by another thread at the moment of a fork (a module import lock, a logging lock, an allocator's)
is never released in the child, whose first request then waits for ever; and this process
cannot promise to have no thread: importing polars starts jemalloc's and its own, numpy starts
OpenBLAS's. A spawned worker has only what it loads itself. Each loads everything a request
needs before it takes one (``qifu.wsgi``: Django, every view module through the URLconf, the
rule catalogue, the assistant's index). Scheduled work runs in `qifu worker`, never here.
"""

from __future__ import annotations

import logging
import os

from qifu import config

log = logging.getLogger(__name__)


def preload() -> None:
    """Everything a first request would otherwise import or build, loaded by each worker
    before it takes a request (none of it touches the database).

    What it loads then lives as long as the worker: about 200,000 objects (jieba's dictionary,
    the BM25 index, the compiled rules, Django's). Python's cyclic garbage collector would walk
    them all in each full collection, about 0.1 s in which the worker answers nobody: the tail
    of every burst of requests. ``gc.freeze()`` moves them out of its sight; what requests
    allocate is still collected as before."""
    import gc

    from django.urls import get_resolver

    from qifu.checks import single
    from qifu.engine.assistant import retrieval
    from qifu.wsgi import application  # noqa: F401  (Django set up, middleware loaded)

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018  (imports every view module: the URLconf is lazy otherwise)
    resolver._populate()
    single.warm()  # the rule catalogue, compiled
    retrieval.default()  # jieba's dictionary and the BM25 index
    gc.collect()  # what loading left as garbage goes now, not frozen for ever
    gc.freeze()


def serve(host: str, port: int, workers: int | None = None) -> None:
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces

    from qifu import in_use

    config.require_secret_key()
    config.limit_compute_threads("serve")  # inherited by the workers it spawns
    running = in_use.hold("qifu serve")  # for the server's life: no restore under it  # noqa: F841
    workers = workers or int(config.get("QIFU_WORKERS", "0") or 0) or (os.cpu_count() or 1)
    threads_per_worker = int(config.get("QIFU_THREADS", "4") or 4)
    multiprocessing.set_start_method("spawn", force=True)  # Granian starts its workers this way
    server = Granian(
        "qifu.wsgi:application", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
        blocking_threads=threads_per_worker, websockets=False, backlog=2048, log_access=False,
        respawn_failed_workers=True, workers_kill_timeout=8,
    )
    print(f"企服 qifu 已启动：http://{host}:{port}/  （{workers} 个进程 × {threads_per_worker} 个线程；Ctrl+C 停止）",
          flush=True)
    server.serve()
