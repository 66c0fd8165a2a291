"""The compiler's passes, and the silent traps between engines it refuses by name."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from qifu.engine.rules.compiler import RuleCompileError, UnsupportedOnEngine, compile_rule
from qifu.engine.rules.model import Rule


def make_rule(condition: str, **extra) -> Rule:
    return Rule.model_validate(
        {
            "id": "AR-99", "title": "测试规则", "category": "AR", "severity": "medium", "applies_to": ["enterprise"],
            "fields": ["total_assets"], "condition": condition, "message": "测试{total_assets}",
            "examples": [{"fires": True, "record": {}}, {"fires": False, "record": {}}], **extra,
        }
    )


def sql(condition: str, dialect: str, **extra) -> str:
    c = compile_rule(make_rule(condition, **extra), None, dialect)
    return c.sql(c.condition)


@pytest.mark.parametrize(
    ("condition", "error"),
    [
        ("TRY_CAST(phone AS DOUBLE) > 1", "TRY_CAST becomes CAST on PostgreSQL"),
        ("matches(phone, '1[0-9]{10}', 'i')", "Spark silently drops the 'i' flag"),
        (r"matches(phone, '\d{11}')", r"use [0-9] instead of \d"),
        (r"matches(phone, '(1)\1')", "back-references are not supported by RE2"),
        ("regexp_extract(phone, '1') = '1'", "is not part of the rule language"),
        ("levenshtein(phone, 'x') > 1", "is not part of the rule language"),
        ("LOG(2, total_assets) > 1", "LOG(base, x) differs between engines"),
    ],
)
def test_engine_traps_are_refused_with_a_named_error(condition, error):
    with pytest.raises(UnsupportedOnEngine, match=error.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]").replace("\\d", "\\\\d")):
        sql(condition, "spark")


def test_unknown_parameter_is_an_error():
    with pytest.raises(RuleCompileError, match="parameter :k has no default"):
        sql("total_assets > :k", "duckdb")


def test_regex_is_printed_per_dialect_as_a_full_match():
    assert "REGEXP_FULL_MATCH(phone, '1[0-9]{10}')" in sql("matches(phone, '1[0-9]{10}')", "duckdb")
    assert "phone RLIKE '^(?:1[0-9]{10})$'" in sql("matches(phone, '1[0-9]{10}')", "spark")
    assert "phone ~ '^(?:1[0-9]{10})$'" in sql("matches(phone, '1[0-9]{10}')", "postgres")


def test_division_is_guarded_and_null_never_fires():
    text = sql("total_assets / employees > 5", "duckdb")
    assert "CASE WHEN employees = 0 THEN NULL" in text
    con = duckdb.connect()
    for employees, expected in ((0, False), (None, False), (10, True), (100, False)):
        got = con.execute(f"SELECT {text} FROM (SELECT 100.0 AS total_assets, CAST(? AS DOUBLE) AS employees)", [employees]).fetchone()[0]
        assert got is expected


def test_greatest_is_null_when_any_argument_is_null_on_every_engine():
    for dialect in ("duckdb", "spark", "postgres"):
        assert "IS NULL" in sql("total_revenue / GREATEST(employees, 1) > 10", dialect)
    con = duckdb.connect()
    text = sql("total_revenue / GREATEST(employees, 1) > 10", "duckdb")
    assert con.execute(f"SELECT {text} FROM (SELECT 100.0 AS total_revenue, CAST(NULL AS DOUBLE) AS employees)").fetchone()[0] is False


def test_params_and_variants_are_bound_in_the_tree():
    rule = make_rule("x > :limit AND x_name = 'turnover'", each=["total_assets", "turnover"], fields=["x"], params={"limit": 5})
    a = compile_rule(rule, "total_assets", "duckdb")
    b = compile_rule(rule, "turnover", "duckdb")
    assert a.sql(a.condition) == "COALESCE((FALSE), FALSE)"
    assert b.sql(b.condition) == "COALESCE((turnover > 5), FALSE)"


@pytest.mark.django_db
def test_compiled_postgres_sql_runs_on_postgres_when_available():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of CI")
    from qifu.engine.rules.loader import load_rules

    rules = [r for r in load_rules() if r.id in ("FM-01", "AR-01", "UM-01", "ID-02", "ID-05", "LC-07", "PO-05", "CP-07")]
    with connection.cursor() as cur:
        for rule in rules:
            for variant in rule.variants()[:2]:
                c = compile_rule(rule, variant, "postgres")
                columns = "NULL::double precision AS total_assets, NULL::double precision AS total_liabilities, " \
                    "NULL::double precision AS total_equity, '13905741234'::text AS phone, '91350100M000100Y43'::text AS uscc, " \
                    "NULL::double precision AS prev_total_assets, NULL::double precision AS prev_total_revenue, " \
                    "NULL::double precision AS total_revenue, NULL::double precision AS employees, " \
                    "'有限责任公司'::text AS legal_form, DATE '2024-09-01' AS established_on, DATE '2035-01-01' AS sh_last_due_date, " \
                    "DATE '2026-03-01' AS filed_date, NULL::double precision AS peer_n, NULL::double precision AS peer_lrpe_mad, " \
                    "NULL::double precision AS peer_lrpe_median, ' 无 '::text AS main_business_activity"
                extra = ", ".join(f"NULL::double precision AS {n}" for n in ("prev_total_liabilities", "prev_main_business_revenue", "main_business_revenue", "prev_total_tax_paid", "total_tax_paid", "turnover", "prev_turnover", "coop_sales", "prev_coop_sales"))
                cur.execute(f"SELECT {c.sql(c.condition)} FROM (SELECT {columns}, {extra}) AS ctx")
                assert cur.fetchone()[0] in (True, False)


@pytest.mark.parametrize("text, blank", [
    ("", True), ("  ", True), ("\u3000 \u3000", True), (" 无 ", False), ("无\u3000", False), ("\u3000无", False),
    ("无", False), ("\u00a0", False), ("\u2003", False), ("\t", False),
])
def test_blank_and_trim_strip_the_same_spaces_on_every_engine(text, blank):
    """DuckDB's own TRIM strips every Unicode space separator; Spark's, PostgreSQL's and the
    Python engine's strip U+0020 only. The rule language strips the space and the full-width
    space on all of them (on DuckDB only where a text starts or ends with one)."""
    from qifu.engine.rules import python_engine

    for condition, expected in (("blank(main_business_activity)", blank),
                                ("TRIM(main_business_activity) = ''", blank),
                                ("TRIM(main_business_activity) = '无'", text.strip(" \u3000") == "无")):
        rule = make_rule(condition)
        c = compile_rule(rule, None, "duckdb")
        got = duckdb.connect().execute(f"SELECT {c.sql(c.condition)} FROM (SELECT ? AS main_business_activity)",
                                       [text]).fetchone()[0]
        assert got is expected, (condition, text)
        row = {"entity_type": "enterprise", "main_business_activity": text}
        assert bool(python_engine.evaluate(row, [rule])) is expected, (condition, text)
    for dialect in ("spark", "postgres"):
        assert "' \u3000'" in sql("TRIM(main_business_activity) = ''", dialect)


def test_the_batch_plan_is_kept_on_disk_keyed_by_the_rules(tmp_path):
    import json

    from qifu.engine.rules import compiler
    from qifu.engine.rules.loader import load_rules

    rules = list(load_rules())
    compiler._plans.clear()
    plan = compiler.flags_and_values_sql(rules, "duckdb", cache_dir=tmp_path)
    (kept,) = tmp_path.glob("plan-duckdb-*.json")
    assert json.loads(kept.read_text("utf-8")) == list(plan)
    # a new process reads the plan from the file instead of compiling again
    compiler._plans.clear()
    kept.write_text(json.dumps(["SELECT 1", "SELECT 2"]), "utf-8")
    assert compiler.flags_and_values_sql(rules, "duckdb", cache_dir=tmp_path) == ("SELECT 1", "SELECT 2")
    # a changed rule is another plan
    changed = [rules[0].model_copy(update={"params": {**rules[0].params, "extra": 1}}), *rules[1:]]
    compiler.flags_and_values_sql(changed, "duckdb", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("plan-duckdb-*.json"))) == 2
    compiler._plans.clear()


def test_org_check_char_follows_gb_11714_on_duckdb_and_python():
    import random

    from sqlglot import exp

    from qifu.engine.rules import compiler, python_engine

    def reference(code8: str) -> str:
        c = 11 - sum(compiler.ORG_ALPHABET.index(ch) * w for ch, w in zip(code8, compiler.ORG_WEIGHTS)) % 11
        return {10: "X", 11: "0"}.get(c, str(c))

    rng = random.Random(7)
    codes = ["91350100" + "".join(rng.choice(compiler.ORG_ALPHABET) for _ in range(8)) + "00" for _ in range(400)]
    expected = [reference(c[8:16]) for c in codes]
    assert {"X", "0"} <= set(expected)  # both special cases are exercised
    tree = compiler._org_check_char(exp.column("uscc"))
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {tree.sql('duckdb')} FROM (SELECT UNNEST(?) AS uscc, generate_subscripts(?, 1) AS i) ORDER BY i",
                                     [codes, codes]).fetchall()]
    assert got == expected
    f = python_engine.build(tree)
    assert [f({"uscc": c}) for c in codes] == expected


@pytest.fixture
def kept(tmp_path):
    """Expressions kept in ``tmp_path`` for the test, as the app keeps them in the data folder."""
    from qifu.engine.rules import kept as where

    before = where.folder
    where.keep_in(tmp_path)
    forget()
    yield tmp_path
    where.keep_in(before)
    forget()


def forget():
    """What this process compiled and read, forgotten, as in the next process."""
    from qifu.engine.rules import expressions

    expressions._compile_expression.cache_clear()
    expressions.column_names.cache_clear()
    expressions._kept.cache_clear()


def test_a_compiled_expression_is_kept_for_the_next_process(kept, monkeypatch):
    """What compiled is kept on disk and found there after the process's own memory is gone;
    an expression with an error is refused every time and never kept; a damaged file is
    compiled past."""
    from qifu.engine.rules import compiler, expressions

    columns = {"rd_spend", "employees"}
    first = expressions.compile_expression("rd_spend / employees >= 5", columns, condition=True)
    file = kept / f"expressions-{expressions.code()}.json"
    assert list(kept.glob("expressions-*.json")) == [file]
    assert expressions.column_names("rd_spend / employees >= 5 AND rd_spend > 1") == ("rd_spend", "employees")
    forget()

    def refuse(*args):
        raise AssertionError("compiled again")

    monkeypatch.setattr(compiler, "compile_expression_now", refuse)
    monkeypatch.setattr(compiler, "column_names_now", refuse)
    assert expressions.compile_expression("rd_spend / employees >= 5", columns, condition=True) == first
    assert expressions.column_names("rd_spend / employees >= 5 AND rd_spend > 1") == ("rd_spend", "employees")
    # another set of columns or another reading is another expression
    with pytest.raises(AssertionError, match="compiled again"):
        expressions.compile_expression("rd_spend / employees >= 5", columns | {"town"}, condition=True)
    monkeypatch.undo()

    for _ in range(2):
        with pytest.raises(RuleCompileError, match="不认识的字段"):
            expressions.compile_expression("profit > 1", columns)
        expressions._compile_expression.cache_clear()
    assert "profit" not in file.read_text("utf-8")

    file.write_text("{not json", "utf-8")
    forget()
    assert expressions.compile_expression("rd_spend / employees >= 5", columns, condition=True) == first
    assert len(json.loads(file.read_text("utf-8"))) == 1


def test_a_process_that_meets_only_kept_expressions_never_imports_sqlglot(kept):
    """A policy's eligibility, amount and fields compiled in one process are found by the next
    without sqlglot or the compiler (a tenth of a second of every nightly match run each)."""
    from qifu.engine.policies.policy import _columns, parse

    _columns.cache_clear()  # the fields of a text this process met before
    text = ("id: P\ntitle: 测试\nyear: 2025\nmode: automatic\neligible: \"rd_spend >= 100 AND land_class IN ('A')\"\n"
            "amount: \"LEAST(rd_spend * 0.05, 50)\"\n")
    p, _ = parse(text)
    want = (p.eligible_sql(), p.amount_sql(), p.fields, sorted(p.columns))
    probe = (f"import sys\nfrom qifu.engine.rules import kept\nkept.keep_in({str(kept)!r})\n"
             "from qifu.engine.policies.policy import parse\n"
             f"p, _ = parse({text!r})\n"
             "print(repr((p.eligible_sql(), p.amount_sql(), p.fields, sorted(p.columns))))\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlglot' or m.endswith('rules.compiler')))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got, imported = done.stdout.splitlines()
    assert (got, imported) == (repr(want), "[]")
    # nothing kept: the same answer, compiled
    probe = probe.replace(repr(str(kept)), repr(str(kept / "empty")))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    got, imported = done.stdout.splitlines()
    assert got == repr(want) and "sqlglot" in imported
