"""The rule catalogue: valid files, named after their ids, every example honoured by both the
DuckDB and the Python (single-report) engines. One parametrised case per rule example."""

from __future__ import annotations

from pathlib import Path

import pytest

from qifu.engine.rules import python_engine, record
from qifu.engine.rules.loader import RuleFileError, load_file, load_rules
from qifu.engine.rules.model import Category

RULES = load_rules()
CASES = [(r, i, ex) for r in RULES for i, ex in enumerate(r.examples)]


def test_catalogue_has_at_least_sixty_rules_in_every_category():
    assert len(RULES) >= 60
    assert {r.category for r in RULES} == set(Category)
    assert len({r.id for r in RULES}) == len(RULES)


def test_rule_files_are_named_after_their_ids():
    folder = Path(record.__file__).parent / "catalogue"
    for path in folder.glob("*.yaml"):
        assert load_file(path).id == path.stem


def _record(rule, example) -> dict:
    return {"uscc": "91330282MA2A0001X9", "report_year": 2025, "entity_type": rule.applies_to[0].value, **example.record}


@pytest.mark.parametrize(("rule", "index", "example"), CASES, ids=[f"{r.id}-{i}" for r, i, _ in CASES])
def test_example(rule, index, example):
    rec = _record(rule, example)
    duck = record.check_context([rec], [rule])["rule_key"].to_list()
    row = record.context_table([rec]).to_pylist()[0]
    py = [h["rule_key"] for h in python_engine.evaluate(row, [rule])]
    assert sorted(duck) == sorted(py), "the DuckDB and Python engines disagree"
    assert bool(duck) is example.fires, f"{rule.id} example {index}: expected fires={example.fires}, got {duck}"
    if example.fires and example.field:
        assert f"{rule.id}:{example.field}" in duck


def test_every_rule_has_a_failing_and_a_passing_case():
    for rule in RULES:
        assert any(e.fires for e in rule.examples) and not all(e.fires for e in rule.examples), rule.id


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("id: AR-99\n", "AR-99.yaml", "Field required"),
        ("id: AR-98\ntitle: 测试\n", "AR-97.yaml", "Field required"),
        (": : :\n", "AR-96.yaml", "not valid YAML"),
    ],
)
def test_malformed_rule_files_fail_loudly_naming_the_file(tmp_path, text, name, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as exc:
        load_file(path)
    assert str(exc.value).startswith(name) and message in str(exc.value)


def test_a_rule_file_under_another_name_is_refused(tmp_path):
    source = Path(record.__file__).parent / "catalogue" / "AR-01.yaml"
    (tmp_path / "AR-02.yaml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"^AR-02.yaml: file must be named after its rule id \(AR-01.yaml\)$"):
        load_file(tmp_path / "AR-02.yaml")


def test_a_rule_needs_chinese_text_and_both_kinds_of_example(tmp_path):
    import yaml

    data = yaml.safe_load((Path(record.__file__).parent / "catalogue" / "AR-01.yaml").read_text(encoding="utf-8"))
    data["message"] = "Equity is wrong"
    (tmp_path / "AR-01.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RuleFileError, match="must be written in Chinese"):
        load_file(tmp_path / "AR-01.yaml")
    data["message"] = "权益不对"
    data["examples"] = [e for e in data["examples"] if e["fires"]] * 2
    (tmp_path / "AR-01.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RuleFileError, match="at least one case that fires and one that does not"):
        load_file(tmp_path / "AR-01.yaml")


def test_a_worked_out_quotient_reads_to_four_significant_digits_and_a_filed_value_in_full():
    from qifu.engine.rules.findings import render_one

    by_id = {r.id: r for r in RULES}
    hit = {"uscc": "91330282MA0000000X", "report_year": 2025, "v2": None, "v3": None, "suggestion": None}
    # an average pension base of 2.10230 万元 a year over one insured: 0.175192 a month
    po04 = render_one(hit | {"rule_key": "PO-04", "v1": 2.10230 / 12}, by_id)
    assert "每月 0.1752 万元" in po04["message"]
    # a difference of filed values is not rounded: the filer compares it with what they filed
    ar01 = render_one(hit | {"rule_key": "AR-01", "v1": 0.123456, "total_assets": 1.123456, "total_liabilities": 1.0,
                             "total_equity": 0.2}, by_id)
    assert "应为 0.123456 万元" in ar01["message"] and "资产总额 1.123456 万元" in ar01["message"]
    # a ratio above one to two decimals; the value to file instead (元 taken for 万元) in full
    um01 = render_one(hit | {"rule_key": "UM-01:total_revenue", "v1": 1234567 / 123.4567, "total_revenue": 1234567,
                             "prev_total_revenue": 123.4567, "suggestion": 1234567 / 10000}, by_id)
    assert "约为上年（123.4567 万元）的 10000 倍" in um01["message"] and um01["suggestion"] == "123.4567"
