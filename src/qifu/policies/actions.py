"""Named actions of policy funding (惠企政策直达): load policies, match a year, tell the eligible
firms, take a firm's confirmation (its bank account) or application, review applications,
release installments into the ledger (with the checks before paying), batch them for the
treasury and reconcile the treasury's answer."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import polars as pl
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from qifu import bulk, db
from qifu import text as texts
from qifu.engine.policies import match as engine
from qifu.engine.policies import policy as policies_mod
from qifu.engine.policies import skills
from qifu.engine.policies.policy import Policy as PolicyDef
from qifu.engine.policies.profile import COLUMNS as profile_columns
from qifu.engine.rules.expressions import RuleCompileError, compile_expression
from qifu.policies import notices
from qifu.policies.models import (
    Application,
    ApplicationFile,
    Match,
    MatchRun,
    Payment,
    PaymentBatch,
    Policy,
    PolicyVersion,
    SkillCertificate,
    history_line,
)
from qifu.queued import Queue
from qifu.registry.models import Entity, Township
from qifu.service_requests.attachments import store

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

log = logging.getLogger(__name__)


class PolicyActionError(ValueError):
    """Something a person can fix, said in Chinese."""


@dataclass
class MatchResult:
    outcomes: list[engine.Outcome]
    new: int = 0
    changed: int = 0
    lapsed: int = 0
    again: int = 0
    notified: int = 0
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def matches(self) -> int:
        return sum(len(o) for o in self.outcomes)


# --- policies -------------------------------------------------------------------------------------


def do_save_policy(p: PolicyDef, text: str, now: dt.datetime, by: str = "") -> Policy:
    """The policy's current version; a changed text is a new version, the old one kept (with
    ``by``, who wrote it in the browser)."""
    fields = dict(title=p.title, year=p.year, mode=p.mode, kind=p.kind, category=p.category, department=p.department,
                  summary=p.summary, basis=p.basis, eligible=p.eligible, amount=p.amount, budget=p.budget,
                  installments=[str(s) for s in p.installments], milestones=list(p.milestones),
                  version=p.version, text=text)
    row = Policy.objects.filter(code=p.id).first()
    if row is None:
        row = Policy.objects.create(code=p.id, updated_at=now, **fields)
    elif row.version != p.version:
        for k, v in fields.items():
            setattr(row, k, v)
        row.updated_at = now
        row.save()
    PolicyVersion.objects.get_or_create(policy=row, version=p.version,
                                        defaults={"text": text, "created_at": now, "created_by": by[:100]})
    return row


# --- the profile's sources ------------------------------------------------------------------------


def fetch(year: int, columns: set[str] | None = None) -> dict[str, pa.Table | pl.DataFrame | str]:
    """What the profile of ``year`` (of ``columns``; every column: None) is built from: the
    analytical copies of the registry, reports, tax and social data (Parquet, refreshed if stale;
    read from the database inside a transaction), and from the database the year's indicators,
    parcels, land evaluation and open findings, as Polars frames. A source no column needs is
    not read. With the copies, nothing here imports pyarrow (0.1 s of every run)."""
    from qifu import analytics
    from qifu.analytics import sources as db_sources
    from qifu.checks.models import Finding
    from qifu.engine.policies.profile import SOURCES, sources_for
    from qifu.land import queries as land_queries
    from qifu.land.models import Result

    need = sources_for(columns)
    names = tuple(n for n in ("registry", "reports", "tax", "social") if n in need)
    data: dict[str, pa.Table | pl.DataFrame | str] = dict(analytics.paths(names) or db_sources.fetch(year, names))
    for name, sql in land_queries.inputs_sql(year, connection.vendor == "postgresql").items():
        if name in need:  # the profile's columns, in its types (the profile casts them again)
            with connection.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
                schema = {d[0]: _POLARS.get(SOURCES[name].get(d[0], ""), pl.String) for d in cur.description}
            data[name] = pl.DataFrame(rows, schema=schema, orient="row", strict=False)
    if "land" in need:
        evaluation = land_queries.latest(year)
        rows = list(Result.objects.filter(evaluation=evaluation).values_list("entity_id", "group", "score", "klass")) \
            if evaluation else []
        # through Polars: building Arrow arrays from Python lists imports pandas (0.4 s)
        data["land"] = pl.DataFrame(rows, schema={"uscc": pl.String, "group": pl.String, "score": pl.Float64,
                                                  "class": pl.String}, orient="row").with_columns(
            pl.col("group").replace("", None), pl.col("class").replace("", None))
    if "findings" in need:
        # plain rows: the ORM's conversion of the 64,000 firms with open findings in the bench's
        # county took 0.1 s of every run
        with connection.cursor() as cur:
            cur.execute(f"SELECT uscc, COUNT(*) FROM {Finding._meta.db_table} WHERE report_year = %s AND status = %s "
                        "AND severity IN ('block', 'high') GROUP BY uscc", [year, Finding.Status.OPEN])
            counts = cur.fetchall()
        data["findings"] = pl.DataFrame(counts, schema={"uscc": pl.String, "open_findings": pl.Int32}, orient="row")
    return data


# the profile's types (``profile.SOURCES``) as the rows come from either database: a flag as a
# number (SQLite has no booleans), cast by the profile
_POLARS = {"VARCHAR": pl.String, "INTEGER": pl.Int64, "BOOLEAN": pl.Int64, "DOUBLE": pl.Float64}


# --- matching -------------------------------------------------------------------------------------


def match_folder(folder: str | Path, year: int, out: Path | None = None, now: dt.datetime | None = None,
                 notify: bool = True) -> MatchResult:
    """`qifu policy match`: load or update the policies in ``folder``, match the ones of data
    year ``year``, store the matches, tell the new ones, write §2.4."""
    now = now or timezone.now()
    t = time.perf_counter()
    defs, warnings, texts_by_id = policies_mod.load_folder_texts(folder, year)
    chosen = [p for p in defs if p.year == year]
    skipped = [p for p in defs if p.year != year]
    warnings += [f"{p.id}：数据年度为 {p.year}，不是 {year}，本次只更新政策、不匹配" for p in skipped]
    with transaction.atomic():
        for p in defs:
            do_save_policy(p, texts_by_id[p.id], now)
    result = match_policies(chosen, year, now, notify=notify, out=out)
    result.warnings = warnings + result.warnings
    result.timings = {"load": time.perf_counter() - t - sum(result.timings.values()), **result.timings}
    return result


# --- writing a policy in the browser ---------------------------------------------------------------


@dataclass
class Trial:
    """What a policy's text would match now (``trial``), nothing stored: how many firms and
    how much, against the matches stored for it (new, no longer eligible, amount changed), by
    township, and the first firms by amount; ``rows``, every firm (``uscc``, ``micro``,
    ``reason``, ``town_id``, and ``change``: 新增, 变化 or 不变 against the stored match)."""

    policy: PolicyDef
    warnings: list[str]
    firms: int
    total: Decimal
    new: int
    gone: int
    changed: int
    by_town: list[tuple[str, int, Decimal]]
    top: list[tuple[str, str, Decimal, str]]  # credit code, name, amount, reason
    scaled: bool = False
    no_amount: int = 0
    rows: pl.DataFrame | None = None


def parse_for(text: str, code: str | None) -> tuple[PolicyDef, list[str]]:
    """A policy's text from the browser, parsed and checked as a file is (``PolicyError``), and
    its id: ``code``'s when it edits that policy (an id cannot change), a new one otherwise."""
    p, warnings = policies_mod.parse(text, "政策")
    if code is not None and p.id != code:
        raise policies_mod.PolicyError(f"政策：id：编辑时不能修改政策编号（{code}）；新政策请用“新增政策”")
    if code is None and Policy.objects.filter(code=p.id).exists():
        raise policies_mod.PolicyError(f"政策：id：政策编号 {p.id} 已存在，请打开该政策修改")
    return p, warnings


