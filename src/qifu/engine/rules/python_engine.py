"""The single-report engine: the compiled rule trees evaluated in Python, in microseconds.

An SQL engine plans and vectorises; for one report that overhead dominates (DuckDB takes
about 90 ms to evaluate the whole catalogue on one row). This module walks the same sqlglot
tree that the DuckDB and Spark printers print, after the same passes, and builds a Python
closure per rule with SQL semantics: three-valued logic, NULL propagation, 1-based
substrings, full-match regexes. ``tests/test_rule_parity.py`` checks that it agrees with
DuckDB on every report of a synthetic county.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlglot import exp

from qifu.engine.rules.compiler import UnsupportedOnEngine, compile_rule
from qifu.engine.rules.model import Rule

Row = dict[str, Any]
Fn = Callable[[Row], Any]


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _cmp(op) -> Callable:
    def f(a, b):
        if a is None or b is None:
            return None
        if isinstance(a, dt.date) and isinstance(b, str):
            b = dt.date.fromisoformat(b)
        if isinstance(b, dt.date) and isinstance(a, str):
            a = dt.date.fromisoformat(a)
        return op(a, b)

    return f


_CMPS = {
    exp.EQ: _cmp(lambda a, b: a == b), exp.NEQ: _cmp(lambda a, b: a != b), exp.GT: _cmp(lambda a, b: a > b),
    exp.GTE: _cmp(lambda a, b: a >= b), exp.LT: _cmp(lambda a, b: a < b), exp.LTE: _cmp(lambda a, b: a <= b),
}


def _arith(op) -> Callable:
    def f(a, b):
        if a is None or b is None:
            return None
        return op(_num(a), _num(b))

    return f


_ARITH = {
    exp.Add: _arith(lambda a, b: a + b), exp.Sub: _arith(lambda a, b: a - b),
    exp.Mul: _arith(lambda a, b: a * b), exp.Div: _arith(lambda a, b: a / b),
    exp.Mod: _arith(math.fmod),
}


def _cast(value, to: exp.DataType):
    if value is None:
        return None
    t = to.this
    if t in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL):
        return float(value)
    if t in (exp.DataType.Type.INT, exp.DataType.Type.BIGINT):
        return int(value)
    if t in (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT):
        if isinstance(value, float):
            return repr(value)
        return str(value)
    if t == exp.DataType.Type.DATE:
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    raise UnsupportedOnEngine(f"CAST to {to.sql()} is not supported by the Python engine")


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def build(node: exp.Expression) -> Fn:
    if isinstance(node, exp.Paren):
        return build(node.this)
    if isinstance(node, exp.Column):
        name = node.name
        return lambda r: r.get(name)
    if isinstance(node, exp.Literal):
        value = node.this if node.is_string else float(node.this)
        return lambda r: value
    if isinstance(node, exp.Boolean):
        value = node.this
        return lambda r: value
    if isinstance(node, exp.Null):
        return lambda r: None
    if isinstance(node, exp.And):
        a, b = build(node.this), build(node.expression)

        def f_and(r):
            x = a(r)
            if x is False:
                return False
            y = b(r)
            if y is False:
                return False
            return None if x is None or y is None else True

        return f_and
    if isinstance(node, exp.Or):
        a, b = build(node.this), build(node.expression)

        def f_or(r):
            x = a(r)
            if x is True:
                return True
            y = b(r)
            if y is True:
                return True
            return None if x is None or y is None else False

        return f_or
    if isinstance(node, exp.Not):
        a = build(node.this)
        return lambda r: None if (v := a(r)) is None else not v
    if type(node) in _CMPS:
        op, a, b = _CMPS[type(node)], build(node.this), build(node.expression)
        return lambda r: op(a(r), b(r))
    if type(node) in _ARITH:
        op, a, b = _ARITH[type(node)], build(node.this), build(node.expression)
        return lambda r: op(a(r), b(r))
    if isinstance(node, exp.Neg):
        a = build(node.this)
        return lambda r: None if (v := a(r)) is None else -v
    if isinstance(node, exp.Is):
        a = build(node.this)
        if not isinstance(node.expression, exp.Null):
            raise UnsupportedOnEngine("IS is only supported with NULL")
        return lambda r: a(r) is None
    if isinstance(node, exp.In):
        a = build(node.this)
        items = [build(e) for e in node.expressions]

        def f_in(r):
            v = a(r)
            if v is None:
                return None
            vals = [i(r) for i in items]
            if any(_CMPS[exp.EQ](v, x) for x in vals if x is not None):
                return True
            return None if any(x is None for x in vals) else False

        return f_in
    if isinstance(node, exp.Between):
        a, lo, hi = build(node.this), build(node.args["low"]), build(node.args["high"])
        ge, le = _CMPS[exp.GTE], _CMPS[exp.LTE]

        def f_between(r):
            v = a(r)
            x, y = ge(v, lo(r)), le(v, hi(r))
            if x is False or y is False:
                return False
            return None if x is None or y is None else True

        return f_between
    if isinstance(node, exp.Abs):
        a = build(node.this)
        return lambda r: None if (v := a(r)) is None else abs(v)
    if isinstance(node, (exp.Greatest, exp.Least)):
        args = [build(node.this)] + [build(e) for e in node.expressions]
        pick = max if isinstance(node, exp.Greatest) else min

        def f_ext(r):
            vals = [f(r) for f in args]
            vals = [v for v in vals if v is not None]
            return pick(vals) if vals else None

        return f_ext
    if isinstance(node, exp.Coalesce):
        args = [build(node.this)] + [build(e) for e in node.expressions]

        def f_coalesce(r):
            for f in args:
                v = f(r)
                if v is not None:
                    return v
            return None

        return f_coalesce
    if isinstance(node, exp.Case):
        subject = build(node.this) if node.this is not None else None
        branches = [(build(i.this), build(i.args["true"])) for i in node.args.get("ifs", [])]
        default = build(node.args["default"]) if node.args.get("default") is not None else (lambda r: None)

        def f_case(r):
            s = subject(r) if subject else None
            for cond, val in branches:
                c = cond(r)
                hit = (s is not None and c is not None and _CMPS[exp.EQ](s, c)) if subject else c is True
                if hit:
                    return val(r)
            return default(r)

        return f_case
    if isinstance(node, exp.Cast):
        a, to = build(node.this), node.args["to"]
        return lambda r: _cast(a(r), to)
    if isinstance(node, exp.Length):
        a = build(node.this)
        return lambda r: None if (v := a(r)) is None else len(v)
    if isinstance(node, exp.Trim):
        a = build(node.this)
        chars = node.expression.this if node.expression is not None else " "
        return lambda r: None if (v := a(r)) is None else v.strip(chars)
    if isinstance(node, (exp.Lower, exp.Upper)):
        a = build(node.this)
        up = isinstance(node, exp.Upper)
        return lambda r: None if (v := a(r)) is None else (v.upper() if up else v.lower())
    if isinstance(node, exp.Substring):
        a, start = build(node.this), build(node.args["start"])
        length = build(node.args["length"]) if node.args.get("length") is not None else None

        def f_sub(r):
            v, s = a(r), start(r)
            n = length(r) if length else None
            if v is None or s is None or (length and n is None):
                return None
            i = int(s) - 1
            return v[i:] if n is None else v[i:i + int(n)]

        return f_sub
    if isinstance(node, exp.StrPosition):
        hay, needle = build(node.this), build(node.args["substr"])
        return lambda r: None if (h := hay(r)) is None or (n := needle(r)) is None else h.find(n) + 1
    if isinstance(node, exp.Floor):
        a = build(node.this)
        return lambda r: None if (v := a(r)) is None else float(math.floor(v))
    if isinstance(node, exp.Round):
        a = build(node.this)
        digits = int(node.args["decimals"].this) if node.args.get("decimals") is not None else 0

        def f_round(r):
            v = a(r)
            if v is None:
                return None
            q = 10.0 ** digits
            return math.floor(abs(v) * q + 0.5) / q * (1 if v >= 0 else -1)  # half away from zero, as SQL

        return f_round
    if isinstance(node, exp.Ln):
        a = build(node.this)
        return lambda r: None if (v := a(r)) is None or v <= 0 else math.log(v)
    if isinstance(node, (exp.Year, exp.Month, exp.Day)):
        a = build(node.this)
        part = {exp.Year: "year", exp.Month: "month", exp.Day: "day"}[type(node)]
        return lambda r: None if (v := a(r)) is None else float(getattr(_cast(v, exp.DataType.build("DATE")), part))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "regexp_full_match":
        a, pat = build(node.expressions[0]), node.expressions[1].this
        rx = _regex(pat)
        return lambda r: None if (v := a(r)) is None else rx.fullmatch(v) is not None
    raise UnsupportedOnEngine(f"{type(node).__name__} is not supported by the Python engine")


class CompiledPython:
    def __init__(self, rule: Rule, variant: str | None):
        c = compile_rule(rule, variant, "duckdb")
        self.key = c.key
        self.types = {t.value for t in rule.applies_to}
        self.fields = frozenset(rule.fields_for(variant))
        self.condition = build(c.condition)
        self.values = [build(v) for v in c.values.values()]
        self.suggestion = build(c.suggestion) if c.suggestion is not None else None


_COMPILED: dict[int, tuple[list[CompiledPython], tuple]] = {}
_COMPILING = threading.Lock()  # a server's threads all ask at once on its first requests


@lru_cache(maxsize=64)
def expression(sql: str) -> Fn:
    """One SQL expression (DuckDB dialect) as a Python function of a row, with SQL semantics:
    how the single-report path computes what the batch context computes in SQL."""
    import sqlglot

    return build(sqlglot.parse_one(sql, read="duckdb"))


def compiled(rules) -> list[CompiledPython]:
    key = hash(tuple(id(r) for r in rules))
    if key not in _COMPILED:
        with _COMPILING:
            if key not in _COMPILED:
                _COMPILED[key] = ([CompiledPython(r, v) for r in rules for v in r.variants()], tuple(rules))
    return _COMPILED[key][0]


def _clean(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def evaluate(row: Row, rules, only_fields: set[str] | frozenset[str] | None = None) -> list[dict]:
    """Hits for one context row (the same shape as the batch engines' hits); with
    ``only_fields``, only the rules that concern at least one of those fields."""
    out = []
    for c in compiled(rules):
        if row.get("entity_type") not in c.types:
            continue
        if only_fields is not None and not c.fields & only_fields:
            continue
        if c.condition(row) is True:
            vals = [_clean(f(row)) for f in c.values] + [None] * (3 - len(c.values))
            out.append({"uscc": row.get("uscc"), "report_year": row.get("report_year"), "rule_key": c.key,
                        "v1": vals[0], "v2": vals[1], "v3": vals[2],
                        "suggestion": _clean(c.suggestion(row)) if c.suggestion else None})
    return out
