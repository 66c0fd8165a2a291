"""Routing accuracy per category (docs/benchmarks.md): the model learnt from the shipped seed
and 80% of a synthetic county's classified history, judged on the other 20% (held out), and
on hand-written requests it never saw (bench/route_handwritten.yaml); also the time to route
one text.

    .venv/bin/python bench/route_eval.py --entities 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from qifu.engine.requests import routing
from qifu.engine.requests.categories import BY_CODE
from qifu.engine.synth import county


def evaluate(model, examples: list[tuple[str, str]]) -> tuple[float, dict[str, tuple[int, int]]]:
    predicted = model.predict([t for t, _ in examples])
    per: dict[str, list[int]] = {}
    for (_, truth), guess in zip(examples, predicted):
        per.setdefault(truth, [0, 0])
        per[truth][0] += int(guess == truth)
        per[truth][1] += 1
    right = sum(r for r, _ in per.values())
    return right / len(examples), {k: (r, n) for k, (r, n) in sorted(per.items())}


def handwritten() -> list[tuple[str, str]]:
    data = yaml.safe_load((Path(__file__).parent / "route_handwritten.yaml").read_text(encoding="utf-8"))
    return [(t, c) for c, texts in data.items() for t in texts]


def history(entities: int, seed: int) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        county.write(tmp, entities=entities, seed=seed)
        rows = pl.read_csv(Path(tmp) / "requests.csv", infer_schema=False).filter(pl.col("category").fill_null("") != "")
    return list(zip(rows["text"].to_list(), rows["category"].to_list()))


def split(examples, share: float, seed: int):
    rng = np.random.default_rng(seed)
    mask = rng.random(len(examples)) < share
    return [e for e, m in zip(examples, mask) if not m], [e for e, m in zip(examples, mask) if m]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    train, held = split(history(args.entities, args.seed), 0.2, args.seed)
    t = time.perf_counter()
    model = routing.train(routing.seed() + train)
    learnt = time.perf_counter() - t
    router = routing.Router(model)
    texts = [t for t, _ in held[:500]]
    t = time.perf_counter()
    for text in texts:
        router.route(text)
    per_text = (time.perf_counter() - t) / len(texts)
    held_acc, held_per = evaluate(model, held)
    hand_acc, hand_per = evaluate(model, handwritten())
    seed_only_acc, _ = evaluate(routing.train(routing.seed()), handwritten())
    print(f"history: {len(train)} to learn from, {len(held)} held out; learnt in {learnt:.1f} s; "
          f"one text routed in {per_text * 1000:.1f} ms")
    print("\n| category | held out | hand-written |\n|---|---:|---:|")
    for code in BY_CODE:
        h = held_per.get(code, (0, 0))
        w = hand_per.get(code, (0, 0))
        print(f"| {code} {BY_CODE[code].name} | {h[0]}/{h[1]} | {w[0]}/{w[1]} |")
    print(f"| **overall** | **{held_acc:.1%}** | **{hand_acc:.1%}** |")
    print(f"\nhand-written with the seed alone (a county with no history): {seed_only_acc:.1%}")
    wrong = Counter((truth, guess) for (text, truth), guess in zip(handwritten(), model.predict(
        [t for t, _ in handwritten()])) if truth != guess)
    print("most confused (truth → guess):", ", ".join(f"{a}→{b} ×{n}" for (a, b), n in wrong.most_common(8)))


if __name__ == "__main__":
    main()
