"""Compile rule expressions to SQL for DuckDB, Spark and PostgreSQL.

A rule's condition is an SQL expression in a small, portable dialect. It is parsed once into
a sqlglot tree; explicit passes then make every engine-specific decision, and the printer
only writes syntax:

1. ``bind_params``: ``:name`` placeholders become literals from the rule's ``params``.
2. ``bind_variant``: in ``each`` rules, ``x`` / ``prev_x`` become the field and its
   previous-year column.
3. ``expand_macros``: ``matches``, ``blank``, ``near``, ``eps``, ``log10``,
   ``uscc_check_char``, ``org_check_char`` become plain SQL (regex per dialect);
   ``explicit_trim`` names the characters TRIM strips (engines differ on Unicode spaces).
4. ``safe_division``: ``a / b`` becomes ``CASE WHEN b = 0 THEN NULL ELSE a / b END``: DuckDB,
   Spark (ANSI) and PostgreSQL disagree on division by zero (inf / error / error).
5. ``check_portable``: refuses, with a named error, what an engine would run differently:
   ``TRY_CAST`` (PostgreSQL has none; sqlglot prints CAST), regex flags (Spark drops ``i``),
   ``\\d`` (matches full-width digits in some engines), back-references (RE2 has none),
   unknown functions (they would pass through and fail, or differ, at run time).
6. ``three_valued``: the condition becomes ``COALESCE((cond), FALSE)``: a comparison with an
   empty ("not reported") value never fires unless the rule asks ``IS NULL``. The batch plan
   spells the same as ``CASE WHEN cond THEN TRUE ELSE FALSE END`` (see ``_batch_sql``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.simplify import simplify

from qifu.engine.rules.expressions import RuleCompileError, UnsupportedOnEngine, code, read_json, write_json
from qifu.engine.rules.model import EntityType, Rule

DIALECTS = ("duckdb", "spark", "postgres")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# What TRIM strips and blank() ignores, the same on every engine: the space and the full-width
# space a Chinese keyboard types. Left to itself, DuckDB's TRIM also strips other Unicode
# spaces (U+00A0, U+2003) while Spark's and PostgreSQL's strip only U+0020.
SPACES = " \u3000"
MACROS = {"matches", "blank", "near", "eps", "log10", "uscc_check_char", "org_check_char"}

ALLOWED = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.And, exp.Or, exp.Not, exp.Paren,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Add, exp.Sub,
    exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.Abs, exp.Greatest, exp.Least, exp.Coalesce, exp.Case, exp.If,
    exp.Cast, exp.DataType, exp.Length, exp.Trim, exp.Lower, exp.Upper, exp.Substring, exp.StrPosition,
    exp.Floor, exp.Round, exp.Ln, exp.RegexpLike, exp.Tuple, exp.Var, exp.Ceil, exp.Sqrt, exp.Like,
    exp.Year, exp.Month, exp.Day, exp.Date, exp.DateFromParts,
)


def parse(text: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(text, read="duckdb")
    except sqlglot.errors.ParseError as e:
        raise RuleCompileError(f"cannot parse {text!r}: {e}") from None


def bind_params(tree: exp.Expression, params: dict) -> exp.Expression:
    def swap(node):
        if isinstance(node, exp.Placeholder):
            name = node.name
            if name not in params:
                raise RuleCompileError(f"parameter :{name} has no default in params")
            value = params[name]
            return exp.Literal.string(value) if isinstance(value, str) else exp.Literal.number(value)
        return node

    return tree.transform(swap)


def bind_variant(tree: exp.Expression, variant: str | None) -> exp.Expression:
    if variant is None:
        return tree

    def swap(node):
        if isinstance(node, exp.Column) and not node.table:
            if node.name == "x":
                return exp.column(variant)
            if node.name == "prev_x":
                return exp.column(f"prev_{variant}")
            if node.name == "x_name":
                return exp.Literal.string(variant)
        return node

    return tree.transform(swap)


def fold_constants(tree: exp.Expression) -> exp.Expression:
    """Fold what binding made constant (``x_name = 'employees'``) and prune dead branches, so a
    variant never evaluates, or type-checks, the branch meant for another field."""
    return simplify(tree)


def _call_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return None


def _args(node: exp.Expression) -> list[exp.Expression]:
    return list(node.expressions)


def _p(node: exp.Expression) -> exp.Expression:
    """Parenthesise a constructed operand: sqlglot prints trees as built, without precedence."""
    atomic = (exp.Column, exp.Literal, exp.Paren, exp.Func, exp.Null, exp.Boolean, exp.Case)
    return node.copy() if isinstance(node, atomic) else exp.Paren(this=node.copy())


def _eps(a: exp.Expression, b: exp.Expression) -> exp.Expression:
    return exp.Greatest(
        this=exp.Literal.number("0.01"),
        expressions=[exp.Mul(this=exp.Literal.number("0.005"),
                             expression=exp.Greatest(this=exp.Abs(this=_p(a)), expressions=[exp.Abs(this=_p(b))]))],
    )


def _char_value(s: exp.Expression, pos: int, alphabet: str) -> exp.Expression:
    sub = exp.Substring(this=_p(s), start=exp.Literal.number(pos), length=exp.Literal.number(1))
    return exp.Paren(this=exp.Sub(this=exp.StrPosition(this=exp.Literal.string(alphabet), substr=sub),
                                  expression=exp.Literal.number(1)))


def _uscc_check_char(s: exp.Expression) -> exp.Expression:
    total: exp.Expression = exp.Literal.number(0)
    for i, w in enumerate(USCC_WEIGHTS, 1):
        total = exp.Add(this=total, expression=exp.Mul(this=_char_value(s, i, USCC_ALPHABET), expression=exp.Literal.number(w)))
    index = exp.Mod(
        this=exp.Paren(this=exp.Sub(this=exp.Literal.number(31), expression=exp.Mod(this=exp.Paren(this=total), expression=exp.Literal.number(31)))),
        expression=exp.Literal.number(31),
    )
    return exp.Substring(this=exp.Literal.string(USCC_ALPHABET), start=exp.Add(this=exp.Paren(this=index), expression=exp.Literal.number(1)), length=exp.Literal.number(1))


def _org_check_char(s: exp.Expression) -> exp.Expression:
    """GB 11714: c = 11 - (weighted sum mod 11), written 1-9 as the digit, 10 as X, 11 as 0:
    one lookup in "0123456789X0" at position c + 1."""
    total: exp.Expression = exp.Literal.number(0)
    for i, w in enumerate(ORG_WEIGHTS):
        total = exp.Add(this=total, expression=exp.Mul(this=_char_value(s, 9 + i, ORG_ALPHABET), expression=exp.Literal.number(w)))
    c = exp.Sub(this=exp.Literal.number(11), expression=exp.Mod(this=exp.Paren(this=total), expression=exp.Literal.number(11)))
    return exp.Substring(this=exp.Literal.string("0123456789X0"),
                         start=exp.Add(this=exp.Paren(this=c), expression=exp.Literal.number(1)),
                         length=exp.Literal.number(1))


def _matches(node: exp.Expression, dialect: str) -> exp.Expression:
    args = _args(node)
    if len(args) != 2:
        raise UnsupportedOnEngine("matches(text, pattern) takes no flags: Spark silently drops the 'i' flag")
    subject, pattern = args
    if not isinstance(pattern, exp.Literal) or not pattern.is_string:
        raise RuleCompileError("matches() needs a literal pattern")
    pat = pattern.this
    if "\\d" in pat or "\\w" in pat:
        raise UnsupportedOnEngine(r"use [0-9] instead of \d (and spell out \w): engines differ on full-width digits")
    if any(f"\\{i}" in pat for i in range(1, 10)):
        raise UnsupportedOnEngine("back-references are not supported by RE2 (DuckDB)")
    if dialect == "duckdb":
        return exp.Anonymous(this="regexp_full_match", expressions=[subject, exp.Literal.string(pat)])
    return exp.RegexpLike(this=subject, expression=exp.Literal.string(f"^(?:{pat})$"))


def expand_macros(tree: exp.Expression, dialect: str) -> exp.Expression:
    def swap(node):
        name = _call_name(node)
        if name is None:
            if isinstance(node, exp.Log) or (isinstance(node, exp.Func) and node.sql_name() == "LOG10"):
                name = "log10"
            else:
                return node
        if isinstance(node, exp.Log):
            if node.expression is not None and not (isinstance(node.this, exp.Literal) and node.this.this == "10"):
                raise UnsupportedOnEngine("LOG(base, x) differs between engines; use log10(x)")
            args = [node.expression if node.expression is not None else node.this]
        else:
            args = _args(node) if isinstance(node, exp.Anonymous) else [node.this]
        if name == "matches":
            return _matches(node, dialect)
        if name == "blank":
            (s,) = args
            only_spaces = _matches(exp.Anonymous(this="matches", expressions=[_p(s), exp.Literal.string(f"[{SPACES}]*")]),
                                   dialect)
            return exp.Paren(this=exp.or_(exp.Is(this=_p(s), expression=exp.Null()), only_spaces))
        if name == "eps":
            return _eps(*args)
        if name == "near":
            a, b = args
            diff = exp.Abs(this=exp.Sub(this=_p(a), expression=_p(b)))
            return exp.LTE(this=diff, expression=_eps(a, b))
        if name == "log10":
            (x,) = args
            return exp.Case(
                ifs=[exp.If(this=exp.GT(this=_p(x), expression=exp.Literal.number(0)),
                            true=exp.Div(this=exp.Ln(this=_p(x)), expression=exp.Literal.number("2.302585092994046")))],
                default=exp.Null(),
            )
        if name == "uscc_check_char":
            return _uscc_check_char(args[0])
        if name == "org_check_char":
            return _org_check_char(args[0])
        raise UnsupportedOnEngine(f"function {name}() is not part of the rule language (it would pass through to the engine)")

    return tree.transform(swap)


def safe_division(tree: exp.Expression) -> exp.Expression:
    def swap(node):
        if isinstance(node, exp.Div) and not node.meta.get("guarded"):
            if isinstance(node.expression, exp.Literal) and float(node.expression.this) != 0:
                node.meta["guarded"] = True
                return node
            denominator = node.expression
            inner = exp.Div(this=exp.Cast(this=node.this, to=exp.DataType.build("DOUBLE")), expression=_p(denominator))
            inner.meta["guarded"] = True
            return exp.Case(
                ifs=[exp.If(this=exp.EQ(this=_p(denominator), expression=exp.Literal.number(0)), true=exp.Null())],
                default=inner,
            )
        return node

    # A replaced node's subtree is not revisited by one transform; repeat until every
    # division, however deeply nested, is guarded.
    for _ in range(32):
        before = tree.sql()
        tree = tree.transform(swap)
        if tree.sql() == before:
            return tree
    raise RuleCompileError("divisions nested too deeply")


def explicit_trim(tree: exp.Expression) -> exp.Expression:
    """``TRIM(x)`` strips exactly ``SPACES`` on every engine."""

    def swap(node):
        if isinstance(node, exp.Trim) and node.expression is None:
            return exp.Trim(this=node.this, expression=exp.Literal.string(SPACES))
        return node

    return tree.transform(swap)


def null_safe_extrema(tree: exp.Expression) -> exp.Expression:
    """GREATEST/LEAST are NULL when any argument is: the quality rules' reading (a rule comparing
    with the larger of two figures says nothing when one is missing), spelt out for every engine.
    Policies read them as SQL does (``sql_extrema``)."""

    def swap(node):
        if isinstance(node, (exp.Greatest, exp.Least)) and not node.meta.get("null_safe"):
            args = [node.this, *node.expressions]
            guard = exp.or_(*[exp.Is(this=_p(a), expression=exp.Null()) for a in args])
            inner = node.copy()
            inner.meta["null_safe"] = True
            return exp.Case(ifs=[exp.If(this=guard, true=exp.Null())], default=inner)
        return node

    return tree.transform(swap)


def decimal_round(tree: exp.Expression) -> exp.Expression:
    """``ROUND(x, n)`` rounds the decimal the figure was written as, half away from zero, on every
    engine: 2.675 gives 2.68. Left to themselves DuckDB rounds the binary double (2.67), Spark
    the decimal (2.68), and PostgreSQL has no ROUND of a double with places at all."""

    def swap(node):
        if isinstance(node, exp.Round) and not node.meta.get("decimal"):
            inner = node.copy()
            inner.set("this", exp.Cast(this=node.this, to=exp.DataType.build("DECIMAL(38, 10)")))
            inner.meta["decimal"] = True
            return inner
        return node

    return tree.transform(swap)


def sql_extrema(tree: exp.Expression) -> exp.Expression:
    """GREATEST/LEAST as SQL defines them (PostgreSQL, Spark, DuckDB 2): empty arguments are
    skipped, and the result is empty only when every argument is. Spelt out (each argument
    falls back on the others) so that no engine's own reading matters. Policies use this."""

    def swap(node):
        if isinstance(node, (exp.Greatest, exp.Least)) and not node.meta.get("sql_nulls"):
            args = [node.this, *node.expressions]
            if len(args) == 1:
                return node
            filled = [exp.Coalesce(this=_p(a).copy(), expressions=[_p(b).copy() for b in args if b is not a])
                      for a in args]
            out = type(node)(this=filled[0], expressions=filled[1:])
            out.meta["sql_nulls"] = True
            return out
        return node

    return tree.transform(swap)