def _outcome(p: PolicyDef) -> tuple[engine.Outcome, dict]:
    """``p`` matched over its year's profile (or its certificates), and the data read for it."""
    if p.kind == "skills":
        return skills.match(p, certificates(p.year), committed_keys(p.id)), {}
    data = fetch(p.year, set(p.columns))
    return engine.run_duckdb([p], p.year, data)[0], data


def entities_where(year: int, condition: str, what: str = "条件") -> list[str]:
    """The credit codes whose profile of ``year`` meets ``condition``, an expression of the
    policies' language (``open_findings > 0 AND entity_type = 'enterprise'``), sorted: a targeted
    spot check's population is chosen with the same machinery as a policy's firms. A mistake in
    it is refused as a policy's is (``PolicyError``, naming ``what``)."""
    try:
        compile_expression(condition, profile_columns, condition=True, sql_nulls=True)
    except RuleCompileError as e:
        raise policies_mod.PolicyError(f"{what}：{e}") from None
    p = PolicyDef(id="where", title=what, year=year, eligible=condition, amount="0")
    return sorted(_outcome(p)[0].frame["uscc"].to_list())


def trial(text: str, code: str | None = None, top: int = 20) -> Trial:
    """试算: what ``text`` (a policy as YAML) would match on today's data, nothing stored."""
    p, warnings = parse_for(text, code)
    o, data = _outcome(p)
    frame = o.frame
    stored = Policy.objects.filter(code=p.id).first()
    old = _existing(stored) if stored else pl.DataFrame(schema={"uscc": pl.String, "old_micro": pl.Int64,
                                                                  "old_reason": pl.String, "status": pl.String})
    live = old.filter(~pl.col("status").is_in([*SETTLED, Match.Status.LAPSED, Match.Status.DECLINED]))
    both = frame.join(old, on="uscc", how="inner")
    towns = dict(Township.objects.values_list("code", "name"))
    placed = frame.join(_entities(frame.select("uscc"), data.get("registry")).select("uscc", "town_id"), on="uscc",
                        how="left")
    by_town = placed.group_by("town_id").agg(pl.len().alias("n"), pl.col("micro").sum()).sort("micro", descending=True)
    rows = placed.join(old.select("uscc", "old_micro", "old_reason"), on="uscc", how="left").select(
        "uscc", "micro", "reason", "town_id",
        pl.when(pl.col("old_micro").is_null()).then(pl.lit("新增"))
        .when((pl.col("micro") != pl.col("old_micro")) | (pl.col("reason") != pl.col("old_reason"))).then(pl.lit("变化"))
        .otherwise(pl.lit("不变")).alias("change"))
    first = frame.sort(["micro", "uscc"], descending=[True, False]).head(top)
    names = dict(Entity.objects.filter(uscc__in=first["uscc"].to_list()).values_list("uscc", "name"))
    return Trial(
        p, warnings, frame.height, o.total, frame.join(old, on="uscc", how="anti").height,
        live.join(frame, on="uscc", how="anti").height, both.filter((pl.col("micro") != pl.col("old_micro")) | (pl.col("reason") != pl.col("old_reason"))).height,
        [(towns.get(t, "（未登记镇街）"), n, engine.decimal(int(m))) for t, n, m in by_town.iter_rows()],
        [(u, names.get(u, ""), engine.decimal(m), r) for u, m, r in first.select("uscc", "micro", "reason").iter_rows()],
        o.scaled, o.no_amount, rows)


def do_write_policy(text: str, code: str | None, by, notify: bool = True, now: dt.datetime | None = None) -> MatchRun:
    """保存并匹配: the policy ``text`` saved at once (a new version when it changed:
    ``do_save_policy``, naming ``by``, the staff member) and queued to be matched, as `qifu policy
    match` does for a folder, by `qifu worker` (``run_pending_matches``): its matches stored and,
    with ``notify``, the new ones told. A mistake in the text is refused here (``PolicyError``),
    before anything is saved. ``code``: the policy edited, None for a new one."""
    now = now or timezone.now()
    p, warnings = parse_for(text, code)
    with transaction.atomic():
        row = do_save_policy(p, text, now, by.get_full_name() or by.username)
        return MatchRun.objects.create(policy=row, version=p.version, notify=notify, by=by, created_at=now,
                                       warnings=warnings)


PHASES = ("读取数据", "计算", "保存并通知")  # of ``match_policies``, as the page that follows a run shows them
MATCH_ATTEMPTS = 3  # a match interrupted by the worker's stop is started again at most this often
QUEUE = Queue(MatchRun, MatchRun.Status.QUEUED, MatchRun.Status.RUNNING, MatchRun.Status.FAILED, MATCH_ATTEMPTS,
              "匹配多次中断，请重新保存", requeue={"phase": ""})


def run_pending_matches() -> int:
    """Match every queued 保存并匹配, oldest first (`qifu worker`, every few seconds); one left
    匹配中 by a worker that stopped is matched again (``MATCH_ATTEMPTS``). Returns how many were
    taken up."""
    return QUEUE.run(_match_run)


def _match_run(run: MatchRun) -> None:
    """``run``'s policy matched as it stands now (a version saved since it was queued is the one
    matched; its own run then finds nothing new), its phase written as it goes."""
    def phase(name: str) -> None:
        MatchRun.objects.filter(pk=run.pk).update(phase=name)

    try:
        policy = Policy.objects.get(pk=run.policy_id)
        p, _ = policies_mod.parse(policy.text, "政策")
        r = match_policies([p], p.year, timezone.now(), notify=run.notify, progress=phase)
    except Exception as e:  # the person who saved sees why; the worker goes on with the next
        if isinstance(e, policies_mod.PolicyError):
            reason = str(e)
        else:
            log.exception("政策匹配 %s 失败", run.pk)
            reason = "匹配时出错，政策已保存；请稍后重新保存，再次失败请联系管理员"
        MatchRun.objects.filter(pk=run.pk).update(status=MatchRun.Status.FAILED, finished_at=timezone.now(),
                                                  error=reason[:300])
        return
    o = r.outcomes[0]
    MatchRun.objects.filter(pk=run.pk).update(
        status=MatchRun.Status.DONE, finished_at=timezone.now(), phase="",
        summary=f"符合 {len(o)} 户，合计 {o.total.normalize():f} 万元；新增 {r.new}，变更 {r.changed}，"
                f"不再符合 {r.lapsed}，通知 {r.notified} 户",
        warnings=run.warnings + r.warnings)


