"""The reminder policy against the blanket policy on a synthetic season (simulator)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from qifu.engine.reminders import features, policy
from qifu.engine.reminders.season import Season


@pytest.fixture(scope="module")
def season():
    return Season(6000, 5)


def test_targeted_policy_makes_far_fewer_contacts_and_files_more_on_time(season):
    blanket, qifu = season.run("blanket"), season.run("qifu")
    assert blanket.due == qifu.due > 4000
    assert qifu.total_contacts <= 0.35 * blanket.total_contacts
    # the calls and visits that follow an unanswered text are where the gain comes from;
    # bench/remind_season.py measures it on 30,000 entities, three seeds and every behaviour model
    assert qifu.on_time_rate >= blanket.on_time_rate + 0.02
    assert qifu.contacts["visit"] > 0 and blanket.contacts["visit"] == 0


def test_the_simple_baselines_follow_their_rules_and_none_beats_the_policy_on_both_counts(season):
    blanket, qifu = season.run("blanket"), season.run("qifu")
    history, delivery, heard, rule = (season.run(p) for p in ("history", "history_delivery", "last_heard", "rule"))
    _, seasons, _ = season.history()
    cutoff = (dt.date(season.filing_year - 1, 6, 1) - dt.date(season.filing_year - 1, 1, 1)).days
    early = np.ones(season.county.n, dtype=bool)
    for table in seasons[-2:]:
        early &= table["filed_day"].fill_null(10_000).to_numpy() < cutoff
    assert history.plans["early"] == int(early.sum()) > 0  # read from the history files alone
    assert delivery.plans["call_instead"] > 0 and history.plans["call_instead"] == 0
    assert heard.plans["call_instead"] > delivery.plans["call_instead"]
    assert delivery.contacts["call"] > history.contacts["call"] and delivery.contacts["sms"] < history.contacts["sms"]
    assert rule.plans["self"] != qifu.plans["self"] and rule.plans["review"] == qifu.plans["review"]
    for base in (history, delivery, heard, rule):
        assert base.total_contacts < blanket.total_contacts
        assert not (base.total_contacts < qifu.total_contacts and base.on_time_rate > qifu.on_time_rate), base.policy


def test_the_ladder_keeps_the_rules_of_decency_in_a_whole_season(season):
    qifu = season.run("qifu")
    assert qifu.contacted.max() <= policy.MAX_PER_SEASON
    assert min(policy.FOLLOW_AFTER.values()) >= policy.MIN_DAYS_BETWEEN


def test_the_plan_is_the_learnt_one_only_where_it_did_better_on_the_last_season(season, monkeypatch):
    registry, seasons, activity = season.history()
    as_of = dt.date(season.filing_year, 1, 1)
    learnt = policy.learn(registry, seasons, activity, as_of)
    assert learnt.source == "model" and learnt.check["model"] < learnt.check["rule"]
    monkeypatch.setattr(policy, "backtest", lambda *a: {"model": 30.0, "rule": 30.0})
    fallback = policy.learn(registry, seasons, activity, as_of)
    assert fallback.source == "rule" and not fallback.proba.any()
    assert fallback.reason(0).endswith("（按往年报送记录的简单规则）")


def _seen(n: int) -> policy.Seen:
    return policy.Seen.empty(n)


def test_the_ladder_follows_what_the_season_showed():
    seen = _seen(6)
    day = 150
    status = policy.STATUS
    # a text delivered, a text failed, an answered call, an unanswered call after a failed text,
    # a first unanswered call, a visit that found nobody
    seen.record(np.array([0]), np.array(["sms"]), np.array([status["delivered"]]), day - 10)
    seen.record(np.array([1]), np.array(["sms"]), np.array([status["failed"]]), day - 10)
    seen.record(np.array([2]), np.array(["call"]), np.array([status["delivered"]]), day - 10)
    seen.record(np.array([3]), np.array(["sms"]), np.array([status["failed"]]), day - 20)
    seen.record(np.array([3]), np.array(["call"]), np.array([status["failed"]]), day - 10)
    seen.record(np.array([4]), np.array(["call"]), np.array([status["failed"]]), day - 10)
    seen.record(np.array([5]), np.array(["visit"]), np.array([status["failed"]]), day - 10)
    assert policy.next_channel(seen).tolist() == ["call", "call", "visit", "visit", "call", "visit"]
    after_visit = _seen(1)
    after_visit.record(np.array([0]), np.array(["visit"]), np.array([status["delivered"]]), day - 10)
    assert policy.next_channel(after_visit).tolist() == [""]


def test_a_plan_sets_the_first_contact_and_the_season_the_rest():
    year = 2027
    plans = np.array([policy.PLANS.index(p) for p in ("review", "self", "text", "call", "visit", "text")])
    plan = policy.Plan(plans, np.zeros((6, 4)))
    seen = _seen(6)
    first = {p: (dt.date(year, m, d) - dt.date(year, 1, 1)).days for p, ((m, d), _) in policy.FIRST.items()}
    idx, ch = policy.due_today(plan, year, first["text"], seen)
    assert 2 in idx and 5 in idx and 0 not in idx and ch[list(idx).index(2)] == "sms"
    seen.record(np.array([2, 5]), np.array(["sms", "sms"]), np.array([0, 0]), first["text"])
    soon = first["text"] + policy.FOLLOW_AFTER["sms"] - 1
    assert not np.isin([2, 5], policy.due_today(plan, year, soon, seen)[0]).any()
    idx, ch = policy.due_today(plan, year, soon + 1, seen)
    assert dict(zip(idx.tolist(), ch.tolist())) == {2: "call", 5: "call"}
    # the review list is never contacted; nobody is contacted after the last day
    seen.record(np.array([0]), np.array(["sms"]), np.array([0]), first["text"])
    assert 0 not in policy.due_today(plan, year, soon + 1, seen)[0]
    last = (dt.date(year, *policy.LAST_DAY) - dt.date(year, 1, 1)).days
    assert len(policy.due_today(plan, year, last + 1, seen)[0]) == 0
    # four contacts: the cap
    seen.contacts[:] = policy.MAX_PER_SEASON
    assert not np.isin([2, 5], policy.due_today(plan, year, soon + 1, seen)[0]).any()


def test_simulation_is_deterministic(season):
    a = season.run("qifu")
    learnt, season._learnt = season._learnt, None  # learnt again, not read from the season's memory
    b = season.run("qifu")
    assert season._learnt is not learnt and (season._learnt.plan == learnt.plan).all()
    assert (a.on_time, a.contacts, a.plans) == (b.on_time, b.contacts, b.plans)


def test_dormant_looking_entities_go_to_review_not_to_messages(season):
    registry, seasons, activity = season.history()
    frame, x = features.build(registry, seasons[1:], activity, dt.date(season.filing_year, 1, 1))
    names = [c for c in frame.columns if c != "uscc"]
    plan = season._plan()
    review = plan.plan == policy.PLANS.index("review")
    col = {n: i for i, n in enumerate(names)}
    assert review.any()
    assert (x[review, col["n_on_time"]] + x[review, col["n_late"]] == 0).all()
    assert (x[review, col["pays_tax"]] + x[review, col["insures"]] == 0).all()
    assert "review" not in policy.FIRST
    assert plan.reason(int(np.flatnonzero(review)[0])).startswith("近年未报送年报")


def test_features_come_only_from_bureau_data(season):
    registry, seasons, activity = season.history()
    assert set(registry.columns) == {"uscc", "entity_type", "phone", "established_on"}
    assert all("archetype" not in c for s in seasons for c in s.columns)


def test_first_contacts_fall_in_the_season_and_the_ladder_has_room():
    for (m, d), channel in policy.FIRST.values():
        assert channel in ("sms", "call", "visit") and dt.date(2027, m, d) <= dt.date(2027, *policy.LAST_DAY)
    assert dt.date(2027, *policy.LAST_DAY) <= dt.date(2027, 6, 30)


def test_the_blanket_practice_is_configuration(monkeypatch):
    import datetime as dt

    import pytest

    from qifu import config
    from qifu.engine.synth import behaviour as bh
    from qifu.reminders import practice

    default = practice.blanket()
    # the synthetic county's bureau followed the documented default practice
    assert [(m, d) for m, d, c in default.days if c == "sms"] == list(bh.BLANKET_SMS)
    assert [(m, d) for m, d, c in default.days if c == "call"] == [bh.BLANKET_CALL]
    monkeypatch.setenv("QIFU_BLANKET_PRACTICE", "sms:05-20,03-10;call:06-18")
    mine = practice.blanket()
    assert mine.text_days(2027) == [dt.date(2027, 3, 10), dt.date(2027, 5, 20)]
    assert mine.channel_on(dt.date(2027, 6, 18)) == "call" and mine.channel_on(dt.date(2027, 3, 1)) == ""
    monkeypatch.setenv("QIFU_BLANKET_PRACTICE", "sms:13-40")
    with pytest.raises(config.ConfigError, match="月-日"):
        practice.blanket()


def test_a_number_that_lost_most_texts_or_texts_that_did_not_work_start_with_a_call(season):
    registry, seasons, activity = season.history()
    frame, _ = features.build(registry, seasons[1:], activity, dt.date(season.filing_year, 1, 1))
    names = [c for c in frame.columns if c != "uscc"]
    col = {n: i for i, n in enumerate(names)}
    x = np.zeros((4, len(names)))
    x[:, col["phone_kind"]] = 1  # a mobile
    x[:, col["pays_tax"]] = 1
    x[:, [col["due_0"], col["n_due"]]] = 1
    x[:, [col["on_time_0"], col["n_on_time"]]] = 1
    x[:, col["n_sms_sent"]] = x[:, col["sms_sent_0"]] = 6
    x[0, col["n_sms_failed"]] = x[0, col["sms_failed_0"]] = 1  # one text lost: a working number
    x[1, col["n_sms_failed"]] = x[1, col["sms_failed_0"]] = 3  # half lost: a number that cannot take texts
    x[2, [col["on_time_0"], col["n_on_time"]]] = 0  # texts reached it and it filed late anyway
    x[2, [col["late_0"], col["n_late"]]] = 1
    x[3, [col["on_time_0"], col["n_on_time"]]] = 0  # the same, but they were lost: texts never tried
    x[3, [col["late_0"], col["n_late"]]] = 1
    x[3, col["n_sms_failed"]] = x[3, col["sms_failed_0"]] = 5
    x[3, col["n_calls"]] = x[3, col["n_calls_failed"]] = 1  # and the call went unanswered: a visit
    plan = policy._assign(np.zeros(4, dtype=bool), np.zeros(4, dtype=bool), x, names, np.zeros((4, 4)), "rule")
    assert [policy.PLANS[p] for p in plan.plan] == ["text", "call", "call", "visit"]


def test_the_season_plan_is_kept_whole_and_read_back_by_its_key(tmp_path, monkeypatch):
    """The plan kept under the data directory (the worker's run and a `qifu remind run` may both
    save it): written through a name of the writer's own, nothing left beside it, read back only
    for the key it was learnt for."""
    from qifu.reminders import actions

    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path))
    plan = policy.Plan(np.array([1, 3]), np.array([0.25, 0.5]), "learnt", {"holdout": 0.1})
    actions.save_plan(2027, "key-1", ["A", "B"], plan)
    usccs, back = actions.cached_plan(2027, "key-1")
    assert usccs.tolist() == ["A", "B"] and back.plan.tolist() == [1, 3] and back.proba.tolist() == [0.25, 0.5]
    assert (back.source, back.check) == ("learnt", {"holdout": 0.1})
    assert actions.cached_plan(2027, "key-2") is None
    assert [p.name for p in actions.plan_path(2027).parent.iterdir()] == [actions.plan_path(2027).name]