def check_portable(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.TryCast):
            raise UnsupportedOnEngine("TRY_CAST becomes CAST on PostgreSQL; compare typed columns instead")
        if isinstance(node, exp.Anonymous) and node.name.lower() != "regexp_full_match":
            raise UnsupportedOnEngine(f"function {node.name}() is not part of the rule language")
        if not isinstance(node, ALLOWED) and not isinstance(node, exp.Anonymous):
            raise UnsupportedOnEngine(f"{type(node).__name__} ({node.sql()}) is not part of the rule language")


def three_valued(tree: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=exp.Paren(this=tree), expressions=[exp.false()])


def compile_tree(text: str, rule: Rule, variant: str | None, dialect: str, condition: bool) -> exp.Expression:
    tree = parse(text)
    tree = bind_params(tree, rule.params)
    tree = bind_variant(tree, variant)
    tree = fold_constants(tree)
    tree = expand_macros(tree, dialect)
    tree = explicit_trim(tree)
    tree = safe_division(tree)
    tree = null_safe_extrema(tree)
    check_portable(tree)
    return tree if condition else exp.Cast(this=tree, to=exp.DataType.build("DOUBLE"))


@cache
def _compiled(rule_json: str, variant: str | None, dialect: str) -> CompiledRule:
    rule = Rule.model_validate_json(rule_json)
    test = compile_tree(rule.condition, rule, variant, dialect, condition=True)
    values = {k: compile_tree(v, rule, variant, dialect, condition=False) for k, v in rule.values.items()}
    suggestion = compile_tree(rule.suggestion, rule, variant, dialect, condition=False) if rule.suggestion else None
    return CompiledRule(rule.key(variant), test, values, suggestion, dialect)


