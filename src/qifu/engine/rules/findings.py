"""Turn engine hits into findings (contract §2.1): Chinese message, fields, suggestion."""

from __future__ import annotations

import datetime as dt
import math
import re

import polars as pl

from qifu.engine.contract import ANNUAL_REPORT_KINDS, ENTITY_TYPES, OPERATING_STATUSES, REGISTRY_STATUSES
from qifu.engine.rules.model import PLACEHOLDER, Rule

FINDING_SCHEMA = {
    "uscc": pl.Utf8, "report_year": pl.Int64, "rule_id": pl.Utf8, "severity": pl.Utf8, "fields": pl.Utf8,
    "message": pl.Utf8, "suggestion": pl.Utf8, "rule_key": pl.Utf8,
}
LABELS = {f.name: f.label for kind in ANNUAL_REPORT_KINDS for f in kind.fields}
ENUM_LABELS = {
    "entity_type": dict(ENTITY_TYPES), "reg_status": dict(REGISTRY_STATUSES), "operating_status": dict(OPERATING_STATUSES),
}


def fmt(value) -> str:
    """Numbers as a filer writes them: 1250, 125.5, 0.0125, 1.123456 (万元 to the fen: six
    decimals at most, none lost, so that a message's sum adds up); dates ISO; empty as 空."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "空"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float | int):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    return str(value)


def fmt_quotient(value) -> str:
    """A quotient a rule worked out (an average, a ratio) as a reader takes it in: four
    significant digits below one (0.1752, not 0.175192), two decimals above (约为上年的 9998.77
    倍). Filed values, and sums or differences of them, keep every digit (``fmt``)."""
    if isinstance(value, float) and not math.isnan(value) and 0 < abs(value) < 1:
        return fmt(round(value, 3 - math.floor(math.log10(abs(value)))))
    if isinstance(value, float) and not math.isnan(value):
        return fmt(round(value, 2))
    return fmt(value)


def columns_needed(rules: list[Rule] | tuple[Rule, ...]) -> set[str]:
    out = set()
    for rule in rules:
        for name in PLACEHOLDER.findall(rule.message):
            if name in rule.values or name in rule.params or name in ("field_label",):
                continue
            if name in ("x", "prev_x"):
                for v in rule.each or []:
                    out.add(v if name == "x" else f"prev_{v}")
            else:
                out.add(name)
    return out


def render(hits: pl.DataFrame, ctx_rows: pl.DataFrame | None, rules: list[Rule] | tuple[Rule, ...]) -> pl.DataFrame:
    """``ctx_rows`` holds the context columns the messages name, keyed by uscc; None when the
    hits carry them. Rule by rule, each row holds only what that rule's message names."""
    by_id = {r.id: r for r in rules}
    if hits.is_empty():
        return pl.DataFrame(schema=FINDING_SCHEMA)
    joined = hits if ctx_rows is None else hits.join(ctx_rows, on="uscc", how="left")
    joined = joined.with_columns(pl.col("rule_key").str.split(":").list.first().alias("__rule_id"))
    records: list[dict] = []
    base = ["uscc", "report_year", "rule_key", "v1", "v2", "v3", "suggestion"]
    for (rule_id,), group in joined.group_by("__rule_id"):
        named = columns_needed([by_id[rule_id]]) - set(base)
        cols = base + sorted(c for c in named if c in group.columns)
        records += [render_one(row, by_id) for row in group.select(cols).iter_rows(named=True)]
    return pl.DataFrame(records, schema=FINDING_SCHEMA).sort("uscc", "rule_key")


def render_one(row: dict, by_id: dict[str, Rule]) -> dict:
    """One finding from a hit joined with its context row (a dict with the hit's ``rule_key``,
    ``v1``..``v3`` and ``suggestion`` beside the context columns)."""
    key = row["rule_key"]
    rule_id, _, variant = key.partition(":")
    rule = by_id[rule_id]
    variant = variant or None
    values = dict(zip(rule.values, (row["v1"], row["v2"], row["v3"])))

    def lookup(m: re.Match) -> str:
        name = m.group(1)
        if name in values:
            return fmt_quotient(values[name]) if "/" in rule.values[name] else fmt(values[name])
        if name == "field_label":
            return LABELS.get(variant or "", variant or "")
        if name == "x":
            return fmt(row.get(variant))
        if name == "prev_x":
            return fmt(row.get(f"prev_{variant}"))
        if name in rule.params:
            return str(rule.params[name])
        if name in ENUM_LABELS:
            return ENUM_LABELS[name].get(row.get(name), fmt(row.get(name)))
        return fmt(row.get(name))

    suggestion = row["suggestion"]
    return {
        "uscc": row["uscc"],
        "report_year": row["report_year"],
        "rule_id": rule_id,
        "severity": rule.severity.value,
        "fields": ";".join(rule.fields_for(variant)),
        "message": PLACEHOLDER.sub(lookup, rule.message),
        "suggestion": "" if suggestion is None or (isinstance(suggestion, float) and math.isnan(suggestion))
        else fmt(suggestion),
        "rule_key": key,
    }
