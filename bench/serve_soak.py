"""Restart soak for `qifu serve`: start it N times on a county, each time send 50 requests at
once (new connections, the pages a first visitor opens) and count those without an answer in
5 s; then SIGTERM and time the stop of every process. Results go to docs/benchmarks.md.

    QIFU_DATA_DIR=/tmp/q3k .venv/bin/qifu demo --entities 3000 --no-serve
    QIFU_DATA_DIR=/tmp/q3k .venv/bin/python bench/serve_soak.py --starts 20

(tests/test_serve.py runs the same soak, 10 starts, on an empty database in the suite.)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

PATHS = ["/login/", "/portal/login/", "/healthz", "/api/v1/openapi.json", "/assistant/"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int | str, float, str]:
    t = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status, time.perf_counter() - t, r.getheader("X-Qifu-Worker") or ""
    except OSError as e:
        return repr(e), time.perf_counter() - t, ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    env = dict(os.environ, QIFU_SECRET_KEY=os.environ.get("QIFU_SECRET_KEY", "soak-" + "k" * 50),
               QIFU_WORKERS=str(args.workers))
    ready, stops, latencies, unanswered, server_errors = [], [], [], 0, 0
    for attempt in range(args.starts):
        port = free_port()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "qifu", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers: set[str] = set()
        while len(workers) < args.workers and time.perf_counter() - started < 120:
            status, _, worker = get(port, "/healthz")
            if status == 200:
                workers.add(worker)
            else:
                time.sleep(0.1)
        ready.append(time.perf_counter() - started)
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda i, port=port: get(port, PATHS[i % len(PATHS)]), range(50)))
        unanswered += sum(1 for s, _, _ in answers if not isinstance(s, int))
        server_errors += sum(1 for s, _, _ in answers if isinstance(s, int) and s >= 500)
        latencies += [t for s, t, _ in answers if isinstance(s, int)]
        t = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        while any(alive(int(w)) for w in workers if w) and time.perf_counter() - t < 30:
            time.sleep(0.05)
        stops.append(time.perf_counter() - t)
        print(f"start {attempt + 1}: ready {ready[-1]:.1f} s, stop {stops[-1]:.1f} s, "
              f"{sum(1 for s, _, _ in answers if s == 200 or s == 302)} answered", flush=True)
    latencies.sort()
    print("\n| starts | requests | unanswered in 5 s | 5xx | ready (median, max) | burst p50 | burst p95 | stop (max) |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|")
    print(f"| {args.starts} | {50 * args.starts} | {unanswered} | {server_errors} | "
          f"{statistics.median(ready):.1f} s, {max(ready):.1f} s | {latencies[len(latencies) // 2] * 1000:.0f} ms | "
          f"{latencies[int(0.95 * len(latencies))] * 1000:.0f} ms | {max(stops):.1f} s |")


if __name__ == "__main__":
    main()