class CompiledRule:
    """``condition`` is true or false, never NULL; ``test`` is the same condition in SQL's
    three values, for a plan that says what unknown means itself."""

    def __init__(self, key, test, values, suggestion, dialect):
        self.key = key
        self.test = test
        self.condition = three_valued(test.copy())
        self.values = values
        self.suggestion = suggestion
        self.dialect = dialect

    def sql(self, node: exp.Expression) -> str:
        if self.dialect == "duckdb":
            node = _duckdb_trim_only_when_needed(node.copy())
        return node.sql(dialect=self.dialect)


def _duckdb_trim_only_when_needed(tree: exp.Expression) -> exp.Expression:
    """Printing for DuckDB only: its TRIM with named characters copies every string (CP-07
    took 0.06 s on 242,742 reports), so trim only a text that starts or ends with one of
    ``SPACES``; any other text is its own trim. The Python engine evaluates the tree as
    compiled, before this."""

    def swap(node):
        if isinstance(node, exp.Trim) and node.expression is not None and not node.meta.get("guarded"):
            x = node.this
            edges = [exp.Anonymous(this=f, expressions=[x.copy(), exp.Literal.string(ch)])
                     for f in ("starts_with", "ends_with") for ch in node.expression.this]
            trimmed = node.copy()
            trimmed.meta["guarded"] = True
            return exp.Case(ifs=[exp.If(this=exp.or_(*edges), true=trimmed)], default=x.copy())
        return node

    return tree.transform(swap)


