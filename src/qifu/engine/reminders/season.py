"""The season simulator: 1 January to 30 June on a synthetic county, one policy at a time.

The county's three past seasons (under the bureau's blanket policy) are the history a policy
may learn from. The new season's behaviour comes from the county's hidden behavioural model
(``synth.behaviour``), with every random draw made once up front, so two policies meet the same
filers, the same phones and the same luck. A policy sees only what a bureau sees: who has filed
so far, its own contacts and their delivery statuses, and the history.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from qifu.engine import season as filing_season
from qifu.engine.reminders import features, policy
from qifu.engine.synth import behaviour as bh
from qifu.engine.synth.county import County

MAX_CONTACTS = 10
CHANNELS = ("sms", "call", "visit")
POLICIES = ("blanket", "qifu", "rule", "history", "history_delivery", "last_heard")
# The simple baselines (issue 17): rules of a few lines over the bureau's history files only.
# ``history``: an entity that filed on time before 1 June in each of the last two seasons gets one
# text on 20 June if it has not filed; any other gets the blanket texts from 15 May and the call
# round. ``history_delivery``: the same, but an entity whose texts failed last season is called
# (1 June and 20 June) instead of texted. ``last_heard``: the same again, and an entity that
# last season filed just after a call is called too. ``rule``: qifu's ladder and decency with
# the simple rule's plan (``policy.rule_plan``) instead of the learnt one.
BASELINES = POLICIES[2:]
# Not a policy a bureau can run: qifu's ladder with each entity's true archetype this season as
# its plan, to show how far from the best any plan on the ladder could do on a model.
ORACLE = "oracle"
ORACLE_PLANS = {"early": "self", "steady": "self", "agent_client": "self", "nudgeable": "text",
                "needs_call": "call", "unreachable": "visit", "dormant": "review"}
EARLY_BY = (6, 1)
LATE_TEXT = (6, 20)


@dataclass
class Outcome:
    policy: str
    seed: int
    entities: int
    due: int
    on_time: int
    contacts: dict[str, int]
    plans: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    filed_day: np.ndarray | None = None  # per entity: the day (since 1 January) it filed
    contacted: np.ndarray | None = None  # per entity: contacts this season

    @property
    def on_time_rate(self) -> float:
        return self.on_time / self.due if self.due else 0.0

    @property
    def total_contacts(self) -> int:
        return sum(self.contacts.values())


class Season:
    """A synthetic county with three seasons of history and the draws for the next one."""

    def __init__(self, entities: int, seed: int, last_year: int = 2025, model: str | bh.Model = "tuning"):
        self.model = bh.MODELS[model] if isinstance(model, str) else model
        c = County(entities, seed, last_year, self.model)
        c.make_registry()
        c.make_behaviour()
        c.simulate_seasons(None)
        c.make_finances()
        self.county = c
        self.filing_year = last_year + 2  # the season to simulate files report year last_year + 1
        rng = np.random.default_rng([seed, 99])
        n = c.n
        prev = c.arche[:, -1].copy()
        change = (rng.random(n) < 1 - self.model.stay) & (prev != bh.A["dormant"]) & (prev != bh.A["agent_client"])
        shuffled = rng.choice([bh.A["early"], bh.A["steady"], bh.A["nudgeable"], bh.A["needs_call"]], size=n)
        self.arche = np.where(change, shuffled, prev).astype(np.int8)
        self.due = (c.status == "active") & (c.established_year <= last_year + 1)
        agent_day = np.where(c.agent >= 0, c.agent_batch[np.maximum(c.agent, 0)], 0)
        self.unprompted = bh.unprompted_day(rng, self.arche, self.filing_year, agent_day, self.model)
        self.u_deliver = rng.random((n, MAX_CONTACTS))
        self.u_respond = rng.random((n, MAX_CONTACTS))
        self.lag_sms = 1 + rng.geometric(0.3, size=(n, MAX_CONTACTS))
        self.lag_call = rng.integers(1, 6, size=(n, MAX_CONTACTS))
        self.deadline = filing_season.length(self.filing_year - 1)
        self._learnt: policy.Plan | None = None

    # --- what the bureau has ------------------------------------------------------------
    def history(self) -> tuple[pl.DataFrame, list[pl.DataFrame], pl.DataFrame]:
        """Registry, past seasons and last year's activity (computed once: the county's tax and
        social data are drawn from its random stream)."""
        if not hasattr(self, "_history"):
            self._history = self._build_history()
        return self._history

    def _build_history(self) -> tuple[pl.DataFrame, list[pl.DataFrame], pl.DataFrame]:
        c = self.county
        registry = pl.DataFrame({
            "uscc": c.uscc, "entity_type": c.types, "phone": np.where(c.has_phone, c.phone, ""),
            "established_on": c.established.astype("datetime64[D]"),
        }).with_columns(pl.col("established_on").cast(pl.Date))
        reminders = c.reminders.with_columns(pl.col("sent_at").str.to_datetime("%Y-%m-%d %H:%M:%S"))
        seasons = []
        for year in c.years:
            filed = c.filed_day[year]
            idx = np.flatnonzero(filed >= 0)
            start = np.datetime64(f"{year + 1}-01-01")
            filings = pl.DataFrame({"uscc": c.uscc[idx], "filed_at": (start + filed[idx].astype("timedelta64[D]"))}).with_columns(
                pl.col("filed_at").cast(pl.Datetime("us")))
            seasons.append(features.season_table(registry["uscc"], filings, reminders, year + 1))
        tax, social = c.tax_social_frames()
        last = c.years[-1]
        activity = (
            registry.select("uscc")
            .join(tax.filter(pl.col("year") == last).select("uscc", "tax_paid", "declared_sales"), on="uscc", how="left")
            .join(social.filter(pl.col("year") == last).select("uscc", "insured_count"), on="uscc", how="left")
        )
        return registry, seasons, activity

    # --- the season ---------------------------------------------------------------------
    def run(self, name: str) -> Outcome:
        started = time.perf_counter()
        c = self.county
        n = c.n
        filed = self.unprompted.copy()
        seen = policy.Seen.empty(n)
        contacts = dict.fromkeys(CHANNELS, 0)
        plans: dict[str, int] = {}
        if name not in POLICIES and name != ORACLE:
            raise ValueError(name)
        ladder = name in ("qifu", "rule", ORACLE)
        if ladder:
            plan = {"qifu": self._plan, "rule": self._rule_plan, ORACLE: self._oracle_plan}[name]()
            plans = {p: int((plan.plan == i).sum()) for i, p in enumerate(policy.PLANS)}
        if name in ("history", "history_delivery", "last_heard"):
            schedule = self._history_schedule(name)
            plans = {"early": int(schedule["early"].sum()), "call_instead": int(schedule["call"].sum())}
        for day in range(self.deadline + 1):
            if name == "blanket":
                idx, ch = self._blanket(day)
            elif ladder:
                idx, ch = policy.due_today(plan, self.filing_year, day, seen)
            else:
                idx, ch = self._history_today(schedule, day)
            if len(idx) == 0:
                continue
            keep = self.due[idx] & (filed[idx] >= day) & (seen.contacts[idx] < MAX_CONTACTS)
            keep &= (ch == "visit") | c.has_phone[idx]
            if ladder:  # the product's rules of decency (``reminders.decency``)
                keep &= seen.decent(idx, day)
            idx, ch = idx[keep], ch[keep]
            self.contact(idx, ch, day, filed, seen, contacts)
        on_time = int((self.due & (filed <= self.deadline)).sum())
        return Outcome(name, c.seed, n, int(self.due.sum()), on_time, contacts, plans, time.perf_counter() - started,
                       filed, seen.contacts)

    def _blanket(self, day: int):
        days = [(bh.day_of(self.filing_year, m, d), "sms") for m, d in bh.BLANKET_SMS]
        days.append((bh.day_of(self.filing_year, *bh.BLANKET_CALL), "call"))
        for d, channel in days:
            if d == day:
                idx = np.arange(self.county.n)
                return idx, np.full(len(idx), channel)
        return np.array([], dtype=np.int64), np.array([], dtype="<U5")

    def _history_schedule(self, name: str) -> dict[str, np.ndarray]:
        """Who filed early in each of the last two seasons, and (``history_delivery``,
        ``last_heard``) whose texts failed last season or (``last_heard``) who filed just after a
        call, read from the history tables a bureau has."""
        _, seasons, _ = self.history()
        cutoff = bh.day_of(self.filing_year - 1, *EARLY_BY)
        early = np.ones(self.county.n, dtype=bool)
        for table in seasons[-2:]:
            day = table["filed_day"].fill_null(10_000).to_numpy()
            early &= day < cutoff
        call = np.zeros(self.county.n, dtype=bool)
        if name in ("history_delivery", "last_heard"):
            call |= seasons[-1]["sms_failed"].to_numpy() > 0
        if name == "last_heard":
            call |= seasons[-1]["followed_call"].to_numpy()
        return {"early": early, "call": call & ~early}

    def _history_today(self, schedule: dict[str, np.ndarray], day: int):
        y = self.filing_year
        idx, ch = [], []
        if day == bh.day_of(y, *LATE_TEXT):
            idx.append(np.flatnonzero(schedule["early"]))
            ch.append("sms")
        texted = ~schedule["early"] & ~schedule["call"]
        for m, d in bh.BLANKET_SMS:
            if (m, d) >= (5, 15) and day == bh.day_of(y, m, d):
                idx.append(np.flatnonzero(texted))
                ch.append("sms")
        if day == bh.day_of(y, *bh.BLANKET_CALL):
            idx.append(np.flatnonzero(~schedule["early"]))
            ch.append("call")
        if day == bh.day_of(y, 6, 1):
            idx.append(np.flatnonzero(schedule["call"]))
            ch.append("call")
        if not idx:
            return np.array([], dtype=np.int64), np.array([], dtype="<U5")
        return np.concatenate(idx), np.concatenate([np.full(len(i), c) for i, c in zip(idx, ch)])

    def contact(self, idx, ch, day, filed, seen: policy.Seen, contacts: dict[str, int] | None = None) -> np.ndarray:
        """Entities ``idx`` contacted on ``day`` by channels ``ch``: the delivery status of each
        (returned), and a filing some days later where the county's behaviour responds."""
        c = self.county
        k = seen.contacts[idx]
        status = bh.status_of(self.u_deliver[idx, k], ch, c.reachable[idx], c.landline[idx], self.model)
        sms = ch == "sms"
        p = bh.respond_probability(self.model, ch, self.arche[idx], status, seen.texts_reached[idx], c.deaf[idx])
        respond = self.u_respond[idx, k] < p
        lag = np.where(sms, self.lag_sms[idx, k], self.lag_call[idx, k])
        hit = idx[respond]
        filed[hit] = np.minimum(filed[hit], day + lag[respond])
        seen.record(idx, ch, status, day)
        for channel in CHANNELS if contacts is not None else ():
            contacts[channel] += int((ch == channel).sum())
        return status

    def _plan(self) -> policy.Plan:
        """The learnt plan, learnt once per season: training is deterministic, and its runs and
        ``side_by_side`` read the same one (it was most of the cost of a side-by-side report)."""
        if self._learnt is None:
            registry, seasons, activity = self.history()
            self._learnt = policy.learn(registry, seasons, activity, dt.date(self.filing_year, 1, 1))
        return self._learnt

    def _oracle_plan(self) -> policy.Plan:
        names = np.array([policy.PLANS.index(ORACLE_PLANS[a]) for a in bh.ARCHETYPES])
        return policy.Plan(names[self.arche], np.zeros((self.county.n, 4)), "oracle")

    def _rule_plan(self) -> policy.Plan:
        registry, seasons, activity = self.history()
        frame, x = features.build(registry, seasons[1:], activity, dt.date(self.filing_year, 1, 1))
        return policy.rule_plan(x, [c for c in frame.columns if c != "uscc"])


