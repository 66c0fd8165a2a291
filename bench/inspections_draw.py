"""The spot checks at county scale (results in docs/benchmarks.md).

A county made by `qifu synth` of ``--entities`` (240,000), its registry and reports imported and
the year checked by the quality rules; then, in one process, as the county's administrator with
two officers in each of the first townships: a random draw of 3% of those that filed (the
database orders every eligible entity by its SHA-256 ticket), a targeted draw of 10% of those with
open serious findings (the profile read through the policies' machinery) as a written check, its
notices to those drawn, its day put later with the new day told to those still owing, and its page, the checks' page, one
check's page (its first 500 entities) and workbook, and the home dashboard.

    .venv/bin/python bench/inspections_draw.py --entities 240000
    .venv/bin/python bench/inspections_draw.py --database-url postgres://postgres@127.0.0.1:5432/bench_inspections
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from county import run_on_county

RUN = r"""
import os, time, resource, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from qifu.accounts.models import StaffProfile
from qifu.inspections import actions
from qifu.inspections.models import Sample
from qifu.registry.models import Township

User = get_user_model()
admin = User.objects.create_user("bench-admin", password="x")
StaffProfile.objects.create(user=admin, role="admin")
for town in Township.objects.filter(entity__isnull=False).distinct().order_by("code")[:10]:
    for i in (1, 2):
        u = User.objects.create_user(f"bench-officer-{town.code}-{i}", password="x")
        StaffProfile.objects.create(user=u, role="officer", town=town)
c = Client(); c.force_login(admin)

def timed(label, fn):
    t = time.perf_counter(); out = fn(); print(f"{label}: {time.perf_counter() - t:.2f} s", flush=True); return out

print(f"eligible for 2025: {actions.eligible(2025).count()}", flush=True)
x = timed("random draw, 3% of the county (do_draw)", lambda: actions.do_draw(2025, "random", "bench", "3", by=admin, seed="bench"))
print(f"  drawn {x.samples.count()} of {x.population}; inspector rows {Sample.inspectors.through.objects.count()}", flush=True)
import datetime as dt
from django.utils import timezone
from qifu.reminders.models import OutboxMessage
y = timed("targeted draw, 10% of open_findings > 0, a written check", lambda: actions.do_draw(
    2025, "targeted", "bench-t", "10", by=admin, criteria="open_findings > 0", seed="bench-t",
    documents_by=timezone.localdate() + dt.timedelta(days=15)))
print(f"  drawn {y.samples.count()} of {y.population}", flush=True)
n = timed("its notices (tell_drawn)", actions.tell_drawn)
print(f"  stored {n} in the outbox ({OutboxMessage.objects.count()} there); again: {actions.tell_drawn()}", flush=True)
y.samples.filter(pk__in=y.samples.order_by("pk").values("pk")[:1000]).update(result="ok")  # some checked meanwhile
timed("its day put later (do_extend_documents)", lambda: actions.do_extend_documents(
    y, timezone.localdate() + dt.timedelta(days=25), "bench: a holiday", by=admin))
n = timed("the new day told (tell_drawn)", actions.tell_drawn)
print(f"  stored {n} in the outbox; again: {actions.tell_drawn()}", flush=True)
timed("checks' page", lambda: c.get("/inspections/"))
timed("the random check's page (first 500)", lambda: c.get(f"/inspections/{x.pk}/"))
timed("the written check's page (first 500; told and untold counted)", lambda: c.get(f"/inspections/{y.pk}/"))
r = timed("its workbook (every entity)", lambda: c.get(f"/inspections/{x.pk}/?format=xlsx"))
print(f"  workbook: {len(r.content) / 1e6:.2f} MB", flush=True)
timed("home dashboard", lambda: c.get("/"))
print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=240_000)
    ap.add_argument("--database-url", default="", help="a PostgreSQL database to use (emptied first); SQLite if none")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    run_on_county(RUN, args.entities, "qifu-inspections-", args.database_url, check_year=2025, keep=args.keep)


if __name__ == "__main__":
    main()