def compile_rule(rule: Rule, variant: str | None, dialect: str) -> CompiledRule:
    if dialect not in DIALECTS:
        raise UnsupportedOnEngine(f"unknown engine dialect {dialect}")
    return _compiled(rule.model_dump_json(), variant, dialect)


def _applies(rule: Rule) -> str:
    """The entity-type test: none beyond a known type when the rule applies to every type."""
    if set(rule.applies_to) == set(EntityType):
        return "entity_type IS NOT NULL"
    return f"entity_type IN ({', '.join(repr(t.value) for t in rule.applies_to)})"


def record_query(rules: list[Rule], dialect: str = "duckdb", source: str = "ctx") -> tuple[str, list[tuple[Rule, str]]]:
    """One projection over a few context rows: a boolean and the values per rule variant.

    Planning one wide SELECT is far cheaper than a UNION of a branch per rule, which is what a
    single report (the web form, the self-check) needs; the conditions are the same trees.
    """
    cols, keys = ["uscc", "report_year"], []
    for rule in rules:
        for variant in rule.variants():
            c = compile_rule(rule, variant, dialect)
            i = len(keys)
            cols.append(f"({_applies(rule)} AND {c.sql(c.condition)}) AS c{i}")
            vals = [c.sql(v) for v in c.values.values()] + ["CAST(NULL AS DOUBLE)"] * (3 - len(c.values))
            cols += [f"{v} AS v{i}_{j + 1}" for j, v in enumerate(vals)]
            cols.append(f"{c.sql(c.suggestion) if c.suggestion is not None else 'CAST(NULL AS DOUBLE)'} AS s{i}")
            keys.append((rule, c.key))
    return f"SELECT {', '.join(cols)} FROM {source}", keys


