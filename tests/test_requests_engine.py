"""Enterprise requests, the Django-free part: working days, the state machine move by move,
routing and duplicates."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from qifu.engine.requests import workdays, workflow
from qifu.engine.requests.workflow import IllegalMove, Move, State

SH = ZoneInfo("Asia/Shanghai")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def test_working_days_follow_the_official_calendar_with_make_up_weekends():
    assert not workdays.is_workday(dt.date(2026, 10, 1))  # National Day
    assert not workdays.is_workday(dt.date(2026, 2, 17))  # Spring Festival
    assert workdays.is_workday(dt.date(2026, 2, 28))  # a Saturday worked in exchange (调休)
    assert not workdays.is_workday(dt.date(2026, 3, 7))  # an ordinary Saturday
    assert workdays.is_workday(dt.date(2026, 3, 9))


def test_a_limit_counts_working_time_only():
    # Friday 16:00 + one working day = Monday 16:00
    assert workdays.due(at(2026, 3, 6, 16), 1) == at(2026, 3, 9, 16)
    # 30 September 10:00 + 1 working day skips the National Day holiday (1–7 October 2026)
    assert workdays.due(at(2026, 9, 30, 10), 1) == at(2026, 10, 8, 10)
    # and a make-up Saturday counts: 9 October 12:00 + 1 working day = Saturday 10 October 12:00
    assert workdays.due(at(2026, 10, 9, 12), 1) == at(2026, 10, 10, 12)
    assert workdays.working_seconds(at(2026, 3, 6, 16), at(2026, 3, 9, 16)) == 86_400
    assert workdays.working_seconds(at(2026, 3, 9, 16), at(2026, 3, 6, 16)) == 0


def test_the_nth_working_day_before_or_after_a_day_skips_holidays_and_counts_make_up_days():
    assert workdays.nth_after(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)  # National Day 1–7 October
    assert workdays.nth_after(dt.date(2026, 10, 9), 1) == dt.date(2026, 10, 10)  # a make-up Saturday
    assert workdays.nth_after(dt.date(2026, 3, 6), 5) == dt.date(2026, 3, 13)  # Friday: the next week
    assert workdays.nth_before(dt.date(2026, 10, 8), 1) == dt.date(2026, 9, 30)
    assert workdays.nth_before(dt.date(2026, 3, 13), 5) == dt.date(2026, 3, 6)
    assert workdays.nth_after(dt.date(2026, 3, 6), 0) == dt.date(2026, 3, 6)


def test_a_year_the_calendar_package_does_not_have_yet_uses_statutory_holidays():
    assert not workdays.is_workday(dt.date(2027, 1, 1))  # New Year's Day, from the holidays package
    assert not workdays.is_workday(dt.date(2027, 1, 2))  # a Saturday
    assert workdays.is_workday(dt.date(2027, 1, 4))


EXPECTED = {
    (State.SUBMITTED, Move.SIGN): State.SIGNED, (State.SUBMITTED, Move.TRANSFER): State.SUBMITTED,
    (State.SUBMITTED, Move.MERGE): State.CLOSED,
    (State.SIGNED, Move.START): State.IN_PROGRESS, (State.SIGNED, Move.ANSWER): State.ANSWERED,
    (State.SIGNED, Move.TRANSFER): State.SUBMITTED, (State.SIGNED, Move.WAIT): State.WAITING,
    (State.SIGNED, Move.MERGE): State.CLOSED,
    (State.IN_PROGRESS, Move.WAIT): State.WAITING, (State.IN_PROGRESS, Move.ANSWER): State.ANSWERED,
    (State.IN_PROGRESS, Move.TRANSFER): State.SUBMITTED, (State.IN_PROGRESS, Move.MERGE): State.CLOSED,
    (State.WAITING, Move.RESUME): State.IN_PROGRESS, (State.WAITING, Move.ANSWER): State.ANSWERED,
    (State.ANSWERED, Move.CONFIRM): State.CLOSED, (State.ANSWERED, Move.AUTO_CLOSE): State.CLOSED,
    (State.ANSWERED, Move.REOPEN): State.IN_PROGRESS, (State.CLOSED, Move.REOPEN): State.IN_PROGRESS,
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("move", list(Move))
def test_every_move_from_every_state_is_allowed_or_a_clear_error(state, move):
    if (state, move) in EXPECTED:
        assert workflow.next_state(state, move) == EXPECTED[(state, move)]
    else:
        with pytest.raises(IllegalMove, match=f"诉求{workflow.LABELS[state]}，不能“{workflow.MOVE_LABELS[move]}”"):
            workflow.next_state(state, move)


def test_only_closed_is_closed_for_open311():
    assert [s for s in State if not workflow.is_open(s)] == [State.CLOSED]


@pytest.mark.parametrize("text, category", [
    ("我们厂需要电力增容，新设备上了电不够用", "utilities"),
    ("网上有人卖假冒我们品牌的产品，商标被侵权了", "ip"),
    ("营业执照上的地址要变更到新厂区", "registration"),
    ("出口退税的钱迟迟没有到账", "tax"),
    ("员工在车间受伤了，工伤认定怎么办理", "social_security"),
    ("客户欠我们货款不还，想走法律途径", "legal"),
])
def test_the_seed_router_routes_plain_requests(text, category):
    from qifu.engine.requests.routing import seed_router

    route = seed_router().route(text)
    assert route.category == category and 0 < route.score <= 1


def test_an_override_phrase_decides_before_the_model():
    from qifu.engine.requests.routing import seed_router

    router = seed_router().with_overrides([("亩均", "land"), ("", "tax")])
    route = router.route("亩均评价的结果我们有异议，税收数据不对")
    assert (route.category, route.score, route.override) == ("land", 1.0, "亩均")


def test_a_ledger_is_routed_at_once_as_each_text_would_be_alone():
    from qifu.engine.requests.routing import seed_router

    router = seed_router().with_overrides([("亩均", "land")])
    texts = ["我们厂需要电力增容，新设备上了电不够用", "亩均评价的结果我们有异议", "出口退税的钱迟迟没有到账",
             "客户欠我们货款不还，想走法律途径", "亩均税收数据不对"]
    assert router.route_many(texts) == [router.route(t) for t in texts]
    assert [r.override for r in router.route_many(texts)] == [None, "亩均", None, None, "亩均"]
    assert router.route_many([]) == []


def test_a_follow_up_resembles_the_request_it_repeats():
    from qifu.engine.requests.similar import similarity

    first = "工业园区这周已经停电三次了，每次都没有提前通知，生产损失很大"
    again = "停电的问题还是没有解决，这周又停了"
    other = "想申请高新技术企业认定，研发费用够不够"
    assert similarity(again, first) > similarity(other, first)
    assert similarity(again, first) >= 0.5 > similarity(other, first)
