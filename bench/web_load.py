"""Benchmark: the back office and the self-check on a county of 240,000 entities.

    python bench/web_load.py --data-dir DIR [--clients 200 --rounds 5]

DIR is a QIFU_DATA_DIR holding an imported and checked county, e.g. made with

    QIFU_DATA_DIR=DIR qifu synth --entities 240000 --out DIR/county
    for k in registry reports shareholders tax social reminders; do QIFU_DATA_DIR=DIR qifu import $k DIR/county/$k.csv; done
    QIFU_DATA_DIR=DIR qifu check --year 2025 --out DIR/findings.csv && QIFU_DATA_DIR=DIR qifu notify --year 2025 --date 2026-05-10

1. Dashboard: the staff home page rendered in process (Django test client), for the
   administrator (whole county) and a township officer, after one warm-up; median and worst
   of 5. Target (issue 5): <= 1 s.
2. Self-check: `qifu serve` in its own process; CLIENTS portal sessions (different
   enterprises) each open the self-check page, then POST /api/v1/selfcheck at the same moment
   (a barrier), ROUNDS times, over keep-alive connections on loopback. Latency per request from the client's side; errors are
   any status but 200. Target: p95 <= 200 ms with 200 concurrent requests, no errors.
   The load generator is one asyncio process on the same machine (see ``load``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def django_setup(data_dir: str) -> None:
    os.environ["QIFU_DATA_DIR"] = data_dir
    os.environ.setdefault("QIFU_SECRET_KEY", "bench-only-secret-key-" + "x" * 40)  # sessions shared with the server
    os.environ.pop("QIFU_DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qifu.settings")
    import django

    django.setup()


def dashboard() -> list[tuple[str, float, float]]:
    from django.test import Client

    from qifu.accounts.actions import assign_role
    from qifu.registry.models import Township

    rows = []
    town = Township.objects.order_by("code").first()
    for name, role, t in (("bench-admin", "admin", None), ("bench-officer", "officer", town.name)):
        user, _ = assign_role(name, role, t)
        client = Client()
        client.force_login(user)
        assert client.get("/").status_code == 200  # warm-up (imports, template compilation)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            response = client.get("/")
            times.append(time.perf_counter() - started)
            assert response.status_code == 200 and b"chart-data" in response.content
        rows.append((f"dashboard, {role}{'（' + t + '）' if t else '（全市）'}", statistics.median(times), max(times)))
    return rows


def sessions(n: int) -> list[tuple[str, dict]]:
    """n signed-in portal sessions of enterprises with a 2024 report, and a figure to check."""
    from django.contrib.sessions.backends.db import SessionStore

    from qifu.reports.models import AnnualReport

    out = []
    reps = (AnnualReport.objects.filter(report_year=2024, is_current=True, entity__entity_type="enterprise",
                                        total_revenue__gt=1).order_by("entity_id")[:n])
    for i, rep in enumerate(reps):
        store = SessionStore()
        store["portal_uscc"] = rep.entity_id
        store.create()
        rev = float(rep.total_revenue) * (10000 if i % 4 == 0 else 1.1)  # every fourth in yuan
        out.append((store.session_key, {"figures": {"total_revenue": round(rev, 2), "employees": 12,
                                                    "total_assets": float(rep.total_assets or 0)}}))
    return out


def load(port: int, clients: list[tuple[str, dict]], rounds: int, think: float = 0.0) -> tuple[list[float], int]:
    """Each client sends ``rounds`` requests over its own keep-alive connection. With ``think``
    = 0 all clients fire together (a barrier before each round); otherwise each waits a random
    0.5–1.5 × ``think`` seconds between requests, like a filer changing figures, and the clients
    start spread out. One asyncio process with the requests built beforehand, so that the load
    generator, on the same two cores, takes as little of them as it can (a thread per client
    took about a third)."""
    return asyncio.run(_load(port, clients, rounds, think))


async def _load(port, clients, rounds, think):
    import random

    latencies: list[float] = []
    errors = 0
    barrier = asyncio.Barrier(len(clients))
    token = "b" * 32

    def raw(session_key: str, body: dict) -> bytes:
        data = json.dumps(body).encode()
        head = (f"POST /api/v1/selfcheck HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"X-CSRFToken: {token}\r\nCookie: sessionid={session_key}; csrftoken={token}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n")
        return head.encode() + data

    async def response(reader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        return int(head.split(b" ", 2)[1]), await reader.readexactly(length)

    async def client(session_key: str, body: dict):
        nonlocal errors
        rnd = random.Random(session_key)
        request = raw(session_key, body)
        if think:
            await asyncio.sleep(rnd.uniform(0, think))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # A filer opens the self-check page first (which loads the entity's context), then
        # the page checks each figure as it is typed: only those checks are timed.
        writer.write(f"GET /portal/selfcheck/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={session_key}\r\n\r\n"
                     .encode())
        status, _ = await response(reader)
        errors += 0 if status == 200 else 1
        for _ in range(rounds):
            if think:
                await asyncio.sleep(rnd.uniform(0.5 * think, 1.5 * think))
            else:
                await barrier.wait()
            started = time.perf_counter()
            try:
                writer.write(request)
                status, payload = await response(reader)
                ok = status == 200 and b"problems" in payload
            except (OSError, asyncio.IncompleteReadError):
                ok = False
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1
        writer.close()

    await asyncio.gather(*(client(k, b) for k, b in clients))
    return latencies, errors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--think", type=float, default=1.0, help="mean seconds between one client's requests")
    p.add_argument("--server-args", default="", help="extra arguments for qifu serve")
    a = p.parse_args()
    django_setup(a.data_dir)
    rows = dashboard()
    clients = sessions(a.clients)
    env = dict(os.environ, QIFU_DATA_DIR=a.data_dir)
    server = subprocess.Popen([sys.executable, "-m", "qifu", "serve", "--port", str(a.port), *a.server_args.split()],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if server.poll() is not None:
                raise SystemExit(f"qifu serve exited ({server.returncode}); is port {a.port} free?")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        load(a.port, clients[:10], 1)  # warm-up
        results = {"burst": load(a.port, clients, a.rounds),
                   f"think {a.think:g} s": load(a.port, clients, a.rounds * 4, think=a.think)}
    finally:
        server.terminate()
        server.wait()
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| measure | median | worst |\n|---|---:|---:|")
    for label, med, worst in rows:
        print(f"| {label} | {med * 1000:.0f} ms | {worst * 1000:.0f} ms |")
    print("\n| self-check, 200 clients | requests | errors | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|")
    for mode, (latencies, errors) in results.items():
        latencies.sort()
        q = lambda f, xs=latencies: xs[min(len(xs) - 1, int(f * len(xs)))] * 1000  # noqa: E731
        print(f"| {mode} | {len(latencies)} | {errors} | {q(0.5):.0f} ms | {q(0.95):.0f} ms | {q(0.99):.0f} ms | "
              f"{latencies[-1] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
