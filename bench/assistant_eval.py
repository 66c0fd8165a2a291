"""Evaluate the assistant: top-1 accuracy, hand-off of out-of-scope questions, latency, loading.

    python bench/assistant_eval.py [--questions bench/assistant_questions.yaml]

Targets (issue 6): top-1 >= 92% on in-scope questions (a hand-off counts as a miss);
out-of-scope handed off >= 95%; p95 latency <= 50 ms after loading; loading <= 2 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def evaluate(assistant, questions: dict) -> dict:
    latencies, misses = [], []
    correct = total = 0
    for expected, items in questions["in_scope"].items():
        for q in items:
            t = time.perf_counter()
            a = assistant.ask(q)
            latencies.append((time.perf_counter() - t) * 1000)
            total += 1
            if not a.handoff and a.entry_id == expected:
                correct += 1
            else:
                misses.append((q, expected, a.entry_id, a.handoff, round(a.score, 2)))
    oos_handed = 0
    wrong_answers = []
    for q in questions["out_of_scope"]:
        t = time.perf_counter()
        a = assistant.ask(q)
        latencies.append((time.perf_counter() - t) * 1000)
        if a.handoff:
            oos_handed += 1
        else:
            wrong_answers.append((q, a.entry_id, round(a.score, 2)))
    latencies.sort()
    handoffs = sum(1 for m in misses if m[3]) + oos_handed
    return {
        "in_scope": total,
        "top1": correct / total,
        "out_of_scope": len(questions["out_of_scope"]),
        "oos_handoff": oos_handed / len(questions["out_of_scope"]),
        "handoff_precision": oos_handed / handoffs if handoffs else 1.0,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
        "misses": misses,
        "answered_out_of_scope": wrong_answers,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--questions", type=Path, default=HERE / "assistant_questions.yaml")
    a = p.parse_args()
    t = time.perf_counter()
    from qifu.engine.assistant.retrieval import Assistant

    assistant = Assistant()
    load = time.perf_counter() - t
    r = evaluate(assistant, yaml.safe_load(a.questions.read_text(encoding="utf-8")))
    print(f"loading (import + index) {load:.2f} s")
    print(f"in-scope questions {r['in_scope']}: top-1 {r['top1']:.1%}")
    print(f"out-of-scope questions {r['out_of_scope']}: handed off {r['oos_handoff']:.1%}; "
          f"hand-off precision {r['handoff_precision']:.1%}")
    print(f"latency p95 {r['p95_ms']:.2f} ms, max {r['max_ms']:.2f} ms")
    for m in r["misses"]:
        print("  miss:", m)
    for m in r["answered_out_of_scope"]:
        print("  answered out of scope:", m)
    ok = r["top1"] >= 0.92 and r["oos_handoff"] >= 0.95 and r["p95_ms"] <= 50 and load <= 2
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