def match_policies(defs: list[PolicyDef], year: int, now: dt.datetime, notify: bool = True,
                   out: Path | None = None, progress: Callable[[str], object] = lambda phase: None) -> MatchResult:
    """Match ``defs`` over the year's profile, store the matches and tell the new ones, in one
    transaction; with ``out``, write §2.4 there once they are stored. ``progress`` is told each
    phase as it begins (读取数据, 计算, 保存并通知), outside the transaction."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress(PHASES[0])
    by_profile = [p for p in defs if p.kind == "profile"]
    data = fetch(year, set().union(*(p.columns for p in by_profile))) if by_profile else {}
    timings["fetch"] = time.perf_counter() - t
    t = time.perf_counter()
    progress(PHASES[1])
    found = {o.policy.id: o for o in (engine.run_duckdb(by_profile, year, data) if by_profile else [])}
    for p in defs:
        if p.kind == "skills":
            found[p.id] = skills.match(p, certificates(p.year), committed_keys(p.id))
    outcomes = [found[p.id] for p in defs]
    timings["engine"] = time.perf_counter() - t
    t = time.perf_counter()
    result = MatchResult(outcomes)
    progress(PHASES[2])
    # §2.4 is written in a thread of its own while the matches are stored, into a file beside
    # ``out`` that takes its place once they are committed; the messages are made in another
    # (SQLite and Polars leave Python's lock while they work)
    with ThreadPoolExecutor(max_workers=2) as pool:
        aside = pool.submit(_write_aside, outcomes, Path(out)) if out is not None else None
        try:
            _store_all(result, data, now, notify, pool, timings)
            if aside:
                t = time.perf_counter()
                os.replace(aside.result(), out)
                timings["write"] = time.perf_counter() - t
        except BaseException:
            if aside:
                with contextlib.suppress(Exception):
                    aside.result().unlink()
            raise
    for o in outcomes:
        if o.no_amount:
            result.warnings.append(f"{o.policy.id}：{o.no_amount} 户符合条件但金额为空（金额引用的数据缺失），未列入")
        if o.scaled:
            result.warnings.append(f"{o.policy.id}：应享金额合计 {o.total_before_budget} 万元超过预算 {o.policy.budget} 万元，"
                                   f"已按比例折算")
    result.timings = timings
    return result


def _store_all(result: MatchResult, data: dict, now: dt.datetime, notify: bool, pool: ThreadPoolExecutor,
               timings: dict[str, float]) -> None:
    """Every outcome of ``result`` stored (``_store``), and the new matches told (with
    ``notify``: 免申即享 and 需申请 policies alike, ``notices``), in one transaction."""
    t = time.perf_counter()
    outcomes = result.outcomes
    codes = [o.policy.id for o in outcomes] if notify else []
    db.bulk_work()  # a first run writes a row per match and a message per firm: 230,000 for a county
    with transaction.atomic():
        stored = [_store(o, now, result, tell=notify, quiet=not notify) for o in outcomes]
        told = [s.new.select("uscc", pl.lit(o.policy.id).alias("code"), pl.lit(o.policy.title).alias("title"), "micro",
                             pl.lit(o.policy.mode).alias("mode"))
                for o, s in zip(outcomes, stored, strict=True) if notify and s.new.height]
        new = [s.rows for s in stored if s.rows.height]
        # whom to tell besides (matches stored untold before), read before this run's new
        # matches are inserted so as not to read them back; nothing new: nobody to tell
        waiting = notices.untold(codes) if told else None
        if new:  # the townships and contacts of the firms the run writes of, read once
            firms = pl.concat([*(r.select("uscc") for r in new), *([waiting.select("uscc")] if told else [])]).unique()
            entities = _entities(firms, data.get("registry"))
            reach = notices.reachable(entities)
        # the messages are made in a thread while the matches go in (0.15 s of a first run)
        telling = pool.submit(notices.telling, now, pl.concat(told), reach, waiting) if told else None
        if new:
            # every policy's new matches in one insert, in a firm's order; a new match whose
            # firm a text or email reaches is stored as told (with ``notify``): its message is
            # written below, in the same transaction
            _insert_new(new, now, entities.select("uscc", "town_id").join(
                reach.select("uscc", pl.lit(True).alias("reached")), on="uscc", how="left"))
        for o, s in zip(outcomes, stored, strict=True):
            if o.policy.kind == "skills" and not s.same:
                _link_certificates(o)
        timings["store"] = time.perf_counter() - t
        if notify:
            t = time.perf_counter()
            if telling:
                result.notified = notices.store(telling.result(), now)
            timings["notify"] = time.perf_counter() - t
        t = time.perf_counter()
    timings["commit"] = time.perf_counter() - t  # PostgreSQL checks the new rows' foreign keys here


def certificates(year: int) -> list[dict]:
    """The vocational-skill certificates issued in ``year``."""
    return [dict(r, uscc=r.pop("entity_id")) for r in SkillCertificate.objects.filter(issued_on__year=year).values(
        "certificate_no", "id_number", "entity_id", "occupation", "level", "issued_on")]


def committed_keys(except_policy: str) -> set[str]:
    """Who was paid for what (person, occupation, level) under the other skill policies."""
    return set(Payment.objects.exclude(person_key="").exclude(status=Payment.Status.CANCELLED)
               .exclude(policy__code=except_policy).values_list("person_key", flat=True))


SETTLED = (Match.Status.PAID, Match.Status.REJECTED)


class Stored(NamedTuple):
    """What ``_store`` made of a policy's outcome: its new matches (``uscc``, ``micro``,
    ``reason``), the rows to insert for them (``_new_rows``: the caller inserts every policy's
    at once), and whether the outcome was the same as the last one stored (nothing touched)."""

    new: pl.DataFrame
    rows: pl.DataFrame
    same: bool = False


def _store(o: engine.Outcome, now: dt.datetime, result: MatchResult, tell: bool = False,
           quiet: bool = False) -> Stored:
    """The outcome as the policy's matches: changed amounts or reasons updated while nothing is
    released, firms no longer eligible flagged, unchanged rows untouched; the new ones returned
    to be inserted (with ``tell``, as told now where a message reaches the firm; with ``quiet``,
    as not to be told before a run that notifies)."""
    policy = Policy.objects.get(code=o.policy.id)
    version = o.policy.version
    digest = _digest(o)
    if policy.last_digest == digest:  # the same rows as the last match stored: nothing new, changed or gone
        return Stored(o.frame.clear(), pl.DataFrame(), same=True)
    old = _existing(policy)
    frame = o.frame
    if old.is_empty():  # nothing stored yet (a new policy, a first run): every row is new
        new, touched, gone = frame, old, old
    else:
        released = pl.Series(list(Payment.objects.filter(policy=policy).values_list("match_id", flat=True).distinct()),
                             dtype=pl.Int64)
        new = frame.join(old.select("uscc"), on="uscc", how="anti")
        both = frame.join(old, on="uscc", how="inner").with_columns(
            pl.col("id").is_in(released.implode()).alias("released"))
        differs = ((pl.col("micro") != pl.col("old_micro")) | (pl.col("reason") != pl.col("old_reason"))
                   | (pl.col("old_version") != version)) & ~pl.col("released")
        # a declined match keeps its status; that it is no longer eligible is kept in ``lapsed_at``
        declined_gone = (pl.col("status") == Match.Status.DECLINED) & pl.col("lapsed")
        touched = both.filter(differs | (pl.col("status") == Match.Status.LAPSED) | declined_gone)
        gone = old.join(frame.select("uscc"), on="uscc", how="anti").filter(
            ~pl.col("status").is_in([*SETTLED, Match.Status.LAPSED]) & ~declined_gone)
    inserts = _new_rows(policy, version, new, now, tell, quiet)
    if touched.height:
        rows = {r["id"]: r for r in touched.iter_rows(named=True)}
        objs = list(Match.objects.filter(pk__in=list(rows)))
        for m in objs:
            r = rows[m.pk]
            if m.status == Match.Status.LAPSED:
                m.status, m.lapsed_at = Match.Status.HELD if r["released"] else Match.Status.ELIGIBLE, None
                m.add_history(history_line(now, "系统", "再次符合条件"))
                result.again += 1
            elif m.declined_and_gone:
                m.lapsed_at = None
                m.add_history(history_line(now, "系统", "再次符合条件（企业已放弃）"))
                result.again += 1
            amount = engine.decimal(r["micro"])
            if not r["released"] and (m.amount != amount or m.reason != r["reason"] or m.version != version):
                m.add_history(history_line(now, "系统", f"按政策版本 {version} 重新匹配：金额 {m.amount.normalize():f} → "
                                                        f"{amount.normalize():f} 万元"))
                m.amount, m.reason, m.version = amount, r["reason"], version
            m.matched_at = now
        _update(objs, ["status", "lapsed_at", "history", "amount", "reason", "version", "matched_at"])
        result.changed += len(objs)
    if gone.height:
        objs = list(Match.objects.filter(pk__in=gone["id"].to_list()))
        for m in objs:
            if m.status == Match.Status.DECLINED:
                m.lapsed_at = now
                m.add_history(history_line(now, "系统", "重新匹配时不再符合条件（企业已放弃）"))
                continue
            m.status, m.lapsed_at = Match.Status.LAPSED, now
            m.add_history(history_line(now, "系统", "重新匹配时不再符合条件：暂停兑现，待工作人员复核"))
        _update(objs, ["status", "lapsed_at", "history"])
        result.lapsed += len(objs)
    result.new += new.height
    Policy.objects.filter(pk=policy.pk).update(last_digest=digest)
    return Stored(new, inserts)


def _update(matches: list[Match], fields: list[str]) -> None:
    """``fields`` of ``matches`` written in bulk (``bulk.update``): a changed policy touches
    every match of it, 60,000 for the county's largest, and Django's ``bulk_update`` built a
    CASE of every row for each field (224 s for those, against about a second)."""
    utc = pl.Datetime("us", "UTC")
    kinds = {"status": pl.String, "lapsed_at": utc, "history": pl.String, "amount": pl.String, "reason": pl.String,
             "version": pl.String, "matched_at": utc}
    value = {"history": lambda m: json.dumps(m.history), "amount": lambda m: f"{m.amount:f}"}
    frame = pl.DataFrame({"id": [m.pk for m in matches],
                          **{f: [value[f](m) if f in value else getattr(m, f) for m in matches] for f in fields}},
                         schema={"id": pl.Int64, **{f: kinds[f] for f in fields}})
    bulk.update(Match._meta.db_table, frame, key=["id"])


def _link_certificates(o: engine.Outcome) -> None:
    """A skill subsidy's certificates linked to the match that pays them (once its new matches
    are stored)."""
    ids = dict(Match.objects.filter(policy__code=o.policy.id).values_list("entity_id", "id"))
    for uscc, extra in o.extra.items():
        SkillCertificate.objects.filter(certificate_no__in=[c["certificate_no"] for c in extra["certificates"]]) \
            .exclude(match_id=ids[uscc]).update(match_id=ids[uscc])


def _digest(o: engine.Outcome) -> str:
    """What tells a run that an outcome is the one stored last. Each row's hash is Polars's: the
    same in every process of one Polars version (another version, or another processor, gives
    another digest once, and the rows are compared one by one, as after any change). Writing
    the rows out as CSV to hash them took 0.06 s a run. The hashes reach SHA-256 as an Arrow
    stream, not through NumPy, which a match run would import for this alone (0.03 s)."""
    h = hashlib.sha256(f"{o.policy.version}\n".encode())
    hashes = io.BytesIO()
    o.frame.select("uscc", "micro", "reason").hash_rows(seed=0).to_frame().write_ipc_stream(
        hashes, compression="uncompressed")
    h.update(hashes.getvalue())
    for uscc in sorted(o.extra):  # a skill subsidy: the certificates each row covers
        h.update(f"{uscc}:{','.join(c['certificate_no'] for c in o.extra[uscc]['certificates'])}\n".encode())
    return h.hexdigest()


def _existing(policy: Policy) -> pl.DataFrame:
    """The policy's stored matches, read as plain rows (the amount in millionths of 万元)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT id, uscc, CAST(ROUND(amount * {engine.PER_WAN}) AS BIGINT), reason, version, status, "
                    f"lapsed_at IS NOT NULL FROM {Match._meta.db_table} WHERE policy_id = %s", [policy.id])
        rows = cur.fetchall()
    return pl.DataFrame(rows, schema={"id": pl.Int64, "uscc": pl.String, "old_micro": pl.Int64, "old_reason": pl.String,
                                      "old_version": pl.String, "status": pl.String, "lapsed": pl.Boolean},
                        orient="row")