_plans: dict[str, tuple[str, str]] = {}


def flags_and_values_sql(rules: list[Rule] | tuple[Rule, ...], dialect: str = "duckdb", source: str = "ctx",
                         cache_dir: str | Path | None = None, carry: tuple[str, ...] = ()) -> tuple[str, str]:
    """The batch plan of ``_batch_sql``, kept per process and, with ``cache_dir``, on disk:
    compiling the catalogue takes about half a second, and the plan changes only with the
    rules, this compiler or sqlglot (all three are in the file's name)."""
    digest = hashlib.sha256()
    for part in (code(), dialect, source, ",".join(carry)):
        digest.update(part.encode())
    for rule in rules:
        digest.update(rule.model_dump_json().encode())
    key = f"plan-{dialect}-{digest.hexdigest()[:16]}"
    if key in _plans:
        return _plans[key]
    path = Path(cache_dir) / f"{key}.json" if cache_dir is not None else None
    plan = _read_plan(path) if path is not None else None
    if plan is None:
        plan = _batch_sql(rules, dialect, source, carry)
        if path is not None:
            write_json(path, plan)
    _plans[key] = plan
    return plan


def _read_plan(path: Path) -> tuple[str, str] | None:
    """A kept plan, or None if there is none yet or the file is damaged."""
    try:
        flags, values = read_json(path)
        return flags, values
    except (ValueError, TypeError):
        return None


