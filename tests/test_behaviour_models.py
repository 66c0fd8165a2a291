"""The behaviour models a reminder policy is judged on: each differs from the tuning model in
the assumption it names, and the tuning county stays what it was."""

from __future__ import annotations

import numpy as np
import pytest

from qifu.engine.reminders.season import Season
from qifu.engine.synth import behaviour as bh


@pytest.fixture(scope="module")
def seasons():
    return {name: Season(4000, 3, model=name) for name in bh.MODELS}


def test_there_are_at_least_three_models_besides_the_tuning_one_each_saying_what_it_assumes():
    others = [m for m in bh.MODELS.values() if m.name != "tuning"]
    assert len(others) >= 3
    fields = {f for f in bh.Model.__dataclass_fields__ if f not in ("name", "about")}
    for m in others:
        assert m.about and any(getattr(m, f) != getattr(bh.TUNING, f) for f in fields), m.name


def test_deaf_entities_never_respond_to_any_channel():
    arche = np.full(6, bh.A["nudgeable"], dtype=np.int8)
    channel = np.array(["sms", "call", "visit"] * 2)
    deaf = np.array([True] * 3 + [False] * 3)
    p = bh.respond_probability(bh.MODELS["deaf"], channel, arche, np.zeros(6, dtype=np.int8), np.zeros(6), deaf)
    assert (p[:3] == 0).all() and (p[3:] > 0.5).all()


def test_texts_lose_their_effect_with_repetition_only_where_the_model_says_so():
    arche = np.full(3, bh.A["nudgeable"], dtype=np.int8)
    sms, ok, hearing = np.full(3, "sms"), np.zeros(3, dtype=np.int8), np.zeros(3, dtype=bool)
    before = np.array([0, 1, 3])
    tired = bh.respond_probability(bh.MODELS["fatigue"], sms, arche, ok, before, hearing)
    fresh = bh.respond_probability(bh.TUNING, sms, arche, ok, before, hearing)
    assert tired[0] > tired[1] > tired[2] and tired[1] == pytest.approx(tired[0] / 2)
    assert len(set(fresh)) == 1


def test_each_county_shows_its_models_assumption(seasons):
    tuning = seasons["tuning"].county
    assert not tuning.deaf.any()
    assert 0.1 < seasons["deaf"].county.deaf[seasons["deaf"].due].mean() < 0.2
    agents = seasons["agents"].county
    assert (agents.agent >= 0).mean() > 3 * (tuning.agent >= 0).mean()
    assert (agents.agent_batch > bh.day_of(2001, 6, 30)).any() and (tuning.agent_batch <= bh.day_of(2001, 6, 30)).all()

    def kept(county):
        a = county.arche
        return (a[:, 1:] == a[:, :-1]).mean()

    assert kept(seasons["drift"].county) < kept(tuning) - 0.1


def test_the_blanket_practice_does_worse_where_more_entities_ignore_it(seasons):
    blanket = {name: s.run("blanket") for name, s in seasons.items()}
    assert blanket["deaf"].on_time_rate < blanket["tuning"].on_time_rate - 0.02
