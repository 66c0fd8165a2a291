"""What a slow page does to everyone else: while a staff member exports the whole county's
entity list as XLSX (tens of seconds on 240,000 entities), a login page is asked for every
50 ms on new connections, each one landing on whichever worker takes it; the answers' times. Run on a county already imported (bench/policies_match.py leaves one):

    QIFU_DATA_DIR=/tmp/pb/var .venv/bin/python bench/slow_page.py
    QIFU_DATA_DIR=/tmp/pb/var QIFU_TURN_WAIT_MS=0 .venv/bin/python bench/slow_page.py   # no turns

Results in docs/benchmarks.md (shared-lab booking, where the server's threads are discussed).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

SESSION = r"""
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from qifu.accounts.actions import assign_role
user, _ = assign_role("bench-slow-page", "admin", None, None)
s = SessionStore()
s[SESSION_KEY] = str(user.pk); s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
s[HASH_SESSION_KEY] = user.get_session_auth_hash(); s.create()
print(s.session_key)
"""


def get(port: int, path: str, cookie: str = "") -> tuple[int, float, str, int]:
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, time.perf_counter() - t, r.getheader("X-Qifu-Worker") or "", len(body)


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from requests_load import start_server

    env = dict(os.environ, QIFU_WORKERS="2")
    env.setdefault("QIFU_SECRET_KEY", "bench-" + "k" * 50)
    session = subprocess.run([sys.executable, "-c", SESSION], env=env, capture_output=True, text=True,
                             check=True).stdout.split()[-1]
    server, port = start_server(env)
    try:
        for _ in range(20):  # both workers warm
            get(port, "/login/")
        exported: dict = {}

        def export():
            exported["status"], exported["time"], exported["worker"], exported["bytes"] = get(
                port, "/entities/export.xlsx", f"sessionid={session}")

        times: list[float] = []
        thread = threading.Thread(target=export)
        thread.start()
        time.sleep(0.5)
        while thread.is_alive():
            status, took, _, _ = get(port, "/login/")
            assert status == 200, status
            times.append(took)
            time.sleep(0.05)
        thread.join()
    finally:
        server.terminate()
        server.wait(10)
    print(f"export: {exported['status']}, {exported['bytes']:,} bytes in {exported['time']:.1f} s "
          f"(QIFU_TURN_WAIT_MS={os.environ.get('QIFU_TURN_WAIT_MS', 'default')})")
    print(f"login page during it: {len(times)} requests, p50 {p(times, 0.5):.0f} ms, p95 {p(times, 0.95):.0f} ms, "
          f"max {max(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
