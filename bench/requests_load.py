"""Enterprise requests at scale (issue 13's speed targets; results in docs/benchmarks.md):
with 100,000 requests stored, `GET requests.json` of 1,000 requests; 50 concurrent Open311
POSTs; routing one text; the requests dashboard (measures) and the home page.

    .venv/bin/python bench/requests_load.py --entities 30000 --requests 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import polars as pl


def qifu(env, *args) -> str:
    done = subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return sorted(out)


def p(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def get(port: int, path: str, cookie: str = "") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    r = conn.getresponse()
    r.read()
    return r.status


def start_server(env) -> tuple[subprocess.Popen, int]:
    """`qifu serve` on a free port, once it answers /healthz."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "qifu", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if get(port, "/healthz") == 200:
                break
        except OSError:
            time.sleep(0.1)
    return server, port


def burst(port: int, key: str, clients: int = 50, rounds: int = 5) -> tuple[list[float], int]:
    """``clients`` Open311 POSTs at the same instant, ``rounds`` times, each client on its own
    keep-alive connection: one asyncio process with the requests built beforehand, so that the
    load generator takes as little of the two cores as it can (bench/web_load.py does the same)."""
    import asyncio

    async def run():
        latencies: list[float] = []
        errors = 0
        barrier = asyncio.Barrier(clients)
        body = urllib.parse.urlencode({"service_code": "utilities", "description": "园区停电三次，影响生产",
                                       "address_string": "慈溪市浒山街道"}).encode()
        request = (f"POST /open311/v2/requests.json?api_key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode() + body

        async def client():
            nonlocal errors
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(rounds):
                await barrier.wait()
                t = time.perf_counter()
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                errors += int(head.split(b" ", 2)[1]) != 200
            writer.close()

        await asyncio.gather(*(client() for _ in range(clients)))
        return sorted(latencies), errors

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=30_000)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--sets", type=int, default=3, help="sets of 5 POST bursts, each with a key of its own")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qifu-requests-bench-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SECRET_KEY="bench-" + "k" * 50, QIFU_WORKERS="2")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    qifu(env, "synth", "--entities", args.entities, "--seed", 4, "--out", work / "county")
    for kind in ("registry", "reports", "tax", "social"):
        qifu(env, "import", kind, work / "county" / f"{kind}.csv")
    from qifu.engine.synth import requests as synth

    registry = pl.read_csv(work / "county" / "registry.csv", infer_schema=False).filter(pl.col("status") == "active")
    as_of = dt.date.today()
    first = as_of.year - 1
    days = (as_of - dt.date(first, 1, 1)).days + 1
    rate = args.requests / registry.height / days * 365
    big = synth.make(registry, first, as_of, np.random.default_rng(9), per_entity_year=rate)
    big.write_csv(work / "requests.csv")
    t = time.perf_counter()
    qifu(env, "import", "requests", work / "requests.csv")
    imported = time.perf_counter() - t
    # a key may post 600 an hour: each set of bursts gets its own
    keys = [qifu(env, "apikey", f"bench-{i}").strip() for i in range(args.sets)]
    session = subprocess.run([sys.executable, "-c", (
        "import os, django; os.environ['DJANGO_SETTINGS_MODULE']='qifu.settings'; django.setup();"
        "from qifu.accounts.actions import assign_role; from django.contrib.sessions.backends.db import SessionStore;"
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY;"
        "u, _ = assign_role('bench-admin', 'admin'); s = SessionStore(); s[SESSION_KEY] = str(u.pk);"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend';"
        "s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print(s.session_key)")],
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    cookie = f"sessionid={session}"
    server, port = start_server(env)
    try:
        for _ in range(4):  # both workers warm
            get(port, "/open311/v2/requests.json?page_size=1000")
            get(port, "/requests/measures/", cookie)
        listing = timed(lambda: get(port, "/open311/v2/requests.json?page_size=1000"), 20)
        measures = timed(lambda: get(port, "/requests/measures/", cookie), 10)
        home = timed(lambda: get(port, "/", cookie), 10)
        queue = timed(lambda: get(port, "/requests/?status=open", cookie), 10)
        burst(port, keys[0], clients=8, rounds=2)  # both workers warm on this path
        sets = [burst(port, key) for key in keys]
    finally:
        server.terminate()
        server.wait(10)
    routing = subprocess.run([sys.executable, "-c", (
        "import os, time, django; os.environ['DJANGO_SETTINGS_MODULE']='qifu.settings'; django.setup();"
        "from qifu.service_requests.routing import router; r = router(); texts = ['厂里停电好几次了', '出口退税没到账',"
        "'想申请高新技术企业', '员工工伤认定']*50; r.route(texts[0]); t = time.perf_counter();"
        "[r.route(x) for x in texts]; print((time.perf_counter() - t) / len(texts) * 1000)")],
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    print(f"{big.height} requests imported in {imported:.1f} s; routing one text {float(routing):.1f} ms")
    print("| measure | target | p50 | p95 | max |\n|---|---|---:|---:|---:|")
    post_times = sorted(x for xs, _ in sets for x in xs)
    errors = sum(e for _, e in sets)
    for label, target, xs in (("GET requests.json, 1,000 requests", "≤ 200 ms", listing),
                              (f"50 concurrent POSTs ({len(sets)} sets of 5 bursts)", "p95 ≤ 150 ms", post_times),
                              ("requests dashboard (measures)", "≤ 500 ms", measures),
                              ("home page with the requests panel", "", home), ("the open queue", "", queue)):
        print(f"| {label} | {target} | {p(xs, 0.5):.0f} ms | {p(xs, 0.95):.0f} ms | {xs[-1] * 1000:.0f} ms |")
    print(f"POST errors: {errors} of {len(post_times)}; median POST {statistics.median(post_times) * 1000:.0f} ms; "
          f"p95 of each set: {', '.join(f'{p(xs, 0.95):.0f}' for xs, _ in sets)} ms")


if __name__ == "__main__":
    main()
