"""Season simulator: every reminder policy on every behaviour model (issue 17).

    python bench/remind_season.py [--entities 30000] [--seeds 1 2 3] [--models tuning deaf ...]

Replays 1 January to 30 June of the next season on a synthetic county (three seasons of
blanket-policy history to learn from), once per policy, with the same filers and the same
random draws. Policies (``season.POLICIES``): the bureau's blanket practice (texts to every
non-filer on 1 Mar, 15 Apr, 15 May, 1 Jun, 15 Jun and 25 Jun, a call round on 20 Jun); qifu;
the simple rule on qifu's ladder; three static rules over the history files. ``oracle`` is qifu's
ladder given each entity's true archetype: not a policy, the best a plan could do.

Behaviour models (``synth.behaviour.MODELS``): ``tuning`` is the one the policy's thresholds
and dates were chosen on; the others were fixed before and are reported, never tuned on.
Target (issue 17), on every model but ``tuning``: >= 75% fewer filing contacts than blanket,
an on-time rate >= 5 points above it, and no simple baseline better on both counts.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from qifu.engine.reminders.season import side_by_side
from qifu.engine.synth import behaviour as bh


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entities", type=int, default=30_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--models", nargs="+", default=list(bh.MODELS))
    a = p.parse_args()
    started = time.perf_counter()
    rows = side_by_side(a.entities, a.seeds, a.models, oracle=True)
    by = defaultdict(list)
    for r in rows:
        by[(r["model"], r["policy"])].append(r)
    print(f"{a.entities:,} entities, seeds {a.seeds}; mean over seeds (min–max); {time.perf_counter() - started:.0f} s\n")
    print("| model | policy | contacts | fewer than blanket | on time | vs blanket | better than qifu on both (seeds) |")
    print("|---|---|---:|---:|---:|---:|---|")
    for model in a.models:
        for policy in ("blanket", "qifu", "rule", "history", "history_delivery", "last_heard", "oracle"):
            rs = by[(model, policy)]
            fewer = [r["fewer_than_blanket"] for r in rs]
            gain = [100 * r["on_time_vs_blanket"] for r in rs]
            both = sum(r["better_than_qifu_on_both"] for r in rs)
            name = f"{model} (tuned on)" if model == bh.TUNING.name else model
            src = f" ({'/'.join(sorted({r['plan_source'] for r in rs}))} plan)" if policy == "qifu" else ""
            print(f"| {name} | {policy}{src} | {sum(r['contacts'] for r in rs) / len(rs):,.0f} | "
                  f"{sum(fewer) / len(fewer):.1%} ({min(fewer):.1%}–{max(fewer):.1%}) | "
                  f"{sum(r['on_time_rate'] for r in rs) / len(rs):.2%} | "
                  f"{sum(gain) / len(gain):+.1f} ({min(gain):+.1f}–{max(gain):+.1f}) | "
                  f"{'—' if policy in ('blanket', 'qifu', 'oracle') else both} |")
    print()
    for model in a.models:
        if model == bh.TUNING.name:
            continue
        q = by[(model, "qifu")]
        fewer = min(r["fewer_than_blanket"] for r in q)
        gain = min(r["on_time_vs_blanket"] for r in q)
        beaten = any(r["better_than_qifu_on_both"] for r in rows if r["model"] == model)
        print(f"{model}: fewest saved {fewer:.1%} ({'met' if fewer >= 0.75 else 'NOT met'}), smallest gain "
              f"{100 * gain:+.1f} points ({'met' if gain >= 0.05 else 'NOT met'}), "
              f"a baseline better on both: {'yes' if beaten else 'no'}")


if __name__ == "__main__":
    main()