def _entities(firms: pl.DataFrame, copy: object = None) -> pl.DataFrame:
    """The township code and contacts of ``firms`` (``uscc``; read once per match run that has
    new matches): from ``copy``, the analytical copy of the registry the profile was read from
    (a Parquet path), when there is one, so that the run tells whom it matched on the same
    registry, and 240,000 rows are not read through Python (0.3 s); else from the database."""
    if isinstance(copy, str):
        towns = pl.DataFrame(list(Township.objects.values_list("name", "code")), schema=["town", "town_id"],
                             orient="row")
        return (pl.scan_parquet(copy).select("uscc", "town", "phone", "email")
                .join(firms.lazy(), on="uscc", how="semi").join(towns.lazy(), on="town", how="left")
                .select("uscc", "town_id", "phone", "email").collect())
    with connection.cursor() as cur:
        cur.execute("SELECT uscc, town_id, phone, email FROM registry_entity")
        every = pl.DataFrame(cur.fetchall(), schema=dict.fromkeys(("uscc", "town_id", "phone", "email"), pl.String),
                             orient="row")
    return every.join(firms, on="uscc", how="semi")


def _new_rows(policy: Policy, version: str, new: pl.DataFrame, now: dt.datetime, tell: bool,
              quiet: bool = False) -> pl.DataFrame:
    """The rows of the new matches ``new`` of ``policy``, as stored (but the township and when
    the firm was told: ``_insert_new``; the history empty, ``Match.made``), and whether to store
    them as told (``tell``)."""
    utc = pl.Datetime("us", "UTC")
    return new.select(
        pl.lit(policy.id).alias("policy_id"), pl.col("uscc"), pl.lit(version).alias("version"),
        engine.micro_text().alias("amount"),
        pl.col("reason"), pl.lit(Match.Status.ELIGIBLE.value).alias("status"),
        pl.lit(timezone.localdate(now)).alias("eligible_on"), pl.lit(now).cast(utc).alias("matched_at"),
        *(pl.lit(None, dtype=utc).alias(c) for c in ("confirmed_at", "lapsed_at")),
        *(pl.lit("").alias(c) for c in ("hold_reason", "bank_name", "bank_account", "account_name")),
        pl.lit("[]").alias("history"), pl.lit(quiet).alias("quiet"), pl.lit(tell).alias("tell"))


def _insert_new(parts: list[pl.DataFrame], now: dt.datetime, firms: pl.DataFrame) -> None:
    """Stores the new matches ``parts`` (``_new_rows``, of one or more policies) with each
    firm's township, as told now where they are to be told and ``firms`` (each firm's ``uscc``,
    ``town_id`` and whether a message reaches it, ``reached``) says a message reaches the firm.
    In a firm's order, so that the indexes beginning with the firm grow at one end."""
    utc = pl.Datetime("us", "UTC")
    rows = pl.concat(parts).join(firms, on="uscc", how="left").with_columns(
        pl.when(pl.col("tell") & pl.col("reached")).then(pl.lit(now).cast(utc)).otherwise(None).alias("told_at"))
    bulk.insert(Match._meta.db_table, rows.sort("uscc", "policy_id").drop("reached", "tell"),
                rows_per_statement=bulk.MANY_ROWS)


def _write_aside(outcomes: list[engine.Outcome], path: Path) -> Path:
    """``write`` into a new file beside ``path`` (hidden, with its extension), for the caller to
    put in its place."""
    aside = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    write(outcomes, aside)
    return aside