def side_by_side(entities: int, seeds: list[int], models: list[str] | None = None,
                 oracle: bool = False) -> list[dict]:
    """Every policy on every behaviour model and seed, each against the blanket practice on the
    same county and draws: one row per (model, seed, policy)."""
    rows = []
    for model in models or list(bh.MODELS):
        for seed in seeds:
            season = Season(entities, seed, model=model)
            outcomes = {name: season.run(name) for name in (*POLICIES, *((ORACLE,) if oracle else ()))}
            blanket, qifu = outcomes["blanket"], outcomes["qifu"]
            plan = season._plan()
            for name, o in outcomes.items():
                rows.append({
                    "model": model, "tuning": model == bh.TUNING.name, "seed": seed, "policy": name,
                    "entities_due": o.due, "contacts": o.total_contacts, "contacts_by_channel": o.contacts,
                    "fewer_than_blanket": 1 - o.total_contacts / blanket.total_contacts if blanket.total_contacts else 0.0,
                    "on_time_rate": o.on_time_rate, "on_time_vs_blanket": o.on_time_rate - blanket.on_time_rate,
                    "better_than_qifu_on_both": (name in BASELINES and o.total_contacts < qifu.total_contacts
                                                 and o.on_time_rate > qifu.on_time_rate),
                    "plan_source": plan.source if name == "qifu" else "",
                })
    return rows
