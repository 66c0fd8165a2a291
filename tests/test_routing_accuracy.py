"""Routing accuracy (issue 13: ≥ 85% overall on a held-out set): learnt from the seed and 80%
of the small county's classified history; judged on the other 20% and on hand-written requests
it never saw (bench/route_handwritten.yaml; bench/route_eval.py reports per category)."""

import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import route_eval
from qifu.engine.requests import routing


def test_routing_is_right_on_held_out_history_and_on_hand_written_requests(small_county):
    rows = pl.read_csv(small_county / "requests.csv", infer_schema=False).filter(pl.col("category").fill_null("") != "")
    train, held = route_eval.split(list(zip(rows["text"], rows["category"])), 0.2, 3)
    model = routing.train(routing.seed() + train)
    held_accuracy, _ = route_eval.evaluate(model, held)
    hand_accuracy, per = route_eval.evaluate(model, route_eval.handwritten())
    assert held_accuracy >= 0.85 and hand_accuracy >= 0.85, (held_accuracy, hand_accuracy, per)
    # and without any history, the seed alone
    seed_only, _ = route_eval.evaluate(routing.seed_router().model, route_eval.handwritten())
    assert seed_only >= 0.80