def write(outcomes: list[engine.Outcome], path: Path) -> None:
    """Contract §2.4: policy_id, uscc, amount, reason; CSV, XLSX or JSON by the extension. In CSV
    the amount is the decimal as written (0.000001, never 1e-06); in JSON and XLSX a number."""
    text = Path(path).suffix.lower() == ".csv"
    # the decimal text read as a number: the nearest double, which prints as written (0.0592)
    amount = (engine.micro_text(trim=True) if text else engine.micro_text().cast(pl.Float64)).alias("amount")
    frames = [o.frame.select(pl.lit(o.policy.id).alias("policy_id"), "uscc", amount, "reason") for o in outcomes]
    frame = pl.concat(frames) if frames else pl.DataFrame(
        schema={"policy_id": pl.String, "uscc": pl.String, "amount": pl.String if text else pl.Float64,
                "reason": pl.String})
    from qifu import spreadsheets

    spreadsheets.write_frame(frame, path, sheet="政策匹配结果")


# --- the firm's side --------------------------------------------------------------------------------

# the account can be given or changed (a declined match: taken back, while the firm is still eligible)
CONFIRMABLE = (Match.Status.ELIGIBLE, Match.Status.CONFIRMED, Match.Status.HELD, Match.Status.DECLINED)
# the firm has not decided yet, or declined and may take it back by confirming or applying
UNDECIDED = (Match.Status.ELIGIBLE, Match.Status.DECLINED)
# accepted (account confirmed, or application approved) and not paid in full: the firm may give
# up what is not paid yet (放弃其余资金)
GIVE_UP = (Match.Status.CONFIRMED, Match.Status.HELD)


FIRM_ACTIONS = ("confirm", "apply", "decline", "give_up", "withdraw")


def firm_can(m: Match) -> list[str]:
    """What the firm may do with ``m`` now, in the portal and through the API: ``confirm`` its
    account (免申即享; again to change it), ``apply`` (需申请), ``decline`` (放弃, while it has
    not accepted), ``give_up`` the rest (放弃其余资金, once accepted; refused while an installment
    is with the treasury), ``withdraw`` an application not yet reviewed. Reads
    ``m.application`` (select it with the match)."""
    open_to_firm = not m.declined_and_gone and not m.gave_up_rest
    application = m.application_or_none
    automatic = m.policy.mode == Policy.Mode.AUTOMATIC
    can = {
        "confirm": automatic and m.status in CONFIRMABLE and open_to_firm,
        "apply": not automatic and m.status in UNDECIDED and open_to_firm,
        "decline": m.status == Match.Status.ELIGIBLE,
        "give_up": m.status in GIVE_UP,
        "withdraw": m.status == Match.Status.APPLIED and application is not None
        and application.status == Application.Status.SUBMITTED,
    }
    return [k for k, v in can.items() if v]


def _taken_back(m: Match) -> bool:
    """Whether ``m`` (locked) is a declined match the firm takes back now: refused with the
    reason once a later match run no longer found it eligible, or once the firm gave up the rest
    of a policy it had accepted (what was due is cancelled: final)."""
    if m.gave_up_rest:
        raise PolicyActionError("贵企业已放弃这项政策的其余资金，不能撤回；如有疑问请联系主管部门")
    if m.declined_and_gone:
        raise PolicyActionError("贵企业已放弃这项政策，按最新数据也已不再符合条件，不能再办理")
    return m.status == Match.Status.DECLINED


def do_decline(match: Match, reason: str = "", now: dt.datetime | None = None, by=None,
               rest: bool | None = None) -> Match:
    """The firm declines the policy (放弃) before confirming or applying: nothing is released,
    it is not reminded again, and later match runs leave it declined. Confirming the account (or
    applying) takes it back while the firm is still eligible. A policy the firm has accepted
    (``GIVE_UP``: its account confirmed, or its application approved) and not been paid in full:
    it gives up the rest (放弃其余资金), for instance a project stopped before its milestones; what
    was paid stays paid, what was released and not yet sent is cancelled (back in the policy's
    budget), the policy's department is told, and that cannot be taken back. Refused while an
    installment is with the treasury. ``by``: the staff member who records it for a firm that
    said so by telephone or at a service station (a reason is then required). ``rest=False``: the
    caller asked for a plain decline, refused (under the lock) if the match has been accepted
    meanwhile, since giving up the rest cannot be taken back."""
    now = now or timezone.now()
    reason = _text(reason, "放弃原因")[:200]
    if by is not None and len(reason) < 2:
        raise PolicyActionError("请写明企业放弃的原因和方式（如：企业来电表示不需要）")
    who = "企业" if by is None else f"{by}（代企业登记）"
    with transaction.atomic():
        m = Match.objects.select_for_update().select_related("policy").get(pk=match.pk)
        if m.status in GIVE_UP and rest is False:
            raise PolicyActionError("这项政策已确认（或申请已通过）：放弃将取消尚未拨付的其余资金，且不能撤回。"
                                    "确认放弃请传 give_up_rest=true")
        if m.status in GIVE_UP:
            note = _give_up_rest(m, now, who)
        elif m.status == Match.Status.ELIGIBLE:
            note = "企业放弃"
        else:
            raise PolicyActionError(f"这项政策的状态是“{m.get_status_display()}”，不能放弃")
        given_up = m.status in GIVE_UP
        m.status, m.hold_reason = Match.Status.DECLINED, ""
        m.gave_up_at = now if given_up else None
        m.add_history(history_line(now, who, f"{note}{'：' + reason if reason else ''}"))
        m.save()
        if given_up:
            notices.gave_up(m, now)
    return m


def _give_up_rest(m: Match, now: dt.datetime, who: str) -> str:
    """Cancel the installments of ``m`` (locked) released and not sent; the history's note. A
    skill subsidy's cancelled line lets go of its certificate and person (its milestone still
    names them), so that the once-per-person rule counts only what is paid or on its way."""
    payments = list(Payment.objects.select_for_update(of=("self",)).filter(match=m).select_related("batch")
                    .order_by("seq", "id"))
    sent = next((p for p in payments if p.status == Payment.Status.BATCHED), None)
    if sent is not None:
        raise PolicyActionError(f"第 {sent.seq} 期正在拨付中（批次 {sent.batch.number}），到账或退回后才能放弃其余资金")
    cancelled = [p for p in payments if p.status in (Payment.Status.DUE, Payment.Status.FAILED)]
    for p in cancelled:
        p.status, p.batch, p.certificate, p.person_key = Payment.Status.CANCELLED, None, None, ""
        p.history = [*p.history, history_line(now, who, "企业放弃其余资金，取消拨付")]
    Payment.objects.bulk_update(cancelled, ["status", "batch", "certificate", "person_key", "history"])
    paid = sum((p.amount for p in payments if p.status == Payment.Status.PAID), Decimal(0))
    return (f"企业放弃其余资金（已到账 {paid.normalize():f} 万元不受影响"
            + (f"，取消已核准未拨付的 {len(cancelled)} 笔" if cancelled else "") + "）")


def do_confirm(match: Match, bank_name: str, bank_account: str, account_name: str,
               now: dt.datetime | None = None) -> Match:
    """免申即享: the firm confirms the account the money goes to; the first installment is
    released (or held for review)."""
    now = now or timezone.now()
    bank_name, account, account_name = _account(bank_name, bank_account, account_name)
    with transaction.atomic():
        m = Match.objects.select_for_update().select_related("policy").get(pk=match.pk)
        if m.policy.mode != Policy.Mode.AUTOMATIC:
            raise PolicyActionError("这项政策需要申请，请提交申请材料")
        if m.status not in CONFIRMABLE:
            raise PolicyActionError(f"这项政策的状态是“{m.get_status_display()}”，不能确认")
        back = _taken_back(m)
        first = m.confirmed_at is None
        m.bank_name, m.bank_account, m.account_name = bank_name, account, account_name
        m.confirmed_at = m.confirmed_at or now
        note = ("企业撤回放弃，" if back else "") + ("企业确认收款账户" if first else "企业更改收款账户")
        m.add_history(history_line(now, "企业", f"{note}：{bank_name} {m.masked_account}"))
        # undecided: confirmed for the first time, or again after it lapsed unpaid and came
        # back (its account was confirmed once, nothing was released); the first installment
        # is released once whichever it is
        accepted = m.status in UNDECIDED
        if accepted:
            m.status = Match.Status.CONFIRMED
        m.save()
        if accepted:
            do_release(m, 1, now=now, by="系统")
    return m


