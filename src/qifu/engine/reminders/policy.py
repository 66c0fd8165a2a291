"""Who gets which reminder, and when: a plan learnt from past seasons, then what the season shows.

The model (scikit-learn, gradient-boosted trees) predicts how each entity will file this
season: on its own, after a text, after a call, or not on time. It is trained on the last
past season's outcome from the seasons before it, then applied to the most recent history.
The plan per entity follows from the prediction and from what the bureau knows of its phone;
it sets only the first contact (``FIRST``):

- ``review``: never filed and no tax or social-security activity: a clean-up review list
  for staff, not a message.
- ``self``: likely to file on its own: nothing until a text in the second half of June, if it
  still has not filed.
- ``text``: a text on 1 June.
- ``call``: texts do not work (or did not in the past): a call on 1 June.
- ``visit``: unreachable by phone (texts and calls failed): a visit by the township's staff.

After the first contact the ladder (``due_today``, ``next_channel``) follows what the season
showed: no filing some days after a text brings a call, an answered call a visit, an
unanswered call another call or a visit. ``rule_plan`` is the simple rule that reads the
history files only; ``learn`` uses it instead of the model where the model did no better on
the last past season (``backtest``). Every decision carries a reason that is stored with it.
Contacts are never closer than 7 days and at most 4 a season (checked in ``decency``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

PLANS = ("review", "self", "text", "call", "visit")
# Plan -> its first contact (month, day) and channel; later contacts follow what the season shows.
FIRST = {
    "self": ((6, 16), "sms"),
    "text": ((6, 1), "sms"),
    "call": ((6, 1), "call"),
    "visit": ((6, 1), "visit"),
}
# days without a filing after a contact (by its channel) before the next one
FOLLOW_AFTER = {"sms": 9, "call": 7, "visit": 7}
LAST_DAY = (6, 27)  # no new contact after this: too late to act on
LADDER_MAX = 4  # contacts a season on the ladder (the rules of decency allow 4)
REASONS = {
    "review": "近年未报送年报，也无税务和社保记录，列入清理核查名单，不发送提醒",
    "self": "往年均自行按时报送，预计无需提醒；六月仍未报送时才发送短信",
    "text": "往年收到短信后报送，安排短信提醒，仍未报送再电话联系",
    "call": "短信提醒效果不佳，安排电话联系，仍未报送再上门",
    "visit": "登记电话无法接通，安排镇街工作人员上门",
}
SELF_THRESHOLD = 0.4
SMS_DEAD_SHARE = 0.5  # share of past texts failed from which a number counts as unable to take texts
# Bump when the model, its features or the plan rules change: cached season plans are relearnt.
VERSION = "3"


@dataclass
class Plan:
    plan: np.ndarray  # index into PLANS per entity
    proba: np.ndarray  # (n, 4) class probabilities: self, sms, call, missed (zeros for the rule)
    source: str = "model"  # "model": the learnt plan; "rule": the simple rule (``rule_plan``)
    check: dict | None = None  # ``backtest`` scores that chose the source

    def reason(self, i: int, seen: Seen | None = None, day: int = 0, channel: str = "") -> str:
        if seen is not None and seen.contacts[i] > 0:
            last = {"sms": "短信", "call": "电话", "visit": "上门"}.get(str(seen.last_channel[i]), "提醒")
            how = "未能送达" if seen.last_status[i] == STATUS["failed"] else f"已{day - seen.last_day[i]}天仍未报送"
            now = {"sms": "发送短信", "call": "改为电话联系", "visit": "安排上门"}.get(channel, "再次提醒")
            return f"本季第{seen.contacts[i] + 1}次提醒：上次{last}{how}，{now}"
        if self.source == "rule":
            return f"{REASONS[PLANS[self.plan[i]]]}（按往年报送记录的简单规则）"
        p = self.proba[i]
        return f"{REASONS[PLANS[self.plan[i]]]}（预测：自行报送{p[0]:.0%}，短信后{p[1]:.0%}，电话后{p[2]:.0%}，逾期{p[3]:.0%}）"


def learn(registry, seasons: list, activity, as_of: dt.date) -> Plan:
    """The season's plan from the bureau's history (``seasons``: ``features.season_table`` of
    the last three seasons, oldest first): the learnt plan, unless the simple rule did as well
    when both were tried on the last past season (``backtest``); ``Plan.check`` says which."""
    from qifu.engine.reminders import features

    _, x_train = features.build(registry, seasons[:-1], activity, as_of - dt.timedelta(days=365))
    frame, x = features.build(registry, seasons[1:], activity, as_of)
    names = [c for c in frame.columns if c != "uscc"]
    check = backtest(registry, seasons, activity, as_of)
    if check["rule"] <= check["model"]:
        chosen = rule_plan(x, names)
    else:
        chosen = plan(train(x_train, seasons[-1]["label"].to_numpy()), x, names)
    chosen.check = check
    return chosen


def backtest(registry, seasons: list, activity, as_of: dt.date) -> dict[str, float]:
    """Both plans made as if a year ago, from one season of history, and scored against what the
    last season showed: an entity left to file alone that then needed a reminder or filed late
    counts twice (a missed filing), one reminded that then filed alone counts once (a needless
    contact). Per 100 entities due; lower is better."""
    from qifu.engine.reminders import features

    if len(seasons) < 3:
        return {"model": 0.0, "rule": 1.0}  # too little history to compare: the learnt plan
    year = dt.timedelta(days=365)
    frame, x_train = features.build(registry, seasons[:1], activity, as_of - 2 * year)
    _, x = features.build(registry, seasons[1:2], activity, as_of - year)
    names = [c for c in frame.columns if c != "uscc"]
    label = seasons[2]["label"].to_numpy()
    fy = int(seasons[2]["filing_year"][0])
    due = (registry["established_on"] <= dt.date(fy - 1, 12, 31)).fill_null(False).to_numpy()
    out = {}
    for name, p in (("model", plan(train(x_train, seasons[1]["label"].to_numpy()), x, names)), ("rule", rule_plan(x, names))):
        alone = p.plan == PLANS.index("self")
        contacted = np.isin(p.plan, [PLANS.index(k) for k in ("text", "call", "visit")])
        missed = alone & (label != 0) & due
        needless = contacted & (label == 0) & due
        out[name] = round(100 * float(2 * missed.sum() + needless.sum()) / max(int(due.sum()), 1), 2)
    return out


def train(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0):
    # imported here: a day that reuses the season's plan does not need scikit-learn (1.7 s)
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=31, random_state=seed)
    model.fit(x_train, y_train)
    return model


def plan(model, x: np.ndarray, names: list[str]) -> Plan:
    """The learnt plan: ``self`` where the model expects a filing without help, a call where it
    expects a call to work better than a text."""
    proba = np.zeros((len(x), 4))
    proba[:, model.classes_.astype(int)] = model.predict_proba(x)
    return _assign(proba[:, 0] >= SELF_THRESHOLD, proba[:, 2] > proba[:, 1], x, names, proba, "model")


def rule_plan(x: np.ndarray, names: list[str]) -> Plan:
    """The simple rule, from the history files alone: ``self`` for an entity that filed on time
    in every season it was due, each time before June or never just after a reminder reached
    it; a call for one that last filed just after a call."""
    col = {n: i for i, n in enumerate(names)}
    seasons = sum(1 for n in names if n.startswith("due_"))
    n_due, n_on_time = x[:, col["n_due"]], x[:, col["n_on_time"]]
    june = (dt.date(2001, 6, 1) - dt.date(2001, 1, 1)).days
    steady = np.ones(len(x), dtype=bool)
    for i in range(seasons):
        due = x[:, col[f"due_{i}"]] > 0
        before_june = x[:, col[f"filed_day_{i}"]] < june
        followed = (x[:, col[f"followed_sms_{i}"]] + x[:, col[f"followed_call_{i}"]]) > 0
        steady &= ~due | before_june | ~followed
    alone = (n_due >= 1) & (n_on_time == n_due) & steady
    last_call = x[:, col["followed_call_0"]] > 0
    return _assign(alone, last_call, x, names, np.zeros((len(x), 4)), "rule")


def _assign(alone: np.ndarray, wants_call: np.ndarray, x: np.ndarray, names: list[str], proba: np.ndarray,
            source: str) -> Plan:
    col = {n: i for i, n in enumerate(names)}
    n_on_time, n_late = x[:, col["n_on_time"]], x[:, col["n_late"]]
    active = (x[:, col["pays_tax"]] + x[:, col["insures"]]) > 0
    mobile = x[:, col["phone_kind"]] == 1
    has_phone = x[:, col["phone_kind"]] > 0
    sms_sent, sms_failed = x[:, col["n_sms_sent"]], x[:, col["n_sms_failed"]]
    calls, calls_failed = x[:, col["n_calls"]], x[:, col["n_calls_failed"]]
    # a working mobile loses a text now and then; most of them lost means a stale number
    sms_dead = ~mobile | ((sms_sent >= 2) & (sms_failed >= SMS_DEAD_SHARE * sms_sent))
    call_dead = ~has_phone | ((calls >= 1) & (calls_failed >= calls))
    # last season's texts reached it and it still did not file on time: texts do not work
    reached_last = x[:, col["sms_sent_0"]] - x[:, col["sms_failed_0"]]
    texts_ignored = (x[:, col["due_0"]] > 0) & (x[:, col["on_time_0"]] == 0) & (reached_last >= 2)
    out = np.full(len(x), PLANS.index("text"))
    out[alone] = PLANS.index("self")
    out[(out == PLANS.index("text")) & (wants_call | sms_dead | texts_ignored)] = PLANS.index("call")
    out[(out != PLANS.index("self")) & sms_dead & call_dead] = PLANS.index("visit")
    n_due = x[:, col["n_due"]]
    out[(n_due >= 1) & (n_on_time + n_late == 0) & ~active] = PLANS.index("review")
    return Plan(out, proba, source)


STATUS = {"delivered": 0, "failed": 1, "unknown": 2}
MIN_DAYS_BETWEEN, MAX_PER_SEASON = 7, 4


@dataclass
class Seen:
    """What the bureau has seen of this season so far, per entity: its contacts and their
    delivery statuses (days since 1 January; -1: none)."""

    contacts: np.ndarray
    last_day: np.ndarray
    last_channel: np.ndarray  # "", sms, call, visit
    last_status: np.ndarray  # -1 none, else STATUS
    texts_reached: np.ndarray  # texts delivered or of unknown status
    texts_failed: np.ndarray
    calls_failed: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Seen:
        return cls(np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.full(n, "", dtype="<U5"),
                   np.full(n, -1, dtype=np.int8), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                   np.zeros(n, dtype=np.int64))

    def record(self, idx: np.ndarray, channel: np.ndarray, status: np.ndarray, day: int) -> None:
        self.contacts[idx] += 1
        self.last_day[idx] = day
        self.last_channel[idx] = channel
        self.last_status[idx] = status
        self.texts_reached[idx] += (channel == "sms") & (status != STATUS["failed"])
        self.texts_failed[idx] += (channel == "sms") & (status == STATUS["failed"])
        self.calls_failed[idx] += (channel == "call") & (status == STATUS["failed"])

    def decent(self, idx: np.ndarray, day: int) -> np.ndarray:
        """The rules of decency the product applies (``reminders.decency``): spacing and a cap."""
        last = self.last_day[idx]
        return ((last < 0) | (day - last >= MIN_DAYS_BETWEEN)) & (self.contacts[idx] < MAX_PER_SEASON)


def due_today(p: Plan, filing_year: int, day: int, seen: Seen | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Entities with a contact on ``day`` (days since 1 January) and its channel.

    A plan sets the first contact. After it, what the season shows decides: an entity that has
    not filed ``FOLLOW_AFTER`` days after its last contact gets the next step of the ladder
    (``next_channel``), until the cap or ``LAST_DAY``. Without ``seen`` only first contacts."""
    start = dt.date(filing_year, 1, 1)
    channel = np.full(len(p.plan), "", dtype="<U5")
    fresh = np.ones(len(p.plan), dtype=bool) if seen is None else seen.contacts == 0
    for plan_name, ((m, d), first) in FIRST.items():
        if (dt.date(filing_year, m, d) - start).days == day:
            channel[fresh & (p.plan == PLANS.index(plan_name))] = first
    if seen is not None and day <= (dt.date(filing_year, *LAST_DAY) - start).days:
        wait = np.select([seen.last_channel == c for c in FOLLOW_AFTER], list(FOLLOW_AFTER.values()), 7)
        follow = (~fresh & (p.plan != PLANS.index("review")) & (day - seen.last_day >= wait)
                  & (seen.contacts < LADDER_MAX))
        step = next_channel(seen)
        channel[follow] = step[follow]
    idx = np.flatnonzero(channel != "")
    return idx, channel[idx]


def next_channel(seen: Seen) -> np.ndarray:
    """The ladder: a text that reached (or failed) is followed by a call; an answered call by a
    visit; an unanswered call by another call, then a visit; a visit that found nobody by another
    visit; after a visit that reached the entity, nothing."""
    last, status = seen.last_channel, seen.last_status
    failed = status == STATUS["failed"]
    out = np.full(len(last), "", dtype="<U5")
    out[last == "sms"] = "call"
    out[(last == "call") & ~failed] = "visit"
    # a second unanswered call, or an unanswered call after a failed text: the phone is dead
    dead = (seen.calls_failed >= 2) | (seen.texts_failed >= 1)
    out[(last == "call") & failed] = np.where(dead[(last == "call") & failed], "visit", "call")
    out[(last == "visit") & failed] = "visit"
    return out
