"""Requests in one worker take turns at the interpreter, unless one of them takes long.

A worker runs the application in several threads, so that a slow page (a large export) does not
hold up the others. But Python runs one thread at a time, and threads that are all ready to run
hand its lock to one another every few milliseconds: under a burst of short requests the
handing-over cost about as much CPU as the requests themselves (docs/benchmarks.md, shared-lab
booking). So a request first waits for its worker's turn: a burst of short requests runs one
after another, as with one thread. A request that has held the turn longer than ``wait`` (an
export, a slow report) no longer holds anyone up: whoever comes then runs beside it at once, as
with many threads, and whoever was already waiting stops waiting when ``wait`` is up.

The turn is given back when the application returns its response: a streamed body is written
after that, beside the other requests.
"""

from __future__ import annotations

import threading
import time


class Turns:
    def __init__(self, application, wait: float):
        self.application = application
        self.wait = wait
        self.turn = threading.Lock()
        self.taken_at = 0.0  # when the turn was last taken (read without the lock: a hint)

    def __call__(self, environ, start_response):
        held_for = time.monotonic() - self.taken_at
        mine = self.turn.acquire(blocking=False) or (
            held_for < self.wait and self.turn.acquire(timeout=self.wait - held_for))
        if mine:
            self.taken_at = time.monotonic()
        try:
            return self.application(environ, start_response)
        finally:
            if mine:
                self.turn.release()


def wait_ms(setting: str | None, database_url: str) -> int:
    """The wait in milliseconds: as set (0: no turns), else 100 on SQLite and none on
    PostgreSQL. With SQLite a request's database work is done in its own thread, and turns cut
    the CPU a burst costs by a third to a half; with PostgreSQL a request spends part of its
    time waiting for the database's process, and turns, which run nobody else in its worker
    meanwhile, made no difference at best and the p95 worse on a busy machine
    (docs/benchmarks.md, shared-lab booking)."""
    if setting is not None:
        return int(setting)
    return 100 if database_url.startswith("sqlite") else 0


def wrap(application, wait_ms: int):
    """``application`` taking turns, or as it is when ``wait_ms`` is 0."""
    return Turns(application, wait_ms / 1000) if wait_ms > 0 else application