def _text(value: str, what: str) -> str:
    """``value`` stripped, or ``PolicyActionError`` naming ``what`` if it holds control characters."""
    return texts.typed(value, what, PolicyActionError)


def _account(bank_name: str, number: str, name: str) -> tuple[str, str, str]:
    """A bank account as the firm typed it, checked: the bank, 8–32 digits, the account's name."""
    bank_name, name = _text(bank_name, "开户银行")[:100], _text(name, "账户名称")[:200]
    number = "".join(_text(number, "银行账号").split())
    if not (8 <= len(number) <= 32 and number.isdigit()):
        raise PolicyActionError("银行账号应为 8 至 32 位数字")
    if not bank_name or not name:
        raise PolicyActionError("请填写开户银行和账户名称")
    return bank_name, number, name


def do_apply(match: Match, statement: str, project: str = "", project_code: str = "",
             files: list[tuple[str, str, bytes]] = (), bank: tuple[str, str, str] | None = None,
             now: dt.datetime | None = None) -> Application:
    """需申请: the firm's application with its statement and attachments. After a withdrawal
    (``do_withdraw``) or a return for what is missing (``do_return``) the new application takes
    the old one's place, its attachments replaced, and the department is told again."""
    now = now or timezone.now()
    statement = _text(statement, "申请说明")
    if len(statement) < 10:
        raise PolicyActionError("请写明申请说明（至少10个字）")
    project, project_code = _text(project, "项目名称")[:200], _text(project_code, "项目代码")[:60]
    if bank:
        bank = _account(*bank)
    with transaction.atomic():
        m = Match.objects.select_for_update().select_related("policy").get(pk=match.pk)
        if m.policy.mode != Policy.Mode.APPLICATION:
            raise PolicyActionError("这项政策免申即享，无需申请，确认收款账户即可")
        if m.status not in UNDECIDED:
            raise PolicyActionError(f"这项政策的状态是“{m.get_status_display()}”，不能再申请")
        back = _taken_back(m)
        if bank:
            m.bank_name, m.bank_account, m.account_name = bank
        app = Application.objects.filter(match=m, status__in=AGAIN).first()
        if app is None:
            app = Application.objects.create(match=m, statement=statement, project=project,
                                             project_code=project_code, submitted_at=now)
        else:  # applying again after a withdrawal
            app.files.all().delete()
            app.statement, app.project, app.project_code, app.submitted_at = statement, project, project_code, now
            app.status, app.reviewed_at, app.reviewed_by = Application.Status.SUBMITTED, None, None
            app.save()
        for name, ctype, data in files:
            ApplicationFile.objects.create(application=app, name=name[:200], content_type=ctype[:100], size=len(data),
                                           sha256=store(data))
        m.status = Match.Status.APPLIED
        m.add_history(history_line(now, "企业", f"{'企业撤回放弃，' if back else ''}提交申请（附件 {len(files)} 个）"))
        m.save()
        notices.to_department(app, now)
    return app


# an application the firm may hand in again, in its place
AGAIN = (Application.Status.WITHDRAWN, Application.Status.RETURNED)


def do_return(application: Application, reason: str, user, now: dt.datetime | None = None) -> Application:
    """退回补正: the department sends an application back for what is missing, named in
    ``reason``; the match is open again for the firm to apply anew (or decline), and the firm
    is told in writing, once per return."""
    now = now or timezone.now()
    reason = texts.written(reason, "退回原因", PolicyActionError, "请写明需要补正的材料或内容")
    with transaction.atomic():
        app = Application.objects.select_for_update().select_related("match__policy", "match__entity").get(
            pk=application.pk)
        if app.status != Application.Status.SUBMITTED:
            raise PolicyActionError("这份申请已经审核或撤回")
        app.status, app.reviewed_at, app.reviewed_by, app.review_reason = Application.Status.RETURNED, now, user, reason
        app.save()
        m = app.match
        m.status = Match.Status.ELIGIBLE
        m.add_history(history_line(now, str(user), f"退回补正：{reason}"))
        m.save()
        notices.returned(app, now)
    return app


def do_withdraw(match: Match, reason: str = "", now: dt.datetime | None = None) -> Application:
    """The firm takes its application back before the department has reviewed it (撤回申请):
    the match is open again (待确认), to apply anew or to decline."""
    now = now or timezone.now()
    reason = _text(reason, "撤回原因")[:200]
    with transaction.atomic():
        m = Match.objects.select_for_update().select_related("policy").get(pk=match.pk)
        app = Application.objects.select_for_update().filter(match=m).first()
        if m.status != Match.Status.APPLIED or app is None or app.status != Application.Status.SUBMITTED:
            raise PolicyActionError("只有已提交、尚未审核的申请可以撤回")
        app.status = Application.Status.WITHDRAWN
        app.save(update_fields=["status"])
        m.status = Match.Status.ELIGIBLE
        m.add_history(history_line(now, "企业", f"撤回申请{'：' + reason if reason else ''}"))
        m.save()
    return app


def do_review(application: Application, approve: bool, reason: str, user, now: dt.datetime | None = None) -> Application:
    """The department's decision, with its reason; approval releases the first installment. The
    firm is told the decision in writing, once (``notices.decision``)."""
    now = now or timezone.now()
    reason = _text(reason, "审核意见")
    if len(reason) < 2:
        raise PolicyActionError("请写明审核意见")
    with transaction.atomic():
        app = Application.objects.select_for_update().select_related("match__policy").get(pk=application.pk)
        if app.status != Application.Status.SUBMITTED:
            raise PolicyActionError("这份申请已经审核")
        app.status = Application.Status.APPROVED if approve else Application.Status.REJECTED
        app.reviewed_at, app.reviewed_by, app.review_reason = now, user, reason
        app.save()
        m = app.match
        m.status = Match.Status.CONFIRMED if approve else Match.Status.REJECTED
        m.confirmed_at = now if approve else None
        m.add_history(history_line(now, str(user), f"{'审核通过' if approve else '审核未通过'}：{reason}"))
        m.save()
        if approve:
            do_release(m, 1, now=now, by=str(user))
        notices.decision(app, now)
    return app


# --- the ledger ------------------------------------------------------------------------------------


def holds(m: Match) -> list[str]:
    """Why a match must be reviewed before it is paid: open block or high findings on the data
    year's report, social-security arrears, or the same project claimed under another policy."""
    from qifu.checks.models import Finding
    from qifu.sources.models import SocialRecord

    out = []
    year = m.policy.year
    n = Finding.objects.filter(entity_id=m.entity_id, report_year=year, status=Finding.Status.OPEN,
                               severity__in=("block", "high")).count()
    if n:
        out.append(f"{year} 年度年报有 {n} 个未处理的严重问题")
    arrears = SocialRecord.objects.filter(entity_id=m.entity_id, year=year, arrears__gt=0).values_list(
        "arrears", flat=True).first()
    if arrears:
        out.append(f"社保欠缴 {Decimal(arrears).normalize()} 万元")
    app = Application.objects.filter(match=m).first()
    if app is not None and app.project_code:
        other = (Application.objects.filter(match__entity_id=m.entity_id, project_code=app.project_code)
                 .exclude(pk=app.pk).exclude(status=Application.Status.REJECTED).select_related("match__policy").first())
        if other:
            out.append(f"项目 {app.project_code} 已在政策 {other.match.policy.code} 申报")
    return out


