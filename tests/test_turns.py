"""Requests in one worker take turns (`qifu.web.turns`): short ones one after another, and a
long one holds nobody up for longer than the wait. Driven with threads and events, as a server's
threads would call it; nothing here asserts a duration."""

import threading

import pytest

from qifu.web.turns import Turns, wrap


class Recorder:
    """A WSGI application that notes how many calls run at once, and can be held open."""

    def __init__(self):
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()
        self.release = {}  # path -> event the call waits for before it returns
        self.entered = {}  # path -> event set once the call has begun

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.entered.setdefault(path, threading.Event()).set()
        try:
            if path == "/boom":
                raise RuntimeError("boom")
            if path in self.release:
                assert self.release[path].wait(10)
            else:
                threading.Event().wait(0.002)  # a short request's work
            start_response("200 OK", [])
            return [path.encode()]
        finally:
            with self.lock:
                self.running -= 1


def call(app, path):
    return app({"PATH_INFO": path}, lambda status, headers: None)


def test_a_burst_of_short_requests_runs_one_at_a_time():
    inner = Recorder()
    app = Turns(inner, wait=5.0)
    threads = [threading.Thread(target=call, args=(app, f"/{k}")) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert inner.most == 1
    assert sum(e.is_set() for e in inner.entered.values()) == 16


def test_without_turns_the_same_burst_overlaps():
    """The test above can fail: the same burst, not taking turns, runs several at once."""
    inner = Recorder()
    app = wrap(inner, 0)
    assert app is inner
    barrier = threading.Barrier(8)

    def go(k):
        barrier.wait()
        call(app, f"/{k}")

    threads = [threading.Thread(target=go, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert inner.most > 1


def test_a_long_request_holds_the_others_up_no_longer_than_the_wait():
    inner = Recorder()
    inner.release["/export"] = threading.Event()
    app = Turns(inner, wait=0.05)
    export = threading.Thread(target=call, args=(app, "/export"))
    export.start()
    assert inner.entered.setdefault("/export", threading.Event()).wait(10)
    # while the export still holds the turn, a page asked for now gets its answer
    answers = []
    pages = threading.Thread(target=lambda: answers.extend(call(app, p) for p in ("/page", "/next")))
    pages.start()
    pages.join(5)
    assert answers == [[b"/page"], [b"/next"]]
    assert export.is_alive() and inner.most == 2
    inner.release["/export"].set()
    export.join(10)
    assert app.turn.acquire(blocking=False)  # and the export gave the turn back
    app.turn.release()


def test_a_request_that_fails_gives_the_turn_back():
    inner = Recorder()
    app = Turns(inner, wait=5.0)
    with pytest.raises(RuntimeError):
        call(app, "/boom")
    assert app.turn.acquire(blocking=False)
    app.turn.release()
    assert call(app, "/after") == [b"/after"]


def test_turns_are_taken_on_sqlite_unless_set_otherwise():
    from qifu.web.turns import wait_ms

    assert wait_ms(None, "sqlite:////srv/qifu/var/qifu.sqlite3") == 100
    assert wait_ms(None, "postgres://qifu@127.0.0.1:5432/qifu") == 0
    assert wait_ms("0", "sqlite:////x") == 0
    assert wait_ms("250", "postgres://x") == 250
