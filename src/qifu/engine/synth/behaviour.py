"""The filers' behavioural model: who files when, and how reminders change that.

This is the hidden truth of the synthetic county, written to ``behaviour.csv`` so a reminder
policy can be scored against it, but never read by the policy itself: a policy must learn
from what a bureau has (past filing dates, reminder dates and delivery statuses, tax and
social-security activity, entity type, age, industry, township).

Archetypes (shares vary by entity type and age; see ``ARCHETYPE_SHARES``):

- ``early``: files in January to March on its own; reminders change nothing.
- ``steady``: files on its own between March and late June, often in the last weeks.
- ``nudgeable``: forgets unless reminded; each delivered SMS gets a filing within days with
  probability 0.55; without reminders it files late (after 30 June) or never.
- ``needs_call``: ignores text messages; a phone call (or visit) works.
- ``unreachable``: the registered phone is stale (SMS fails, calls fail); only a visit works.
- ``dormant``: no longer trading; no tax or social-security activity; never files.
- ``agent_client``: a filing agent (代理记账) files for it, in the agent's batch; the report
  carries the agent's phone number, shared by many unrelated entities.

Each entity keeps its archetype from season to season with probability 0.9, so history
predicts behaviour, but not perfectly.

Those are the assumptions of one model, ``tuning``: the one the reminder policy's thresholds and
schedule were chosen on. ``MODELS`` holds others that differ in what they assume (issue 17):
entities that never respond, types that drift between seasons, response that decays with
repeated texts and worse delivery, filing agents that batch late. Their parameters were fixed
on 2026-11-30, before the policy was tuned, and are not to be changed to suit a policy: a new
assumption is a new model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

ARCHETYPES = ("early", "steady", "nudgeable", "needs_call", "unreachable", "dormant", "agent_client")
A = {name: i for i, name in enumerate(ARCHETYPES)}

# Shares by entity type, before agent clients are assigned. Order as ARCHETYPES[:6].
ARCHETYPE_SHARES = {
    "enterprise": (0.36, 0.30, 0.17, 0.06, 0.03, 0.08),
    "individual": (0.17, 0.22, 0.28, 0.11, 0.08, 0.14),
    "cooperative": (0.25, 0.30, 0.22, 0.10, 0.05, 0.08),
}
STAY = 0.9  # probability of keeping the archetype into the next season

# Probability that a delivered contact leads to filing within days, by archetype.
SMS_RESPONSE = np.array([0.30, 0.20, 0.55, 0.04, 0.55, 0.0, 0.05])
EMAIL_RESPONSE = SMS_RESPONSE * 0.6
CALL_RESPONSE = np.array([0.50, 0.55, 0.75, 0.80, 0.75, 0.02, 0.40])
VISIT_RESPONSE = np.array([0.70, 0.75, 0.85, 0.90, 0.90, 0.05, 0.60])

# Blanket policy the bureau used in past seasons (domain §5.1 practice).
BLANKET_SMS = ((3, 1), (4, 15), (5, 15), (6, 1), (6, 15), (6, 25))
BLANKET_CALL = (6, 20)


@dataclass(frozen=True)
class Model:
    """One set of assumptions about how filers behave; ``tuning`` is the one described above."""

    name: str
    about: str
    shares: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(ARCHETYPE_SHARES))
    stay: float = STAY
    sms_response: tuple[float, ...] = tuple(SMS_RESPONSE)
    call_response: tuple[float, ...] = tuple(CALL_RESPONSE)
    visit_response: tuple[float, ...] = tuple(VISIT_RESPONSE)
    # share of the forgetful archetypes that file late (after 30 June) when nobody reminds them
    p_late: tuple[tuple[str, float], ...] = (("nudgeable", 0.45), ("needs_call", 0.35), ("unreachable", 0.30))
    deaf: float = 0.0  # share of trading entities that ignore every reminder, whatever its channel
    decay: float = 1.0  # a text's effect, times this for each text delivered earlier in the season
    sms_unknown: float = 0.04  # a working mobile: the text's status is unknown
    sms_failed: float = 0.01  # a working mobile: the text fails
    stale_sms_failed: float = 0.8  # a stale number: the text fails (else unknown)
    call_unanswered: float = 0.28  # a working phone: nobody answers
    stale_call_failed: float = 0.9
    agent_share: float = 0.08  # share of entities whose reports a filing agent files (at most)
    clients_per_agent: int = 128  # how many agents there are: share × entities / this
    agent_late: float = 0.0  # share of agents that file their batch in July unless reminded

    def response(self, channel: str) -> np.ndarray:
        table = {"sms": self.sms_response, "call": self.call_response, "visit": self.visit_response}[channel]
        return np.array(table)


MODELS = {
    m.name: m
    for m in (
        Model("tuning", "调参所用模型：七类报送习惯，九成主体逐年保持原习惯"),
        Model("deaf", "一成五主体对任何提醒都无反应（只按自己的习惯报送或不报）；电话接通率更低",
              deaf=0.15, call_unanswered=0.40),
        Model("drift", "习惯逐年变化大：每年四成主体换一种习惯，往年记录的预测力弱",
              stay=0.6),
        Model("fatigue", "重复短信效果递减（每多收到一条，效果减半）；短信失败和状态未知更多",
              decay=0.5, sms_unknown=0.10, sms_failed=0.06,
              shares={"enterprise": (0.30, 0.30, 0.23, 0.06, 0.03, 0.08),
                      "individual": (0.12, 0.20, 0.34, 0.11, 0.09, 0.14),
                      "cooperative": (0.20, 0.30, 0.27, 0.10, 0.05, 0.08)}),
        Model("agents", "代理记账户占两成五，三成代理机构若无人提醒要到七月才集中报送",
              agent_share=0.25, clients_per_agent=40, agent_late=0.3, sms_response=(0.30, 0.20, 0.55, 0.04, 0.55, 0.0, 0.30),
              call_response=(0.50, 0.55, 0.75, 0.80, 0.75, 0.02, 0.70)),
    )
}
TUNING = MODELS["tuning"]


def day_of(year: int, month: int, day: int) -> int:
    """Days since 1 January of ``year``."""
    return (dt.date(year, month, day) - dt.date(year, 1, 1)).days


def assign_archetypes(rng: np.random.Generator, types: np.ndarray, age_years: np.ndarray, seasons: int,
                      model: Model = None) -> np.ndarray:
    """An (entities x seasons) array of archetype indices (agent clients are assigned later)."""
    model = model or TUNING
    n = len(types)
    base = np.empty(n, dtype=np.int8)
    for name, shares in model.shares.items():
        idx = np.flatnonzero(types == name)
        p = np.array(shares, dtype=float)
        base[idx] = rng.choice(6, size=len(idx), p=p / p.sum())
    # Young entities are likelier to forget; old ones have a routine.
    young = (age_years < 2) & (base <= A["steady"]) & (rng.random(n) < 0.25)
    base[young] = A["nudgeable"]
    old = (age_years > 10) & (base == A["nudgeable"]) & (rng.random(n) < 0.3)
    base[old] = A["steady"]
    out = np.empty((n, seasons), dtype=np.int8)
    out[:, -1] = base
    for s in range(seasons - 2, -1, -1):
        prev = out[:, s + 1].copy()
        change = (rng.random(n) < 1 - model.stay) & (prev != A["dormant"])
        shuffled = rng.choice([A["early"], A["steady"], A["nudgeable"], A["needs_call"]], size=n)
        prev[change] = shuffled[change]
        out[:, s] = prev
    return out


def unprompted_day(rng: np.random.Generator, arche: np.ndarray, year: int, agent_day: np.ndarray,
                   model: Model = None) -> np.ndarray:
    """Day of the filing year on which each entity would file with no reminder (10**6: never)."""
    n = len(arche)
    never = 10**6
    d = np.full(n, never, dtype=np.int64)
    jan4, mar31, mar10, jun28 = day_of(year, 1, 4), day_of(year, 3, 31), day_of(year, 3, 10), day_of(year, 6, 28)
    jul5, dec15 = day_of(year, 7, 5), day_of(year, 12, 15)
    early = arche == A["early"]
    d[early] = rng.integers(jan4, mar31 + 1, size=early.sum())
    steady = arche == A["steady"]
    d[steady] = mar10 + np.floor((jun28 - mar10) * rng.beta(2.0, 1.2, size=steady.sum())).astype(np.int64)
    for name, p_late in (model or TUNING).p_late:
        m = arche == A[name]
        late = m & (rng.random(n) < p_late)
        d[late] = rng.integers(jul5, dec15, size=late.sum())
    agent = arche == A["agent_client"]
    d[agent] = agent_day[agent] + rng.integers(0, 3, size=agent.sum())
    return d


def deliver(rng: np.random.Generator, channel: str, reachable: np.ndarray, landline: np.ndarray,
            model: Model = None) -> np.ndarray:
    """Delivery status per contact: 0 delivered, 1 failed, 2 unknown."""
    return status_of(rng.random(len(reachable)), np.full(len(reachable), channel), reachable, landline, model or TUNING)


def status_of(r: np.ndarray, channel: np.ndarray, reachable: np.ndarray, landline: np.ndarray, model: Model) -> np.ndarray:
    """Delivery status per contact from one uniform draw each: 0 delivered, 1 failed, 2 unknown."""
    status = np.zeros(len(r), dtype=np.int8)
    sms, call, visit = channel == "sms", channel == "call", channel == "visit"
    ok = sms & reachable & ~landline
    status[ok & (r > 1 - model.sms_unknown - model.sms_failed)] = 2
    status[ok & (r > 1 - model.sms_failed)] = 1
    stale = sms & ~reachable & ~landline
    status[stale] = np.where(r[stale] < model.stale_sms_failed, 1, 2)
    status[sms & landline] = 1  # a landline cannot receive a text
    status[call & reachable & (r > 1 - model.call_unanswered)] = 1
    status[call & ~reachable & (r < model.stale_call_failed)] = 1
    status[visit & (r > 0.95)] = 1  # nobody there
    return status


def respond_probability(model: Model, channel: np.ndarray, arche: np.ndarray, status: np.ndarray,
                        texts_before: np.ndarray, deaf: np.ndarray) -> np.ndarray:
    """Chance that a contact leads to a filing within days: by archetype and channel, lower when
    its delivery is unknown, decaying with the texts delivered before it, none for the deaf."""
    sms, call = channel == "sms", channel == "call"
    p = np.where(sms, model.response("sms")[arche], np.where(call, model.response("call")[arche],
                                                                model.response("visit")[arche]))
    p = p * np.where(status == 2, 0.6, 1.0)
    if model.decay != 1.0:
        p = p * np.where(sms, model.decay ** texts_before, 1.0)
    return np.where(deaf | (status == 1), 0.0, p)