def installment_amount(m: Match, seq: int, shares: list[str]) -> Decimal:
    """Installment ``seq`` of the match's amount, to one yuan; the last takes the remainder so the
    installments sum to the amount exactly."""
    if seq < len(shares):
        return (m.amount * Decimal(shares[seq - 1])).quantize(Decimal("0.0001"), ROUND_DOWN)
    return m.amount - sum((m.amount * Decimal(s)).quantize(Decimal("0.0001"), ROUND_DOWN) for s in shares[:-1])


def do_release(m: Match, seq: int, now: dt.datetime | None = None, by: str = "系统", override: bool = False) -> Payment | None:
    """Release installment ``seq`` of a match into the ledger (待拨付). Never twice (the ledger
    line is unique), never beyond the policy's budget (checked under a lock on the policy), and
    not while a check before paying fails: the match is then held for review, with the reason.
    ``override``: staff reviewed the hold and release it anyway."""
    now = now or timezone.now()
    with transaction.atomic():
        policy = Policy.objects.select_for_update().get(pk=m.policy_id)
        m = Match.objects.select_for_update().get(pk=m.pk)
        shares = policy.installments or ["1"]
        if not 1 <= seq <= len(shares):
            raise PolicyActionError(f"这项政策共 {len(shares)} 期，没有第 {seq} 期")
        if Payment.objects.filter(match=m, seq=seq).exists():
            return None  # released already: once only
        if seq > 1 and not Payment.objects.filter(match=m, seq=seq - 1).exclude(status=Payment.Status.CANCELLED).exists():
            raise PolicyActionError(f"第 {seq - 1} 期还没有核准")
        if m.status in (Match.Status.LAPSED, Match.Status.REJECTED, Match.Status.ELIGIBLE, Match.Status.APPLIED,
                        Match.Status.DECLINED):
            raise PolicyActionError(f"状态为“{m.get_status_display()}”，不能拨付")
        m.policy = policy
        reasons = [] if override else holds(m)
        if policy.kind == "skills":
            return _release_certificates(m, policy, now, by, reasons)
        amount = installment_amount(m, seq, shares)
        if policy.budget is not None:
            committed = Payment.objects.filter(policy=policy).exclude(status=Payment.Status.CANCELLED).aggregate(
                s=Sum("amount"))["s"] or Decimal(0)
            if committed + amount > policy.budget:
                reasons = [*reasons, f"预算不足：已核准 {committed.normalize():f} 万元，本期 {amount.normalize():f} 万元，"
                           f"预算 {policy.budget.normalize():f} 万元"]
        if reasons:
            m.status, m.hold_reason = Match.Status.HELD, "；".join(reasons)[:500]
            m.add_history(history_line(now, by, f"拨付前核查未通过，待复核：{m.hold_reason}"))
            m.save(update_fields=["status", "hold_reason", "history"])
            return None
        milestone = policies_mod.milestone(policy.mode, policy.milestones, seq)
        payment = Payment.objects.create(match=m, policy=policy, seq=seq, amount=amount, milestone=milestone,
                                         released_at=now, history=[history_line(now, by, f"核准第 {seq} 期（{milestone}）")])
        if m.status == Match.Status.HELD:
            m.status, m.hold_reason = Match.Status.CONFIRMED, ""
            m.add_history(history_line(now, by, "复核通过，恢复拨付"))
            m.save(update_fields=["status", "hold_reason", "history"])
        return payment


def _hold(m: Match, reasons: list[str], now: dt.datetime, by: str) -> None:
    m.status, m.hold_reason = Match.Status.HELD, "；".join(reasons)[:500]
    m.add_history(history_line(now, by, f"拨付前核查未通过，待复核：{m.hold_reason}"))
    m.save(update_fields=["status", "hold_reason", "history"])


def _release_certificates(m: Match, policy: Policy, now: dt.datetime, by: str, reasons: list[str]) -> Payment | None:
    """A skill subsidy: one ledger line per certificate the match covers, each for its level's
    share of the match's amount (the last takes the remainder), never for a person, occupation
    and level already paid (the ledger's ``person_key`` is unique)."""
    from django.db import IntegrityError

    certs = list(SkillCertificate.objects.filter(match=m).order_by("issued_on", "certificate_no"))
    levels = {k: Decimal(v) for k, v in policies_mod.parse(policy.text, policy.code)[0].levels.items()}
    raw = [levels.get(c.level, Decimal(0)) for c in certs]
    total = sum(raw, Decimal(0))
    if not certs or not total:
        raise PolicyActionError("这条匹配没有可补贴的证书")
    amounts = [(r * m.amount / total).quantize(Decimal("0.0001"), ROUND_DOWN) for r in raw[:-1]]
    amounts.append(m.amount - sum(amounts, Decimal(0)))
    if policy.budget is not None:
        committed = Payment.objects.filter(policy=policy).exclude(status=Payment.Status.CANCELLED).aggregate(
            s=Sum("amount"))["s"] or Decimal(0)
        if committed + m.amount > policy.budget:
            reasons = [*reasons, f"预算不足：已核准 {committed.normalize():f} 万元，本次 {m.amount.normalize():f} 万元，"
                                 f"预算 {policy.budget.normalize():f} 万元"]
    if reasons:
        _hold(m, reasons, now, by)
        return None
    first = None
    for i, (c, amount) in enumerate(zip(certs, amounts), 1):
        key = skills.person_key(c.id_number, c.occupation, c.level)
        try:
            with transaction.atomic():
                p = Payment.objects.create(
                    match=m, policy=policy, seq=i, amount=amount, certificate=c, person_key=key, released_at=now,
                    milestone=f"证书 {c.certificate_no}（{c.masked_name}，{c.get_level_display()}）",
                    history=[history_line(now, by, f"核准证书 {c.certificate_no} 的补贴")])
        except IntegrityError:
            continue  # this person was paid for this occupation and level already
        first = first or p
    if m.status == Match.Status.HELD:
        m.status, m.hold_reason = Match.Status.CONFIRMED, ""
        m.save(update_fields=["status", "hold_reason"])
    return first


def do_reach_milestone(m: Match, seq: int, user, now: dt.datetime | None = None) -> Payment | None:
    """A phase accepted, a project verified (后补助): the next installment is released."""
    return do_release(m, seq, now=now, by=str(user))


def do_release_hold(m: Match, user, note: str, now: dt.datetime | None = None) -> Payment | None:
    """Staff reviewed a held match and pay it anyway, with the reason on record."""
    now = now or timezone.now()
    note = texts.written(note, "复核意见", PolicyActionError, "请写明复核意见（至少4个字）")
    with transaction.atomic():
        m = Match.objects.select_for_update().get(pk=m.pk)
        if m.status != Match.Status.HELD:
            raise PolicyActionError("这条记录不在待复核状态")
        m.add_history(history_line(now, str(user), f"复核：{note}"))
        m.status = Match.Status.CONFIRMED
        m.save(update_fields=["history", "status"])
        seq = (Payment.objects.filter(match=m).count() or 0) + 1
        return do_release(m, min(seq, len(m.policy.installments or ["1"])), now=now, by=str(user), override=True)


# --- batches and the treasury ------------------------------------------------------------------------

BATCH_COLUMNS = ["batch_no", "line_no", "payment_id", "policy_id", "policy_title", "uscc", "entity_name", "seq",
                 "amount", "bank_name", "bank_account", "account_name"]


