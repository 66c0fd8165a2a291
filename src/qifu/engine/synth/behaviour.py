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
"""

from __future__ import annotations

import datetime as dt

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


def day_of(year: int, month: int, day: int) -> int:
    """Days since 1 January of ``year``."""
    return (dt.date(year, month, day) - dt.date(year, 1, 1)).days


def assign_archetypes(rng: np.random.Generator, types: np.ndarray, age_years: np.ndarray, seasons: int) -> np.ndarray:
    """An (entities x seasons) array of archetype indices (agent clients are assigned later)."""
    n = len(types)
    base = np.empty(n, dtype=np.int8)
    for name, shares in ARCHETYPE_SHARES.items():
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
        change = (rng.random(n) < 1 - STAY) & (prev != A["dormant"])
        shuffled = rng.choice([A["early"], A["steady"], A["nudgeable"], A["needs_call"]], size=n)
        prev[change] = shuffled[change]
        out[:, s] = prev
    return out


def unprompted_day(rng: np.random.Generator, arche: np.ndarray, year: int, agent_day: np.ndarray) -> np.ndarray:
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
    for name, p_late in (("nudgeable", 0.45), ("needs_call", 0.35), ("unreachable", 0.30)):
        m = arche == A[name]
        late = m & (rng.random(n) < p_late)
        d[late] = rng.integers(jul5, dec15, size=late.sum())
    agent = arche == A["agent_client"]
    d[agent] = agent_day[agent] + rng.integers(0, 3, size=agent.sum())
    return d


def deliver(rng: np.random.Generator, channel: str, reachable: np.ndarray, landline: np.ndarray) -> np.ndarray:
    """Delivery status per contact: 0 delivered, 1 failed, 2 unknown."""
    n = len(reachable)
    r = rng.random(n)
    status = np.zeros(n, dtype=np.int8)
    if channel == "sms":
        ok = reachable & ~landline
        status[ok & (r > 0.95)] = 2
        status[ok & (r > 0.99)] = 1
        stale = ~reachable & ~landline
        status[stale] = np.where(r[stale] < 0.8, 1, 2)
        status[landline] = 1  # a landline cannot receive a text
    else:  # call: answered or not
        status[reachable & (r > 0.72)] = 1
        status[~reachable & (r < 0.9)] = 1
    return status