def _batch_sql(rules: list[Rule] | tuple[Rule, ...], dialect: str, source: str,
               carry: tuple[str, ...] = ()) -> tuple[str, str]:
    """The batch plan for a vectorised engine, as two statements.

    1. ``flags``: one pass over the context, one boolean per rule variant, unpivoted to the
       (uscc, rule_key) pairs that fire (DuckDB ``UNPIVOT``, Spark ``stack``); only true
       counts, so unknown is false, as ``three_valued`` says. A report of no known entity type
       fires no rule, so it is left out once, and each type is tested once per row
       (``__is_<type>``). A condition with AND or OR, or a rule for some types only, is
       ``CASE WHEN [<types> AND] <condition> THEN TRUE ELSE FALSE END``: an engine evaluates a
       WHEN as a filter, so the later terms run only on the rows the earlier ones let
       through; a single comparison is written bare. On 242,742 reports this takes 0.61 s
       where the bare ``<types> AND <condition>`` took 0.80 s.
    2. ``values``: the message values and the suggestion, computed only for the pairs that
       fired, through one CASE per value column keyed by rule variant; and the context
       columns named in ``carry`` (what the messages quote), so that they need no second read.

    The parity tests hold the engines that run it (DuckDB, Spark) and the Python engine to the
    same result.
    """
    flags, keys, v_cases = [], [], [[], [], [], []]
    for rule in rules:
        types = None if set(rule.applies_to) == set(EntityType) else " OR ".join(f"__is_{t.value}" for t in rule.applies_to)
        for variant in rule.variants():
            c = compile_rule(rule, variant, dialect)
            test = c.sql(c.test)
            if types is None and not isinstance(c.test, (exp.And, exp.Or, exp.Paren)):
                flags.append(f"({test}) AS c{len(keys)}")
            else:
                flags.append(f"CASE WHEN {f'({types}) AND ' if types else ''}{test} THEN TRUE ELSE FALSE END AS c{len(keys)}")
            keys.append(c.key)
            exprs = [c.sql(v) for v in c.values.values()] + [None] * (3 - len(c.values))
            exprs.append(c.sql(c.suggestion) if c.suggestion is not None else None)
            for i, e in enumerate(exprs):
                if e is not None:
                    v_cases[i].append(f"WHEN '{c.key}' THEN {e}")
    typed = ", ".join(f"entity_type = '{t.value}' AS __is_{t.value}" for t in EntityType)
    wide = (f"SELECT uscc, report_year, {', '.join(flags)} "
            f"FROM (SELECT *, {typed} FROM {source} WHERE entity_type IS NOT NULL) typed")
    if dialect == "duckdb":
        renames = ", ".join(f"c{i} AS \"{k}\"" for i, k in enumerate(keys))
        flags_sql = (
            f"SELECT uscc, report_year, rule_key FROM (UNPIVOT (SELECT uscc, report_year, {renames} FROM ({wide})) "
            f"ON COLUMNS(* EXCLUDE (uscc, report_year)) INTO NAME rule_key VALUE fired) WHERE fired"
        )
    elif dialect == "spark":
        pairs = ", ".join(f"'{k}', c{i}" for i, k in enumerate(keys))
        flags_sql = (
            f"SELECT uscc, report_year, rule_key FROM (SELECT uscc, report_year, stack({len(keys)}, {pairs}) "
            f"AS (rule_key, fired) FROM ({wide}) w) s WHERE fired"
        )
    else:
        raise UnsupportedOnEngine(f"no batch plan for {dialect}")
    names = ["v1", "v2", "v3", "suggestion"]
    double = "DOUBLE"
    cols = [
        (f"CASE f.rule_key {' '.join(cases)} ELSE CAST(NULL AS {double}) END AS {n}" if cases else f"CAST(NULL AS {double}) AS {n}")
        for n, cases in zip(names, v_cases)
    ]
    cols += [f"c.{name}" for name in carry if name not in ("uscc", "report_year", "rule_key")]
    values_sql = (
        f"SELECT f.uscc, f.report_year, f.rule_key, {', '.join(cols)} FROM flags f JOIN {source} c ON c.uscc = f.uscc"
    )
    return flags_sql, values_sql


def columns_read(rules: list[Rule] | tuple[Rule, ...]) -> frozenset[str]:
    """The context columns the rules' conditions, values and suggestions read, and the entity
    type every batch plan tests: what a context built for these rules alone must hold (the
    messages' own columns are ``findings.columns_needed``)."""
    out = {"uscc", "report_year", "entity_type"}
    for rule in rules:
        for variant in rule.variants():
            c = compile_rule(rule, variant, "duckdb")
            for tree in (c.test, *c.values.values(), c.suggestion):
                if tree is not None:
                    out |= {col.name for col in tree.find_all(exp.Column)}
    return frozenset(out)


def compile_expression_now(text: str, columns: frozenset[str], dialect: str, condition: bool, sql_nulls: bool) -> str:
    """``expressions.compile_expression`` for a text not kept: parsed and compiled now."""
    if dialect not in DIALECTS:
        raise UnsupportedOnEngine(f"unknown engine dialect {dialect}")
    tree = parse(text)
    unknown = sorted({c.name for c in tree.find_all(exp.Column)} - set(columns))
    if unknown:
        raise RuleCompileError(f"不认识的字段：{'、'.join(unknown)}（可用：{'、'.join(sorted(columns))}）")
    if any(True for _ in tree.find_all(exp.Placeholder)):
        raise RuleCompileError("表达式里不能有 :参数")
    tree = fold_constants(tree)
    tree = expand_macros(tree, dialect)
    tree = explicit_trim(tree)
    tree = safe_division(tree)
    tree = sql_extrema(tree) if sql_nulls else null_safe_extrema(tree)
    check_portable(tree)
    tree = decimal_round(tree)
    tree = three_valued(tree) if condition else exp.Cast(this=tree, to=exp.DataType.build("DOUBLE"))
    if dialect == "duckdb":
        tree = _duckdb_trim_only_when_needed(tree)
    return tree.sql(dialect=dialect)


def column_names_now(text: str) -> list[str]:
    """``expressions.column_names`` for a text not kept: parsed now."""
    seen: list[str] = []
    for c in parse(text).find_all(exp.Column):
        if c.name not in seen:
            seen.append(c.name)
    return seen