def do_create_batch(user=None, now: dt.datetime | None = None, policy: Policy | None = None) -> PaymentBatch:
    """Every released, unbatched installment of a confirmed match, into a new batch."""
    now = now or timezone.now()
    with transaction.atomic():
        due = (Payment.objects.select_for_update().filter(status=Payment.Status.DUE, batch__isnull=True)
               .exclude(match__status__in=(Match.Status.LAPSED, Match.Status.HELD, Match.Status.REJECTED))
               .exclude(match__bank_account=""))
        if policy is not None:
            due = due.filter(policy=policy)
        ids = list(due.order_by("policy__code", "match__entity_id", "seq").values_list("id", flat=True))
        if not ids:
            raise PolicyActionError("没有待拨付的款项")
        year = timezone.localdate(now).year
        last = (PaymentBatch.objects.select_for_update().filter(number__startswith=f"BF{year}-")
                .order_by("-number").values_list("number", flat=True).first())
        number = f"BF{year}-{int(last.rsplit('-', 1)[1]) + 1 if last else 1:04d}"
        batch = PaymentBatch.objects.create(number=number, created_at=now, created_by=user)
        lines = list(Payment.objects.filter(id__in=ids, status=Payment.Status.DUE, batch__isnull=True)
                     .select_related("match__entity", "policy"))
        for p in lines:
            p.batch, p.status = batch, Payment.Status.BATCHED
            p.payee = {"entity_name": p.match.entity.name, "policy_title": p.policy.title, "bank_name": p.match.bank_name,
                       "bank_account": p.match.bank_account, "account_name": p.match.account_name}
        Payment.objects.bulk_update(lines, ["batch", "status", "payee"], batch_size=1000)
        n = len(lines)
        total = Payment.objects.filter(batch=batch).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        batch.lines, batch.total = n, total
        batch.save(update_fields=["lines", "total"])
    return batch


def batch_frame(batch: PaymentBatch) -> pl.DataFrame:
    """The batch's lines for the treasury, from the stored ledger: the same bytes every time."""
    rows = []
    lines = Payment.objects.filter(batch=batch).select_related("policy").order_by("policy__code", "match__entity_id",
                                                                                  "seq", "id")
    for i, p in enumerate(lines, 1):
        who = p.payee
        rows.append((batch.number, i, p.id, p.policy.code, who["policy_title"], p.match.entity_id, who["entity_name"],
                     p.seq, format(p.amount.quantize(Decimal("0.0001")), "f"), who["bank_name"], who["bank_account"],
                     who["account_name"]))
    return pl.DataFrame(rows, schema={c: (pl.Int64 if c in ("line_no", "payment_id", "seq") else pl.String)
                                      for c in BATCH_COLUMNS}, orient="row")


def export_batch(batch: PaymentBatch, path: Path) -> None:
    from qifu import spreadsheets

    spreadsheets.write_frame(batch_frame(batch), path, sheet=f"拨付批次{batch.number}", stamp=batch.created_at)


@dataclass
class Reconciled:
    paid: int = 0
    failed: int = 0
    unchanged: int = 0


def do_reconcile(batch_number: str, rows: list[dict], now: dt.datetime | None = None) -> Reconciled:
    """The treasury's answer (rows of ``batch_no``, ``payment_id``, ``status`` paid/failed,
    ``paid_on``, ``reason``): each line paid or failed. All-or-nothing: a row that names another
    batch, an unknown line or a bad status stops the whole file. Importing it again changes
    nothing; a failed line can be released into a later batch (``do_retry``)."""
    now = now or timezone.now()
    out = Reconciled()
    errors = []
    with transaction.atomic():
        batch = PaymentBatch.objects.select_for_update().filter(number=batch_number).first()
        if batch is None:
            raise PolicyActionError(f"没有批次 {batch_number}")
        lines = {p.id: p for p in Payment.objects.select_for_update().filter(batch=batch)}
        plan = []
        for i, r in enumerate(rows, 2):
            if str(r.get("batch_no", batch_number)).strip() != batch_number:
                errors.append(f"第 {i} 行 batch_no：{r.get('batch_no')}：不是批次 {batch_number}")
                continue
            try:
                pid = int(str(r.get("payment_id", "")).strip())
            except ValueError:
                errors.append(f"第 {i} 行 payment_id：{r.get('payment_id')!r}：应为数字")
                continue
            if pid not in lines:
                errors.append(f"第 {i} 行 payment_id：{pid}：不在这个批次中")
                continue
            status = {"paid": "paid", "成功": "paid", "已到账": "paid", "failed": "failed", "失败": "failed"}.get(
                str(r.get("status", "")).strip())
            if status is None:
                errors.append(f"第 {i} 行 status：{r.get('status')!r}：应为 paid（成功）或 failed（失败）")
                continue
            paid_on = None
            if status == "paid":
                try:
                    paid_on = dt.date.fromisoformat(str(r.get("paid_on") or timezone.localdate(now).isoformat())[:10])
                except ValueError:
                    errors.append(f"第 {i} 行 paid_on：{r.get('paid_on')!r}：应为 YYYY-MM-DD")
                    continue
            plan.append((lines[pid], status, paid_on, str(r.get("reason") or "")[:300]))
        if errors:
            raise PolicyActionError("回执文件有错误，未作任何更改：\n" + "\n".join(errors))
        for p, status, paid_on, why in plan:
            if p.status == status or (p.status == Payment.Status.DUE and status == "failed"):
                out.unchanged += 1
                continue
            if p.status == Payment.Status.PAID and status == "failed":
                raise PolicyActionError(f"第 {p.id} 笔已记为到账，回执却为失败：请与国库核对后处理")
            p.status, p.paid_on, p.failure = status, paid_on, "" if status == "paid" else why
            p.history = [*p.history, history_line(now, "国库回执", "到账" if status == "paid" else f"拨付失败：{why}")]
            p.save(update_fields=["status", "paid_on", "failure", "history"])
            if status == "paid":
                out.paid += 1
                _settle(p.match_id, now)
            else:
                out.failed += 1
        if not Payment.objects.filter(batch=batch, status=Payment.Status.BATCHED).exists():
            batch.status, batch.reconciled_at = PaymentBatch.Status.RECONCILED, now
            batch.save(update_fields=["status", "reconciled_at"])
    return out


def _settle(match_id: int, now: dt.datetime) -> None:
    m = Match.objects.select_related("policy").get(pk=match_id)
    lines = Payment.objects.filter(match=m).exclude(status=Payment.Status.CANCELLED)
    n = lines.count() if m.policy.kind == "skills" else len(m.policy.installments or ["1"])
    if lines.filter(status=Payment.Status.PAID).count() == n:
        m.status = Match.Status.PAID
        m.add_history(history_line(now, "系统", "各期均已到账"))
        m.save(update_fields=["status", "history"])


def do_retry(payment: Payment, user, now: dt.datetime | None = None) -> Payment:
    """A failed line back to 待拨付 (after the firm corrected its account), for a later batch."""
    now = now or timezone.now()
    with transaction.atomic():
        p = Payment.objects.select_for_update().get(pk=payment.pk)
        if p.status != Payment.Status.FAILED:
            raise PolicyActionError("只有拨付失败的款项可以重新拨付")
        p.status, p.batch = Payment.Status.DUE, None
        p.history = [*p.history, history_line(now, str(user), "重新拨付")]
        p.save(update_fields=["status", "batch", "history"])
    return p


def read_receipt(path: Path) -> list[dict]:
    """The treasury's answer file (CSV in any of the bureau's encodings, or XLSX) as rows."""
    from qifu.engine.errors import FileProblem
    from qifu.engine.reading import read_table

    try:
        table = read_table(path)
    except FileProblem as e:
        raise PolicyActionError(str(e)) from None
    return table.cells.to_dicts()
