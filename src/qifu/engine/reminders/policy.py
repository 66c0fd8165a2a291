"""Who gets which reminder, and when: a policy learnt from past seasons.

The model (scikit-learn, gradient-boosted trees) predicts how each entity will file this
season: on its own, after a text, after a call, or not on time. It is trained on the last
past season's outcome from the seasons before it, then applied to the most recent history.
The plan per entity follows from the prediction and from what the bureau knows of its phone:

- ``review``: never filed and no tax or social-security activity: a clean-up review list
  for staff, not a message.
- ``self``: likely to file on its own: nothing, except one text shortly before the deadline
  if it still has not filed.
- ``text``: a text in late May, a second one in June if still unfiled, then a call.
- ``call``: texts do not work (or did not in the past): a call in June, then a visit.
- ``visit``: unreachable by phone (texts and calls failed): a visit by the township's staff.

Every decision carries a reason that is stored with it. Contacts are never closer than 7 days
and at most 4 a season (checked in ``decency``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

PLANS = ("review", "self", "text", "call", "visit")
# Plan -> [(month, day, channel, condition)]; the condition is checked on the day.
SCHEDULE = {
    "self": [((6, 12), "sms"), ((6, 23), "sms")],
    "text": [((5, 15), "sms"), ((6, 1), "sms"), ((6, 12), "call"), ((6, 23), "sms")],
    "call": [((6, 3), "call"), ((6, 14), "visit")],
    "visit": [((6, 1), "visit")],
    "review": [],
}
REASONS = {
    "review": "近年未报送年报，也无税务和社保记录，列入清理核查名单，不发送提醒",
    "self": "往年均自行按时报送，预计无需提醒；六月仍未报送时才发送短信",
    "text": "往年收到短信后报送，安排短信提醒，仍未报送再电话联系",
    "call": "短信提醒效果不佳，安排电话联系，仍未报送再上门",
    "visit": "登记电话无法接通，安排镇街工作人员上门",
}
SELF_THRESHOLD = 0.4
# Bump when the model, its features or the plan rules change: cached season plans are relearnt.
VERSION = "1"


@dataclass
class Plan:
    plan: np.ndarray  # index into PLANS per entity
    proba: np.ndarray  # (n, 4) class probabilities: self, sms, call, missed

    def reason(self, i: int) -> str:
        p = self.proba[i]
        return f"{REASONS[PLANS[self.plan[i]]]}（预测：自行报送{p[0]:.0%}，短信后{p[1]:.0%}，电话后{p[2]:.0%}，逾期{p[3]:.0%}）"


def train(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0):
    # imported here: a day that reuses the season's plan does not need scikit-learn (1.7 s)
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=31, random_state=seed)
    model.fit(x_train, y_train)
    return model


def plan(model, x: np.ndarray, names: list[str]) -> Plan:
    proba = np.zeros((len(x), 4))
    proba[:, model.classes_.astype(int)] = model.predict_proba(x)
    col = {n: i for i, n in enumerate(names)}
    n_on_time, n_late = x[:, col["n_on_time"]], x[:, col["n_late"]]
    active = (x[:, col["pays_tax"]] + x[:, col["insures"]]) > 0
    mobile = x[:, col["phone_kind"]] == 1
    has_phone = x[:, col["phone_kind"]] > 0
    sms_sent, sms_failed = x[:, col["n_sms_sent"]], x[:, col["n_sms_failed"]]
    calls, calls_failed = x[:, col["n_calls"]], x[:, col["n_calls_failed"]]
    sms_dead = ~mobile | ((sms_sent >= 2) & (sms_failed >= 0.8 * sms_sent))
    call_dead = ~has_phone | ((calls >= 1) & (calls_failed >= calls))
    out = np.full(len(x), PLANS.index("text"))
    out[proba[:, 0] >= SELF_THRESHOLD] = PLANS.index("self")
    wants_call = (proba[:, 2] > proba[:, 1]) | sms_dead
    out[(out == PLANS.index("text")) & wants_call] = PLANS.index("call")
    out[(out != PLANS.index("self")) & sms_dead & call_dead] = PLANS.index("visit")
    n_due = x[:, col["n_due"]]
    out[(n_due >= 2) & (n_on_time + n_late == 0) & ~active] = PLANS.index("review")
    return Plan(out, proba)


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
    calls_failed: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Seen:
        return cls(np.zeros(n, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.full(n, "", dtype="<U5"),
                   np.full(n, -1, dtype=np.int8), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))

    def record(self, idx: np.ndarray, channel: np.ndarray, status: np.ndarray, day: int) -> None:
        self.contacts[idx] += 1
        self.last_day[idx] = day
        self.last_channel[idx] = channel
        self.last_status[idx] = status
        self.texts_reached[idx] += (channel == "sms") & (status != STATUS["failed"])
        self.calls_failed[idx] += (channel == "call") & (status == STATUS["failed"])

    def decent(self, idx: np.ndarray, day: int) -> np.ndarray:
        """The rules of decency the product applies (``reminders.decency``): spacing and a cap."""
        last = self.last_day[idx]
        return ((last < 0) | (day - last >= MIN_DAYS_BETWEEN)) & (self.contacts[idx] < MAX_PER_SEASON)


def due_today(p: Plan, filing_year: int, day: int, seen: Seen | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Entities whose plan has a contact on ``day`` (days since 1 January) and its channel."""
    start = dt.date(filing_year, 1, 1)
    idx, ch = [], []
    for plan_name, steps in SCHEDULE.items():
        for (m, d), channel in steps:
            if (dt.date(filing_year, m, d) - start).days == day:
                members = np.flatnonzero(p.plan == PLANS.index(plan_name))
                idx.append(members)
                ch.append(np.full(len(members), channel))
    if not idx:
        return np.array([], dtype=np.int64), np.array([], dtype="<U5")
    return np.concatenate(idx), np.concatenate(ch)
