"""The abnormal-operation list at county scale (results in docs/benchmarks.md).

A county made by `qifu synth` of ``--entities`` (240,000), its registry and reports imported;
then, in one process through Django's test client as the county's administrator: the home
dashboard and the list's page before the decision (both count who is due), the decision that
lists every late filer of 2025 and queues their notices (`actions.do_list`, timed as the button
runs it), the page after it, its workbook, a township officer's page, and the written decisions
no text or email reached (the page to print them, the service list's workbook).

    .venv/bin/python bench/abnormal_list.py --entities 240000
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
from qifu.abnormal import actions
from qifu.abnormal.models import Listing
from qifu.accounts.models import StaffProfile
from qifu.registry.models import Township
from qifu.reminders.models import OutboxMessage

User = get_user_model()
admin = User.objects.create_user("bench-admin", password="x")
StaffProfile.objects.create(user=admin, role="admin")
town = Township.objects.filter(entity__isnull=False).order_by("code").first()
officer = User.objects.create_user("bench-officer", password="x")
StaffProfile.objects.create(user=officer, role="officer", town=town)
c = Client(); c.force_login(admin)
o = Client(); o.force_login(officer)

def timed(label, fn):
    t = time.perf_counter(); out = fn(); print(f"{label}: {time.perf_counter() - t:.2f} s", flush=True); return out

timed("home dashboard (before)", lambda: c.get("/"))
timed("list page (before, counts who is due)", lambda: c.get("/abnormal/?year=2025"))
due = actions.candidates(2025).count()
n = timed("decision (do_list, county)", lambda: actions.do_list(2025, by=admin))
assert n == due, (n, due)
print(f"listed: {n}; notices queued: {OutboxMessage.objects.filter(purpose='abnormal').count()}", flush=True)
timed("list page (after)", lambda: c.get("/abnormal/?year=2025"))
r = timed("workbook (every listing)", lambda: c.get("/abnormal/?year=2025&format=xlsx"))
print(f"workbook: {len(r.content) / 1e6:.1f} MB", flush=True)
timed("officer's page", lambda: o.get("/abnormal/?year=2025"))
from qifu.abnormal import queries
print(f"decisions to serve: {queries.unreached(Listing.objects.filter(report_year=2025)).count()}", flush=True)
timed("decisions to serve (page, the first 500 to print)", lambda: c.get("/abnormal/decisions/?year=2025"))
timed("service list (workbook, every one)", lambda: c.get("/abnormal/decisions/?year=2025&format=xlsx"))
timed("home dashboard (after)", lambda: c.get("/"))
print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=240_000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    run_on_county(RUN, args.entities, "qifu-abnormal-", keep=args.keep)


if __name__ == "__main__":
    main()
