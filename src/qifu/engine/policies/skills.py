"""Skill subsidies (技能提升补贴): a policy of ``kind: skills`` pays the employer a configured
amount (万元) per vocational-skill certificate its workers obtained in the policy's year, by
level. One person is paid once per occupation and level, whatever the number of certificates
(a re-issued one) and whichever year's policy asks: ``person_key`` names what was paid, and
keys already committed are passed in and left out.

The result is an ``Outcome`` like a profile policy's: one row per employer, with the
certificates it covers in the row's values, and the same budget rule."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import polars as pl

from qifu.engine.contract import SKILL_LEVELS
from qifu.engine.policies.match import SCHEMA, Outcome, budgeted, to_micro
from qifu.engine.policies.policy import Policy

LEVEL_LABELS = dict(SKILL_LEVELS)


def person_key(id_number: str, occupation: str, level: str) -> str:
    return f"{id_number.upper()}|{occupation.strip()}|{level}"


def match(policy: Policy, certificates: list[dict], committed: set[str]) -> Outcome:
    """``certificates``: dicts with certificate_no, id_number, uscc, occupation, level, issued_on."""
    out = Outcome(policy)
    seen = set(committed)
    by_firm: dict[str, list[dict]] = {}
    for c in sorted(certificates, key=lambda c: (c["issued_on"], c["certificate_no"])):
        if c["issued_on"].year != policy.year or c["level"] not in policy.levels:
            continue
        key = person_key(c["id_number"], c["occupation"], c["level"])
        if key in seen:
            continue
        seen.add(key)
        by_firm.setdefault(c["uscc"], []).append({**c, "person_key": key, "amount": policy.levels[c["level"]]})
    rows = []
    for uscc, certs in by_firm.items():
        amount = to_micro(sum((c["amount"] for c in certs), Decimal(0)))
        counts = Counter(c["level"] for c in certs)
        parts = "、".join(f"{LEVEL_LABELS[lv]} {counts[lv]} 人次" for lv in sorted(counts, reverse=True))
        rows.append((uscc, amount, f"{policy.year} 年度职工取得职业技能等级证书 {len(certs)} 人次：{parts}"))
        out.extra[uscc] = {"certificates": certs}
    return budgeted(out, pl.DataFrame(rows, schema=SCHEMA, orient="row"))
