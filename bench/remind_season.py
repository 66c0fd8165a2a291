"""Season simulator: the bureau's blanket policy against qifu's learnt policy and two simple
baselines that read only the bureau's history files (``season.POLICIES``).

    python bench/remind_season.py [--entities 30000] [--seeds 1 2 3]

Replays 1 January to 30 June of the next season on a synthetic county (three seasons of
blanket-policy history to learn from), once per policy, with the same filers and the same
random draws. Blanket: a text to every non-filer on 1 Mar, 15 Apr, 15 May, 1 Jun, 15 Jun and
25 Jun, a call round on 20 Jun. Target (issue 4): >= 60% fewer filing contacts with an
on-time filing rate that is not lower, on at least three seeds.
"""

from __future__ import annotations

import argparse
import time

from qifu.engine.reminders.season import Season


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entities", type=int, default=30_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    a = p.parse_args()
    print("| seed | entities due | blanket contacts | qifu contacts | fewer | blanket on time | qifu on time | qifu plans (review/self/text/call/visit) | seconds |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    baselines = []
    for seed in a.seeds:
        t = time.perf_counter()
        season = Season(a.entities, seed)
        blanket, qifu = season.run("blanket"), season.run("qifu")
        baselines.append((seed, blanket, qifu, season.run("history"), season.run("history_delivery")))
        fewer = 1 - qifu.total_contacts / blanket.total_contacts
        plans = "/".join(str(qifu.plans[k]) for k in ("review", "self", "text", "call", "visit"))
        print(f"| {seed} | {blanket.due:,} | {blanket.total_contacts:,} | {qifu.total_contacts:,} ({qifu.contacts['sms']:,} texts, "
              f"{qifu.contacts['call']:,} calls, {qifu.contacts['visit']:,} visits) | {fewer:.1%} | {blanket.on_time_rate:.2%} | "
              f"{qifu.on_time_rate:.2%} | {plans} | {time.perf_counter() - t:.1f} |")
    print()
    print("| seed | policy | contacts | fewer than blanket | on time | better than qifu on both counts |")
    print("|---:|---|---:|---:|---:|---|")
    for seed, blanket, qifu, *others in baselines:
        for o in (blanket, qifu, *others):
            both = o.total_contacts < qifu.total_contacts and o.on_time_rate > qifu.on_time_rate
            print(f"| {seed} | {o.policy} | {o.total_contacts:,} | {1 - o.total_contacts / blanket.total_contacts:.1%} | "
                  f"{o.on_time_rate:.2%} | {'yes' if both else 'no'} |")


if __name__ == "__main__":
    main()
