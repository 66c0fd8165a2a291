"""Policies as data (contract v1.1 §1.10, §2.4), without Django: validation that names the
file and the place, every expression feature and its null case over a hand-written profile,
budget scaling and rounding, the reason, and the same answers on DuckDB, PostgreSQL and Spark."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from qifu.engine.policies import match, profile
from qifu.engine.policies.policy import PolicyError, load_folder, parse

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "qifu" / "data" / "policies"
BASE = """id: T-1
title: 测试政策
year: 2025
mode: automatic
eligible: "rd_spend >= 100"
amount: "rd_spend * 0.05"
"""


def policy(eligible: str, amount: str = "1", **extra):
    text = BASE.replace('"rd_spend >= 100"', f'"{eligible}"').replace('"rd_spend * 0.05"', f'"{amount}"')
    text += "".join(f"{k}: {v}\n" for k, v in extra.items())
    return parse(text, "t.yaml")[0]


# A county of six, written by hand: registry, reports, tax, social, indicators, parcels, land.
USCC = [f"91330282MA0000000{i}" for i in range(6)]
SOURCES = {
    "registry": pa.table({
        "uscc": USCC,
        "name": ["甲科技有限公司", "乙制造有限公司", "丙商店", "丁合作社", "戊科技有限公司", "己有限公司"],
        "entity_type": ["enterprise", "enterprise", "individual", "cooperative", "enterprise", "enterprise"],
        "industry_code": ["C3857", "C3411", "F5211", "A0111", None, "I6510"],
        "town": ["浒山街道"] * 6,
        "registered_capital": [500.0, 1000.0, 5.0, 50.0, None, 100.0],
        "established_on": [dt.date(2023, 1, 1), dt.date(2010, 12, 31), dt.date(2025, 6, 1), dt.date(2018, 3, 3),
                           dt.date(2022, 12, 31), dt.date(2015, 5, 5)],
        "status": ["active", "active", "active", "active", "active", "revoked"],
    }),
    "reports": pa.table({
        "uscc": [USCC[0], USCC[1], USCC[2], USCC[3], USCC[4]],
        "report_year": [2025, 2025, 2025, 2025, 2024],
        "filed_at": [dt.datetime(2026, 6, 30, 23, 59), dt.datetime(2026, 7, 1, 0, 0), dt.datetime(2026, 3, 1),
                     dt.datetime(2026, 5, 1), dt.datetime(2025, 5, 1)],
        "employees": [30.0, 200.0, 2.0, 25.0, 10.0],
        "has_website": [True, False, True, None, True],
        "total_tax_paid": [60.0, 300.0, None, 0.0, 5.0],
        "coop_members": [None, None, None, 25.0, None],
        "coop_sales": [None, None, None, 250.0, None],
        "phone": ["13800000000", None, None, None, None],
    }),
    "tax": pa.table({"uscc": [USCC[0], USCC[1], USCC[4]], "year": [2025, 2025, 2025],
                     "declared_sales": [800.0, 5000.0, 120.0], "tax_paid": [55.0, 600.0, 0.0]}),
    "social": pa.table({"uscc": [USCC[0], USCC[1]], "year": [2025, 2025], "insured_count": [28.0, 190.0],
                        "arrears": [0.0, 3.5]}),
    "indicators": pa.table({"uscc": [USCC[0], USCC[1], USCC[4]], "year": [2025, 2025, 2025],
                            "above_threshold": [True, True, False], "evaluated_tax": [50.0, 580.0, 1.0],
                            "rd_spend": [150.0, 2000.0, None], "main_revenue": [3000.0, 40000.0, None]}),
    "parcels": pa.table({"uscc": [USCC[0], USCC[0], USCC[1]], "role": ["owner", "tenant", "owner"],
                         "area_mu": [10.0, 2.5, 40.0]}),
    "land": pa.table({"uscc": [USCC[0], USCC[1]], "group": ["above", "above"], "score": [130.5, 88.0],
                      "class": ["A", "B"]}),
    "findings": pa.table({"uscc": [USCC[1]], "open_findings": pa.array([2], pa.int32())}),
}


def matched(p, sources=SOURCES, year=2025) -> dict[str, Decimal]:
    (o,) = match.run_duckdb([p], year, sources)
    return {u: a for u, a, _, _ in o.rows}


def profile_rows() -> dict[str, dict]:
    import duckdb

    con = duckdb.connect()
    match.register(con, SOURCES)
    rows = con.sql(profile.sql(2025)).to_arrow_table().to_pylist()
    return {r["uscc"]: r for r in rows}


def test_the_profile_joins_every_source_for_the_year():
    p = profile_rows()
    assert len(p) == 6  # one row per registered entity, filed or not
    a, b, e = p[USCC[0]], p[USCC[1]], p[USCC[4]]
    assert (a["industry_section"], a["age_years"], a["land_area_mu"]) == ("C", 2, 12.5)
    assert (b["age_years"], e["age_years"], p[USCC[2]]["age_years"]) == (15, 3, 0)
    assert a["filed_on_time"] is True and b["filed_on_time"] is False  # 30 June is on time, 1 July is not
    assert e["filed_on_time"] is False and e["employees"] is None  # the 2024 report is not the 2025 one
    assert p[USCC[5]]["filed_on_time"] is False  # never filed
    assert (a["report_phone"], a["declared_sales"], b["arrears"], a["rd_spend"]) == ("13800000000", 800.0, 3.5, 150.0)
    assert (a["land_class"], a["land_group"], a["land_score"]) == ("A", "above", 130.5)
    assert (b["open_findings"], a["open_findings"], e["land_class"]) == (2, 0, None)


@pytest.mark.parametrize(("eligible", "expected"), [
    ("above_threshold AND rd_spend >= 100", {0, 1}),
    ("NOT above_threshold", {4}),  # empty is neither true nor false: 2, 3, 5 have no indicators
    ("above_threshold OR entity_type = 'cooperative'", {0, 1, 3}),
    ("land_class IN ('A', 'B')", {0, 1}),
    ("land_class NOT IN ('A')", {1}),
    ("rd_spend BETWEEN 150 AND 2000", {0, 1}),
    ("rd_spend NOT BETWEEN 150 AND 1999", {1}),
    ("rd_spend IS NULL", {2, 3, 4, 5}),
    ("land_class IS NOT NULL", {0, 1}),
    ("name LIKE '%科技%'", {0, 4}),
    ("name NOT LIKE '%有限公司'", {2, 3}),
    ("industry_section = 'C' AND tax_paid > 50", {0, 1}),
    ("tax_paid / declared_sales > 0.05", {0, 1}),  # 0 / 120 is 0; no sales: empty, never true
    ("declared_sales / tax_paid > 0", {0, 1}),  # a zero divisor is empty, not an error
    ("COALESCE(arrears, 0) = 0", {0, 2, 3, 4, 5}),
    ("ABS(0 - registered_capital) >= 500", {0, 1}),
    ("LEAST(employees, 50) = 30", {0}),
    ("GREATEST(insured_count, employees) = 25", {3}),  # an empty argument is skipped, as in SQL
    ("LEAST(insured_count, rd_spend) IS NULL", {2, 3, 4, 5}),  # empty only when every argument is
    ("GREATEST(employees, insured_count) >= 190", {1}),
    ("ROUND(land_score, 0) = 131", {0}),
    ("CASE WHEN entity_type = 'individual' THEN has_website ELSE FALSE END", {2}),
    ("employees + 1 > 25 AND employees - 1 < 199 AND employees * 2 >= 50", {0, 3}),
    ("filed_on_time AND open_findings = 0", {0, 2, 3}),
    ("age_years <= 3", {0, 2, 4}),
    ("established_on < DATE '2011-01-01'", {1}),
    ("status = 'revoked'", {5}),
    ("coop_members >= 20 AND coop_sales >= 100", {3}),
    ("land_area_mu > 12", {0, 1}),
])
def test_each_expression_feature_and_its_null_case(eligible, expected):
    assert set(matched(policy(eligible))) == {USCC[i] for i in expected}


def test_amounts_are_rounded_half_up_to_six_decimals_negative_is_zero_empty_is_left_out():
    o, = match.run_duckdb([policy("rd_spend > 0 OR tax_paid >= 0", "rd_spend * 0.0000033 - 0.0004")], 2025, SOURCES)
    got = {u: a for u, a, _, _ in o.rows}
    assert got == {USCC[0]: Decimal("0.000095"), USCC[1]: Decimal("0.006200")}
    assert o.no_amount == 1  # USCC[4]: eligible by tax_paid, but its rd_spend is empty
    o, = match.run_duckdb([policy("rd_spend > 0", "rd_spend * -1")], 2025, SOURCES)
    assert {a for _, a, _, _ in o.rows} == {Decimal(0)}
    o, = match.run_duckdb([policy("rd_spend > 0", "0.1 + 0.2")], 2025, SOURCES)
    assert {a for _, a, _, _ in o.rows} == {Decimal("0.3")}
    o, = match.run_duckdb([policy("rd_spend > 0", "ROUND(rd_spend * 0 + 2.675, 2)")], 2025, SOURCES)
    assert {a for _, a, _, _ in o.rows} == {Decimal("2.68")}  # the decimal written, half up: not the double's 2.67


def test_over_budget_each_amount_is_scaled_and_rounded_down_to_one_yuan():
    p = policy("entity_type = 'enterprise' AND status = 'active'",
               "CASE WHEN uscc = '91330282MA00000000' THEN 1 WHEN uscc = '91330282MA00000001' THEN 1 ELSE 1 END",
               budget=2)
    o, = match.run_duckdb([p], 2025, SOURCES)
    assert o.scaled and o.total_before_budget == 3
    assert [a for _, a, _, _ in o.rows] == [Decimal("0.6666")] * 3  # 2/3 rounded down, not 0.6667
    assert o.total <= p.budget
    p = policy("rd_spend > 0", "rd_spend", budget=3000)  # 150 + 2000 is within the budget
    assert matched(p) == {USCC[0]: Decimal("150.000000"), USCC[1]: Decimal("2000.000000")}
    p = policy("rd_spend > 0", "rd_spend", budget=1000)
    assert matched(p) == {USCC[0]: Decimal("69.7674"), USCC[1]: Decimal("930.2325")}  # 1000×150/2150 …
    assert sum(matched(p).values()) <= 1000
    assert matched(policy("rd_spend > 0", "rd_spend", budget=0)) == {USCC[0]: 0, USCC[1]: 0}


def test_the_reason_names_the_values_that_qualified_in_chinese():
    p = policy("above_threshold AND rd_spend >= 100 AND land_class IN ('A', 'B') AND entity_type = 'enterprise'")
    (o,) = match.run_duckdb([p], 2025, SOURCES)
    reasons = {u: r for u, _, r, _ in o.rows}
    assert reasons[USCC[0]] == "是否规上工业：是；研发经费支出(万元)：150；亩均评价类别：A；主体类型：企业"
    assert "研发经费支出(万元)：2000" in reasons[USCC[1]]


@pytest.mark.parametrize(("change", "error"), [
    ('eligible: "turnover_x > 1"', "t.yaml：eligible：不认识的字段：turnover_x"),
    ('amount: "rd_spend * :rate"', "t.yaml：amount：表达式里不能有 :参数"),
    ('eligible: "rd_spend > (SELECT 1)"', "t.yaml：eligible："),
    ('eligible: "regexp_replace(name, 1) = 1"', "t.yaml：eligible："),
    ("budget: -5", "t.yaml：budget：预算不能为负数"),
    ("installments: [0.5, 0.6]", "t.yaml：installments：各期比例之和应为 1"),
    ("installments: [0.5, 0]", "t.yaml：installments：第 2 期比例应大于 0"),
    ("mode: sometimes", "t.yaml：mode："),
    ("id: 'bad id'", "t.yaml：id："),
    ("budget: lots", "t.yaml：budget：应为数字"),
])
def test_the_validator_names_the_file_and_the_place(change, error):
    key = change.split(":")[0]
    text = re.sub(rf"(?m)^{key}:.*$", change, BASE) if re.search(rf"(?m)^{key}:", BASE) else BASE + change + "\n"
    with pytest.raises(PolicyError) as e:
        parse(text, "t.yaml")
    assert str(e.value).startswith(error), str(e.value)


def test_a_missing_key_and_an_unknown_key():
    with pytest.raises(PolicyError, match="t.yaml：eligible：必填"):
        parse(BASE.replace('eligible: "rd_spend >= 100"\n', ""), "t.yaml")
    p, warnings = parse(BASE + "notes: 备注\n", "t.yaml")
    assert warnings == ["t.yaml：不认识的键 notes，已忽略"]


def test_a_changed_policy_is_a_new_version():
    a, b = policy("rd_spend >= 100"), policy("rd_spend >= 101")
    assert a.version != b.version and a.version == policy("rd_spend >= 100").version


def test_the_example_policies_load_and_a_folder_refuses_a_repeated_id(tmp_path):
    defs, warnings = load_folder(EXAMPLES)
    assert len(defs) >= 10 and not warnings
    assert {p.mode for p in defs} == {"automatic", "application"}
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(BASE, encoding="utf-8")
    with pytest.raises(PolicyError, match="b.yaml：id T-1 与 a.yaml 重复"):
        load_folder(tmp_path)
    (tmp_path / "b.yaml").write_text(BASE.replace("T-1", "T-2").replace("year: 2025\n", ""), encoding="utf-8")
    defs, _ = load_folder(tmp_path, year=2024)
    assert [p.year for p in defs] == [2025, 2024]  # a policy without a year takes the command's


PARITY = [
    "above_threshold AND rd_spend >= 100 AND land_class IN ('A', 'B')",
    "name LIKE '%科技%' OR COALESCE(arrears, 0) > 1",
    "tax_paid / declared_sales > 0.05 AND NOT (industry_section = 'F')",
    "CASE WHEN entity_type = 'individual' THEN has_website ELSE filed_on_time END",
    "rd_spend BETWEEN 150 AND 2000 OR land_score IS NULL",
    "GREATEST(employees, insured_count) >= 30 AND age_years < 20",
    "filed_at < TIMESTAMP '2026-06-01 00:00:00' AND established_on > DATE '2000-01-01' AND entity_type <> 'x'",
]
AMOUNTS = ["LEAST(rd_spend * 0.05, 50)", "CASE WHEN land_score >= 120 THEN 30 ELSE 20 END",
           "GREATEST(tax_paid * 0.1, registered_capital * 0.01, 1)",
           "COALESCE(insured_count, 0) * 0.05 + ABS(tax_paid - 1) / 3", "ROUND(declared_sales * 0.013, 2)"]


def _duckdb_answers() -> dict:
    out = {}
    for e in PARITY:
        for a in AMOUNTS:
            out[(e, a)] = {u: (x, r) for u, x, r, _ in match.run_duckdb([policy(e, a)], 2025, SOURCES)[0].rows}
    return out


@pytest.mark.database
@pytest.mark.skipif(not os.environ.get("QIFU_DATABASE_URL", "").startswith("postgres"),
                    reason="PostgreSQL parity runs in the PostgreSQL suite")
def test_postgresql_matches_what_duckdb_matches():
    import duckdb
    import psycopg

    con = duckdb.connect()
    match.register(con, SOURCES)
    prof = con.sql(profile.sql(2025)).to_arrow_table()
    cols = ", ".join(f'"{c}" {"double precision" if t == "DOUBLE" else t}' for c, (t, _, _) in profile.COLUMNS.items())
    want = _duckdb_answers()
    with psycopg.connect(os.environ["QIFU_DATABASE_URL"]) as pg:
        pg.execute(f"CREATE TEMP TABLE profile ({cols})")
        names = list(profile.COLUMNS)
        with pg.cursor().copy(f"COPY profile ({', '.join(names)}) FROM STDIN") as cp:
            for row in prof.select(names).to_pylist():
                cp.write_row([row[n] for n in names])
        for (e, a), expected in want.items():
            p = policy(e, a)
            rows = pg.execute(match.policy_sql(p, dialect="postgres")).fetchall()
            got = {r[0]: (match.decimal(r[1]), r[2]) for r in rows if r[1] is not None}
            assert got == expected, (e, a)  # the same firms, amounts and reasons, character for character


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (installed by .ci/run)")
def test_spark_matches_what_duckdb_matches(tmp_path):
    import pyarrow.parquet as pq

    from qifu.engine.policies.spark import run_local

    paths = {}
    for name, table in SOURCES.items():
        paths[name] = str(tmp_path / f"{name}.parquet")
        pq.write_table(table, paths[name])
    # each condition once, each amount at least once (a Spark job per policy: the product would
    # take a minute and a half)
    pairs = [(e, AMOUNTS[i % len(AMOUNTS)]) for i, e in enumerate(PARITY)]
    want = {k: v for k, v in _duckdb_answers().items() if k in pairs}
    policies = [policy(e, a) for e, a in want]
    got = run_local(policies, 2025, paths)
    for (key, expected), o in zip(want.items(), got):
        assert {u: (x, r) for u, x, r, _ in o.rows} == expected, key


SKILLS = """id: T-SKILL
title: 技能提升补贴
year: 2025
mode: automatic
kind: skills
levels: {"5": 0.1, "3": 0.2}
"""


def cert(no, idn, uscc, level, day, occupation="电工"):
    return {"certificate_no": no, "id_number": idn, "uscc": uscc, "occupation": occupation, "level": level,
            "issued_on": dt.date(2025, 1, 1) + dt.timedelta(days=day)}


def test_skill_subsidies_pay_the_employer_once_per_person_occupation_and_level():
    from qifu.engine.policies import skills

    p = parse(SKILLS, "s.yaml")[0]
    certs = [
        cert("C1", "33028219900101123X", USCC[0], "5", 10),
        cert("C2", "33028219900101123X", USCC[0], "5", 40),  # re-issued: the same person, occupation and level
        cert("C3", "33028219900101123X", USCC[0], "3", 50),  # a higher level: paid
        cert("C4", "330282199202021234", USCC[1], "5", 5, "焊工"),
        cert("C5", "330282199303031235", USCC[1], "4", 5),  # a level the policy does not pay
        {**cert("C6", "330282199404041236", USCC[1], "5", 0), "issued_on": dt.date(2024, 12, 31)},  # another year
        cert("C7", "330282199505051237", USCC[1], "3", 9),  # paid already under another year's policy
    ]
    o = skills.match(p, certs, committed={skills.person_key("330282199505051237", "电工", "3")})
    got = {u: (a, [c["certificate_no"] for c in v["certificates"]]) for u, a, _, v in o.rows}
    assert got == {USCC[0]: (Decimal("0.3"), ["C1", "C3"]), USCC[1]: (Decimal("0.1"), ["C4"])}
    assert o.rows[0][2] == "2025 年度职工取得职业技能等级证书 2 人次：五级/初级工 1 人次、三级/高级工 1 人次"
    p = parse(SKILLS + "budget: 0.2\n", "s.yaml")[0]
    o = skills.match(p, certs, committed=set())
    assert o.scaled and sum(a for _, a, _, _ in o.rows) <= Decimal("0.2")
    with pytest.raises(PolicyError, match="levels：不认识的技能等级 9"):
        parse(SKILLS.replace('"3": 0.2', '"9": 0.2'), "s.yaml")
    with pytest.raises(PolicyError, match="不设分期"):
        parse(SKILLS + "installments: [0.5, 0.5]\n", "s.yaml")


@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime (installed by .ci/run)")
def test_spark_writes_the_matches_from_the_executors_with_the_budget_rule(tmp_path, monkeypatch):
    import pyarrow.parquet as pq
    from pyspark.sql import DataFrame

    from qifu.engine.policies.spark import write
    from qifu.engine.rules.spark_engine import session

    paths = {}
    for name, table in SOURCES.items():
        paths[name] = str(tmp_path / f"{name}.parquet")
        pq.write_table(table, paths[name])
    second = BASE.replace("T-1", "T-2").replace('"rd_spend >= 100"', '"entity_type = \'enterprise\'"')
    policies = [policy("rd_spend > 0", "rd_spend", budget=1000), parse(second.replace('"rd_spend * 0.05"', '"2.5"'))[0]]

    def refuse(self, *args, **kwargs):
        raise AssertionError("the matches must not pass through the driver")

    monkeypatch.setattr(DataFrame, "collect", refuse)
    monkeypatch.setattr(DataFrame, "toArrow", refuse)
    totals = write(session(), policies, 2025, paths, str(tmp_path / "out"))
    monkeypatch.undo()
    got = pq.read_table(tmp_path / "out").to_pylist()
    want = {(o.policy.id, u): (a, r) for o in match.run_duckdb(policies, 2025, SOURCES) for u, a, r, _ in o.rows}
    assert {(str(g["policy_id"]), g["uscc"]): (g["amount"], g["reason"]) for g in got} == want
    assert totals["T-1"]["scaled"] and totals["T-1"]["before_budget"] == Decimal("2150")
