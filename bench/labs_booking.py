"""Shared-lab booking under contention (issue 16's speed target; results in docs/benchmarks.md):
fifty signed-in firms post bookings at the same instant through the JSON API of a running
`qifu serve`, ten firms for each of five slots, in several rounds on other slots; the p95 of
the answers, and exactly one 201 per slot (the rest 409).

    .venv/bin/python bench/labs_booking.py --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from requests_load import p, qifu, start_server  # the same helpers as the requests benchmark

CSRF = "b" * 32

SETUP = r"""
import datetime as dt, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from qifu.labs import actions
from qifu.labs.models import Instrument
from qifu.registry.models import Entity
firms = list(Entity.objects.filter(entity_type="enterprise", status="active").order_by("uscc")[:50])
sessions = []
for f in firms:
    s = SessionStore(); s["portal_uscc"] = f.uscc; s.create(); sessions.append(s.session_key)
for f in firms[:25]:
    actions.do_grant_voucher(f, timezone.localdate().year + 1, "100000")
    actions.do_grant_voucher(f, timezone.localdate().year, "100000")
inst = Instrument.objects.filter(units=1, slot_minutes=60).order_by("pk").first()
starts = []
day = timezone.localdate() + dt.timedelta(days=2)
while len(starts) < 5 * int(os.environ["ROUNDS"]) + 5:
    starts += [s.isoformat() for s in actions.day_slots(inst, day)]
    day += dt.timedelta(days=1)
print(json.dumps({"sessions": sessions, "instrument": inst.pk, "starts": starts}))
""".replace("import datetime as dt, os, django", "import datetime as dt, json, os, django")


def cpu_seconds() -> tuple[float, float]:
    """(the machine's busy CPU seconds so far, this process's): the difference over a burst is
    what the server and the database spent, apart from the load generator, whatever the
    scheduling did to the latencies."""
    import resource

    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    me = resource.getrusage(resource.RUSAGE_SELF)
    return busy / ticks, me.ru_utime + me.ru_stime


def burst(port: int, sessions: list[str], instrument: int, starts: list[str], rounds: int, read: bool = False):
    """Each round: every client posts at the same instant, client k for slot k % 5. ``read``:
    each asks for its voucher instead (GET), the same burst without booking, for comparison."""
    async def run():
        latencies, statuses = [], []
        barrier = asyncio.Barrier(len(sessions))

        async def client(k: int, session: str):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for r in range(rounds):
                body = json.dumps({"instrument_id": instrument, "start": starts[r * 5 + k % 5], "slots": 1,
                                   "purpose": "盐雾试验 48 小时"}).encode()
                request = (f"{'GET /api/v1/labs/voucher' if read else 'POST /api/v1/labs/bookings'} HTTP/1.1\r\n"
                           f"Host: 127.0.0.1\r\n"
                           f"Cookie: sessionid={session}; csrftoken={CSRF}\r\nX-CSRFToken: {CSRF}\r\n"
                           f"Referer: http://127.0.0.1:{port}/\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {0 if read else len(body)}\r\n\r\n").encode() + (b"" if read else body)
                await barrier.wait()
                t = time.perf_counter()
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                statuses.append((r * 5 + k % 5, int(head.split(b" ", 2)[1])))
            writer.close()

        await asyncio.gather(*(client(k, s) for k, s in enumerate(sessions)))
        return sorted(latencies), statuses

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qifu-labs-bench-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SECRET_KEY="bench-" + "k" * 50, QIFU_WORKERS="2",
               ROUNDS=str(args.rounds + 1))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    qifu(env, "synth", "--entities", args.entities, "--seed", 4, "--out", work / "county")
    for kind in ("registry", "labs"):
        qifu(env, "import", kind, work / "county" / f"{kind}.csv")
    setup = json.loads(subprocess.run([sys.executable, "-c", SETUP], env=env, capture_output=True, text=True,
                                      check=True).stdout)
    server, port = start_server(env)
    try:
        # warm both workers on this path with the first round's slots, then measure the rest
        burst(port, setup["sessions"], setup["instrument"], setup["starts"], 1)
        before = cpu_seconds()
        latencies, statuses = burst(port, setup["sessions"], setup["instrument"], setup["starts"][5:], args.rounds)
        after = cpu_seconds()
        reads, _ = burst(port, setup["sessions"], setup["instrument"], setup["starts"], args.rounds, read=True)
    finally:
        server.terminate()
        server.wait(10)
    by_slot: dict[int, list[int]] = {}
    for slot, status in statuses:
        by_slot.setdefault(slot, []).append(status)
    winners = sorted(codes.count(201) for codes in by_slot.values())
    other = sorted({c for codes in by_slot.values() for c in codes} - {201, 409})
    print(f"{len(latencies)} booking requests in {args.rounds} bursts of 50 (10 firms per slot, 5 slots a burst)")
    print(f"p50 {p(latencies, 0.5):.0f} ms, p95 {p(latencies, 0.95):.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.0f} ms")
    machine, generator = after[0] - before[0], after[1] - before[1]
    print(f"CPU per booking request: server and database {(machine - generator) / len(latencies) * 1000:.2f} ms, "
          f"load generator {generator / len(latencies) * 1000:.2f} ms (the machine's busy time over the bursts)")
    print(f"for comparison, the same bursts reading the firm's voucher (GET, no booking): p50 {p(reads, 0.5):.0f} ms, "
          f"p95 {p(reads, 0.95):.0f} ms")
    print(f"winners per slot: {winners} (must all be 1); answers other than 201/409: {other or 'none'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
