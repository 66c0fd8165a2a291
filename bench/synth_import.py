"""Benchmark: synthesise a county, import it (SQLite and PostgreSQL), and start the demo.

Targets (issue 2): synth of 240,000 entities <= 60 s; registry of 240,000 rows plus one
year of 240,000 reports imported <= 60 s on SQLite with peak memory <= 2 GB (PostgreSQL time
recorded too); `qifu demo` serving a page with 240,000 entities within 3 minutes.

    python bench/synth_import.py [--entities 240000] [--pg postgres://postgres@127.0.0.1:5432/test]

Each step runs as its own `qifu` process; wall time and that process's peak RSS (wait4) are
reported. Results are printed as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

QIFU = [sys.executable, "-m", "qifu"]


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak MiB) of one child process; raises if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out}\n{err}")
    print("  ", out.strip().splitlines()[-1] if out.strip() else "", file=sys.stderr)
    return elapsed, usage.ru_maxrss / 1024


def one_year_file(folder: Path, entities: int, seed: int) -> Path:
    """A registry of N entities and one report year in which every one of them filed."""
    import numpy as np

    from qifu.engine.synth.county import County, _write_csv

    c = County(entities, seed, 2025)
    c.make_registry()
    c.make_behaviour()
    c.make_finances()
    c.filed_day = {2025: np.full(entities, 60)}
    _write_csv(c.registry_frame(), folder / "registry.csv", "registry")
    _write_csv(c.reports_frame(2025).drop("__idx"), folder / "reports-2025.csv", "reports")
    return folder


def import_pair(folder: Path, env: dict[str, str], label: str, rows: list[tuple]) -> None:
    total = 0.0
    peak = 0.0
    for kind, name in (("registry", "registry.csv"), ("reports", "reports-2025.csv")):
        secs, mib = run([*QIFU, "import", kind, str(folder / name)], env)
        rows.append((f"{label}: import {kind} ({name})", secs, mib))
        total += secs
        peak = max(peak, mib)
    rows.append((f"{label}: registry + one year of reports", total, peak))
    secs, mib = run([*QIFU, "import", "reports", str(folder / "reports-2025.csv")], env)
    rows.append((f"{label}: re-import the same reports (nothing changes)", secs, mib))


def demo(entities: int, env: dict[str, str], rows: list[tuple], port: int) -> None:
    """`qifu demo` until its login page answers (issue 2's three minutes); then, signed in as the
    demo's administrator, a few staff pages fetched over and over while the other modules' data
    are filled behind the server (SQLite: the filling process writes beside the server), until
    the demo says all are in and its worker has started. Any page that fails is reported."""
    import http.cookiejar
    import re
    import threading

    env = dict(env, QIFU_DEMO_PASSWORD="bench-demo-pass")
    started = time.perf_counter()
    proc = subprocess.Popen([*QIFU, "demo", "--entities", str(entities), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said: dict[str, float] = {}
    output: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            output.append(line)
            for key, text in (("ready", "演示数据已全部就绪"), ("worker", "定时任务已启动")):
                if text in line and key not in said:
                    said[key] = time.perf_counter() - started
    threading.Thread(target=read, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        while time.perf_counter() - started < 600:
            try:
                with urllib.request.urlopen(f"{base}/login/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        rows.append((f"qifu demo ({entities} entities, every contract file) until the login page answers",
                     time.perf_counter() - started, float("nan")))

        def sign_in():
            """A new session signed in as the demo's administrator: a write (the session, the
            last login, the lockout's record), as the filling process writes beside it."""
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            with opener.open(f"{base}/login/", timeout=60) as r:
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.read().decode()).group(1)
            form = urllib.parse.urlencode({"username": "demo", "password": "bench-demo-pass", "csrfmiddlewaretoken": token})
            with opener.open(urllib.request.Request(f"{base}/login/", data=form.encode(),
                                                    headers={"Referer": f"{base}/login/"}), timeout=60) as r:
                if "/login/" in r.url:
                    raise OSError("the demo's login was refused")
            return opener

        pages, signins, failed, slowest, entity = 0, 0, [], (0.0, ""), ""
        while "worker" not in said and time.perf_counter() - started < 1500 and proc.poll() is None:
            t = time.perf_counter()
            try:
                opener = sign_in()
            except OSError as e:
                failed.append(f"sign-in at {t - started:.0f} s: {e}")
                time.sleep(2)
                continue
            signins += 1
            slowest = max(slowest, (time.perf_counter() - t, "sign-in"))
            for path in ("/", "/entities/", entity, "/requests/", "/reminders/season/", "/policies/", "/land/"):
                if not path:
                    continue
                t = time.perf_counter()
                try:
                    with opener.open(base + path, timeout=60) as r:
                        body = r.read().decode()
                    if path == "/entities/" and not entity:  # one entity's page (一企一档) from then on
                        found = re.search(r'href="(/entities/[0-9A-Z]{18}/)"', body)
                        entity = found.group(1) if found else ""
                except OSError as e:  # urllib's HTTPError (a 500) is an OSError too
                    failed.append(f"{path} at {t - started:.0f} s: {e}")
                pages += 1
                slowest = max(slowest, (time.perf_counter() - t, path))
            time.sleep(2)
        if "ready" in said:
            rows.append(("qifu demo: every module's data filled behind the server", said["ready"], float("nan")))
        rows.append((f"qifu demo: staff sign-ins while filling {signins}, pages {pages}, failed {len(failed)}, "
                     f"slowest {slowest[1]}", slowest[0], float("nan")))
        for f in failed:
            print("   page failed:", f, file=sys.stderr)
        if failed:  # the server's account of it
            print("".join(line for line in output if "Error" in line or "error" in line)[-4000:], file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entities", type=int, default=240_000)
    p.add_argument("--pg", default=os.environ.get("QIFU_BENCH_PG", "postgres://postgres@127.0.0.1:5432/qifu_bench"))
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--demo-only", action="store_true", help="only the demo's step")
    p.add_argument("--one-year-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one_year_file:
        one_year_file(args.one_year_file, args.entities, 1)
        return
    work = Path(tempfile.mkdtemp(prefix="qifu-bench-"))
    rows: list[tuple] = []
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"))
    env.pop("QIFU_DATABASE_URL", None)
    try:
        if args.demo_only:
            demo(args.entities, dict(env, QIFU_DATA_DIR=str(work / "demo")), rows, args.port)
            return
        secs, mib = run([*QIFU, "synth", "--entities", str(args.entities), "--seed", "1", "--out", str(work / "county")], env)
        rows.append((f"qifu synth --entities {args.entities}", secs, mib))
        # In a child process, so that this process stays small: a forked child's peak RSS
        # counts the pages it inherits.
        subprocess.run([sys.executable, __file__, "--one-year-file", str(work / "county"), "--entities",
                        str(args.entities)], check=True)
        import_pair(work / "county", env, "SQLite", rows)
        pg_env = dict(env, QIFU_DATABASE_URL=args.pg)
        name = args.pg.rsplit("/", 1)[1]
        admin = args.pg.rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        import_pair(work / "county", pg_env, "PostgreSQL", rows)
        if not args.skip_demo:
            demo(args.entities, dict(env, QIFU_DATA_DIR=str(work / "demo")), rows, args.port)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        report(rows)


def report(rows: list[tuple]) -> None:
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {platform.platform()}\n")
    print("| step | seconds | peak MiB |\n|---|---:|---:|")
    for label, secs, mib in rows:
        print(f"| {label} | {secs:.1f} | {'' if mib != mib else f'{mib:.0f}'} |")


if __name__ == "__main__":
    main()
