"""Land-efficiency evaluation (亩均论英雄) in the product: imports with their bad rows and
corrections, `qifu land evaluate` through the contract, the publication window with the firms'
confirmations and objections (requests to the data's owner), re-scoring after a correction,
freezing, years in D and the prices they set, low-efficiency flags and remediation cases, and
the pages each role sees."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import polars as pl
import pytest
from django.test import Client

from qifu.engine.errors import InvalidFile
from qifu.engine.land import consequences as conseq
from qifu.engine.land import evaluate as engine
from qifu.engine.land import method as methods
from qifu.engine.requests.workflow import Move, State
from qifu.imports.actions import import_file
from qifu.land import actions, queries
from qifu.land.models import Evaluation, IndicatorRecord, Parcel, Remediation, Result
from qifu.registry.models import Entity
from qifu.service_requests import actions as requests

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
EXAMPLE = Path(__file__).resolve().parent.parent / "src" / "qifu" / "data" / "land" / "method-example.yaml"
PARCEL_FIELDS = ["parcel_id", "uscc", "role", "area_mu", "town", "land_use", "floor_area_ratio", "idle"]
INDICATOR_FIELDS = ["uscc", "year", "above_threshold", "evaluated_tax", "electricity", "value_added", "main_revenue",
                    "rd_spend", "energy_tce", "emissions", "avg_employees", "veto", "exempt"]


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def method_text(year: int) -> str:
    return re.sub(r"(?m)^year: \d+", f"year: {year}", EXAMPLE.read_text(encoding="utf-8"))


def write_csv(path: Path, fields: list[str], rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})
    return path


@pytest.fixture
def land(checked_county):
    """The checked county with its parcels and two years of indicators imported."""
    folder = checked_county["folder"]
    import_file("parcels", folder / "parcels.csv")
    import_file("indicators", folder / "indicators.csv")
    return checked_county


@pytest.fixture
def firms(checked_county):
    """Twenty active firms of the county, for data written by hand (with fewer than twenty, no
    firm is D: the k-th of n is C while k ≤ ceil(0.95 n))."""
    return list(Entity.objects.filter(status="active", entity_type="enterprise").select_related("town")
                .order_by("uscc")[:20])


TAXES = [100 - 4 * i for i in range(20)]  # 100 … 24 万元 on 10 mu each: A 1–5, B 6–14, C 15–19, D 20


def below_threshold(firms, year: int, taxes: list[float], tmp_path: Path, electricity: float = 100.0) -> None:
    """Each firm owning 10 mu below threshold (one group, below_large), with the given taxes."""
    write_csv(tmp_path / "parcels.csv", PARCEL_FIELDS, [
        {"parcel_id": f"P{i:03d}", "uscc": e.uscc, "role": "owner", "area_mu": 10, "town": e.town.name,
         "floor_area_ratio": 1.5, "idle": "false"} for i, e in enumerate(firms)])
    write_csv(tmp_path / f"indicators-{year}.csv", INDICATOR_FIELDS, [
        {"uscc": e.uscc, "year": year, "above_threshold": "false", "evaluated_tax": t, "electricity": electricity}
        for e, t in zip(firms, taxes)])
    import_file("parcels", tmp_path / "parcels.csv")
    import_file("indicators", tmp_path / f"indicators-{year}.csv")


# --- imports ----------------------------------------------------------------------------------


def test_bad_land_rows_are_named_and_nothing_is_stored(firms, tmp_path):
    e = firms[0]
    write_csv(tmp_path / "parcels.csv", PARCEL_FIELDS, [
        {"parcel_id": "P1", "uscc": e.uscc, "role": "owner", "area_mu": 12.5, "town": e.town.name},
        {"parcel_id": "P2", "uscc": e.uscc, "role": "lease", "area_mu": 3, "town": e.town.name},
        {"parcel_id": "P3", "uscc": e.uscc, "role": "tenant", "area_mu": "三亩", "town": e.town.name},
        {"parcel_id": "P4", "uscc": e.uscc, "role": "tenant", "area_mu": 3, "town": "火星镇"},
        {"parcel_id": "P5", "uscc": "91330282MA2AAAAA1X", "role": "owner", "area_mu": 3, "town": e.town.name},
    ])
    with pytest.raises(InvalidFile) as caught:
        import_file("parcels", tmp_path / "parcels.csv")
    errors = {(err.row, err.field) for err in caught.value.errors}
    assert {(3, "role"), (4, "area_mu"), (5, "town"), (6, "uscc")} <= errors
    assert (2, "role") not in errors and (2, "area_mu") not in errors
    town = next(err for err in caught.value.errors if err.field == "town")
    assert town.value == "火星镇" and "镇街" in town.reason
    assert Parcel.objects.count() == 0

    write_csv(tmp_path / "indicators.csv", INDICATOR_FIELDS, [
        {"uscc": e.uscc, "year": 2025, "above_threshold": "true", "evaluated_tax": 100},
        {"uscc": e.uscc, "year": 2024, "above_threshold": "maybe", "evaluated_tax": 100},
        {"uscc": firms[1].uscc, "year": 2025, "above_threshold": "false"},
    ])
    with pytest.raises(InvalidFile) as caught:
        import_file("indicators", tmp_path / "indicators.csv")
    assert {(3, "above_threshold"), (4, "evaluated_tax")} <= {(err.row, err.field) for err in caught.value.errors}
    assert IndicatorRecord.objects.count() == 0


def test_a_later_import_of_the_same_year_is_a_correction_kept_with_its_history(land):
    rows = pl.read_csv(land["folder"] / "indicators.csv", infer_schema=False)
    year = int(rows["year"].max())
    target = rows.filter(pl.col("year") == str(year))["uscc"][0]
    before = IndicatorRecord.objects.get(entity_id=target, year=year)
    changed = rows.with_columns(pl.when((pl.col("uscc") == target) & (pl.col("year") == str(year)))
                                .then(pl.lit("999.5")).otherwise(pl.col("evaluated_tax")).alias("evaluated_tax"))
    path = land["folder"].parent / "indicators-corrected.csv"
    changed.write_csv(path)
    result = import_file("indicators", path)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, rows.height - 1)
    history = list(IndicatorRecord.objects.filter(entity_id=target, year=year).order_by("revision"))
    assert [(r.revision, r.is_current) for r in history] == [(1, False), (2, True)]
    assert history[0].evaluated_tax == before.evaluated_tax and float(history[1].evaluated_tax) == 999.5


# --- the command, through the contract ---------------------------------------------------------


def qifu(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qifu", *args], env=env, capture_output=True, text=True, timeout=300)


def test_qifu_land_evaluate_writes_the_contract_file_and_stores_the_year(process_env, small_county, tmp_path):
    for kind in ("registry", "parcels", "indicators"):
        done = qifu(process_env, "import", kind, str(small_county / f"{kind}.csv"))
        assert done.returncode == 0, done.stderr
    year = int(pl.read_csv(small_county / "indicators.csv")["year"].max())
    method_file = tmp_path / "method.yaml"
    method_file.write_text(method_text(year), encoding="utf-8")
    out = tmp_path / "out.csv"
    done = qifu(process_env, "land", "evaluate", "--year", str(year), "--method", str(method_file), "--out", str(out))
    assert done.returncode == 0, done.stderr
    m = methods.parse(method_text(year))
    got = pl.read_csv(out, infer_schema=False)
    assert got.columns == engine.columns(m)
    # the same method run on the contract files themselves, without the database
    parcels = pl.read_csv(small_county / "parcels.csv", schema_overrides={"area_mu": pl.Float64}).to_arrow()
    indicators = pl.read_csv(small_county / "indicators.csv", infer_schema_length=None).with_columns(
        pl.col("above_threshold").cast(pl.Boolean), *(pl.col(c).cast(pl.Float64) for c in INDICATOR_FIELDS[3:11]),
        pl.col("veto").cast(pl.String), pl.col("exempt").cast(pl.String))
    expected = pl.from_arrow(engine.run_duckdb(m, indicators.to_arrow(), parcels))
    assert got.height == expected.height == indicators.filter(pl.col("year") == year).height
    assert dict(zip(got["uscc"], got["class"].fill_null(""))) == dict(zip(expected["uscc"], expected["class"].fill_null("")))
    assert set(got["class"].drop_nulls()) <= set("ABCD") and got["class"].drop_nulls().n_unique() == 4

    for args, says in (
        (["--out", str(tmp_path / "out.txt")], "扩展名"),
        (["--year", str(year - 1)], "年度"),
        (["--method", str(tmp_path / "none.yaml")], "找不到方法文件"),
    ):
        argv = {"--year": str(year), "--method": str(method_file), "--out": str(out)}
        argv.update(dict(zip(args[::2], args[1::2])))
        done = qifu(process_env, "land", "evaluate", *[x for kv in argv.items() for x in kv])
        assert done.returncode != 0 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(method_text(year).replace("weight: 30", "weight: 35"), encoding="utf-8")
    done = qifu(process_env, "land", "evaluate", "--year", str(year), "--method", str(bad), "--out", str(out))
    assert done.returncode != 0 and "groups.above" in done.stderr and "100" in done.stderr
    done = qifu(process_env, "land", "prices", "--year", str(year), "--out", str(tmp_path / "prices.csv"))
    assert done.returncode != 0 and "定稿" in done.stderr


# --- the window: confirm, object, re-score, freeze ---------------------------------------------


def evaluate(year: int, when: dt.datetime) -> Evaluation:
    return actions.evaluate_text(year, method_text(year), now=when).evaluation


def test_firms_confirm_or_object_within_the_window_and_staff_freeze_after_it(land):
    year = 2025
    ev = evaluate(year, at(2026, 8, 1, 9))
    with pytest.raises(actions.LandError, match="请先公示"):
        actions.do_freeze(ev, land["users"]["admin"], now=at(2026, 8, 2, 9))
    actions.do_publish(ev, now=at(2026, 8, 3, 9))
    assert ev.window_ends == at(2026, 8, 10, 9)
    results = list(Result.objects.filter(evaluation=ev).exclude(klass="").order_by("entity_id"))
    actions.do_confirm(results[0], now=at(2026, 8, 4, 9))
    with pytest.raises(actions.LandError, match="已经确认"):
        actions.do_confirm(results[0], now=at(2026, 8, 4, 10))
    with pytest.raises(actions.LandError, match="理由"):
        actions.do_object(results[1], "electricity", "", now=at(2026, 8, 4, 9))
    objected = actions.do_object(results[1], "electricity", "用电量含了隔壁厂的分表，请核实", now=at(2026, 8, 4, 9))
    req = objected.objection
    assert (req.category, req.department.name, req.entity_id) == ("land", "供电、供水、燃气、通信单位", results[1].entity_id)
    assert "亩均评价异议" in req.text and req.channel == "portal"
    with pytest.raises(actions.LandError, match="公示期"):
        actions.do_confirm(results[2], now=at(2026, 8, 10, 10))
    with pytest.raises(actions.LandError, match="公示期到"):
        actions.do_freeze(ev, land["users"]["admin"], now=at(2026, 8, 9, 9))
    with pytest.raises(actions.LandError, match="1 件异议未办结"):
        actions.do_freeze(ev, land["users"]["admin"], now=at(2026, 8, 11, 9))
    staff = requests.Actor("供电所")
    for move in (Move.SIGN, Move.ANSWER):
        requests.do_move(req, move, staff, answer="已核实，数据无误", now=at(2026, 8, 5, 9))
    requests.do_rate(req, "satisfied", now=at(2026, 8, 6, 9))
    req.refresh_from_db()
    assert req.status == State.CLOSED
    actions.do_freeze(ev, land["users"]["admin"], now=at(2026, 8, 11, 9))
    ev.refresh_from_db()
    assert ev.status == Evaluation.Status.FINAL and ev.frozen_by == land["users"]["admin"]
    with pytest.raises(actions.LandError, match="定稿"):
        evaluate(year, at(2026, 8, 12, 9))
    # freezing flagged the low-efficiency parcels by the shipped rules
    rules = conseq.load()
    flagged = queries.flagged_parcels(ev, rules).filter(pl.col("flagged"))
    assert Remediation.objects.filter(flagged_year=year).count() == flagged.height > 0
    case = Remediation.objects.filter(flagged_year=year).first()
    row = flagged.filter(pl.col("parcel_id") == case.parcel_id).row(0, named=True)
    assert case.flags == [f.id for f in rules.low_efficiency if row[f"flag_{f.id}"]]
    assert case.tax_per_mu_before == pytest.approx(row["tax_per_mu"])


def test_a_correction_re_scores_the_year_keeping_the_firms_answers(firms, tmp_path):
    below_threshold(firms, 2025, TAXES, tmp_path)
    ev = evaluate(2025, at(2026, 8, 1, 9))
    actions.do_publish(ev, now=at(2026, 8, 1, 10))
    by = {r.entity_id: r for r in Result.objects.filter(evaluation=ev)}
    kept, changed, objected = firms[0].uscc, firms[19].uscc, firms[18].uscc
    actions.do_confirm(by[kept], now=at(2026, 8, 2, 9))
    actions.do_confirm(by[changed], now=at(2026, 8, 2, 9))
    actions.do_object(by[objected], "evaluated_tax", "实缴税收应为 45 万元", now=at(2026, 8, 2, 9))
    assert by[changed].klass == "D"

    write_csv(tmp_path / "corrected.csv", INDICATOR_FIELDS, [
        {"uscc": changed, "year": 2025, "above_threshold": "false", "evaluated_tax": 200, "electricity": 100}])
    result = import_file("indicators", tmp_path / "corrected.csv")
    assert result.updated == 1 and result.notes == ["已按更正后的数据重新评分：2025 年度亩均评价"]
    again = queries.latest(2025)
    assert again.pk != ev.pk and again.status == Evaluation.Status.PUBLISHED and again.window_ends == ev.window_ends
    now = {r.entity_id: r for r in Result.objects.filter(evaluation=again)}
    assert now[changed].klass == "A" and now[changed].confirmed_at is None  # what it confirmed has changed
    assert now[kept].confirmed_at == at(2026, 8, 2, 9)  # its class and score are what it confirmed
    assert now[objected].objection_id is not None
    assert Evaluation.objects.filter(year=2025).count() == 2  # the first run is kept


# --- years in D and what they cost --------------------------------------------------------------


def test_years_in_d_set_the_surcharge_and_low_efficiency_flags(firms, tmp_path):
    """The last firm lowest in 2023 and 2024 (D twice), overtaken in 2025 by the one before it."""
    for year in (2023, 2024, 2025):
        taxes = TAXES if year < 2025 else [*TAXES[:18], 5, TAXES[19]]
        below_threshold(firms, year, taxes, tmp_path)
        ev = evaluate(year, at(year + 1, 8, 1, 9))
        actions.do_publish(ev, now=at(year + 1, 8, 1, 9))
        actions.do_freeze(ev, None, now=at(year + 1, 8, 20, 9))
    prices = {r["uscc"]: r for r in queries.prices(queries.latest(2025), conseq.load()).iter_rows(named=True)}
    last, swapped, first = firms[19].uscc, firms[18].uscc, firms[0].uscc
    assert (prices[last]["class"], prices[last]["consecutive_d"]) == ("C", 0)
    assert (prices[swapped]["class"], prices[swapped]["consecutive_d"]) == ("D", 1)
    assert prices[swapped]["surcharge_per_kwh"] == pytest.approx(0.3)
    assert prices[swapped]["surcharge"] == pytest.approx(100 * 0.3)  # 100 万千瓦时 × 0.3 元 = 30 万元
    assert prices[first]["class"] == "A" and prices[first]["reward"] == pytest.approx(100 * 0.05)
    assert prices[first]["land_tax_relief"] == 1 and prices[firms[10].uscc]["land_tax_relief"] == 0.5
    by_year = {r.evaluation.year: r.klass for r in Result.objects.filter(entity_id=last, evaluation__status="final")
               .select_related("evaluation")}
    assert by_year == {2023: "D", 2024: "D", 2025: "C"}
    # D in 2023 and 2024: flagged at the 2024 freeze for two years running, not again in 2025
    cases = list(Remediation.objects.filter(entity_id=last))
    assert [(c.flagged_year, c.flags) for c in cases] == [(2024, ["d_two_years"])]
    assert cases[0].tax_per_mu_after == pytest.approx(2.4) and cases[0].after_year == 2025
    # the one that fell to 0.5 万元 a mu in 2025: below a fifth of the county's average
    assert Remediation.objects.get(entity_id=swapped).flags == ["low_tax"]


def test_three_years_in_d_cost_more(firms, tmp_path):
    for year in (2023, 2024, 2025):
        below_threshold(firms, year, TAXES, tmp_path)
        ev = evaluate(year, at(year + 1, 8, 1, 9))
        actions.do_publish(ev, now=at(year + 1, 8, 1, 9))
        actions.do_freeze(ev, None, now=at(year + 1, 8, 20, 9))
    row = queries.prices(queries.latest(2025), conseq.load(), [firms[19].uscc]).row(0, named=True)
    assert (row["class"], row["consecutive_d"], row["surcharge_per_kwh"]) == ("D", 3, pytest.approx(0.4))


@pytest.mark.parametrize("change, error", [
    ({"surcharge_per_kwh": "CASE WHEN klass = 'D' THEN 0.3 ELSE 0 END"}, "surcharge_per_kwh：不认识的字段：klass"),
    ({"low_efficiency": [{"id": "x", "label": "x", "when": "idle AND plot_ratio < 1"}]}, "low_efficiency.0（x）：不认识的字段：plot_ratio"),
    ({"low_efficiency": [{"id": "x", "label": "a", "when": "idle"}, {"id": "x", "label": "b", "when": "idle"}]}, "不能重复"),
    ({"price": 1}, "price"),
    ({"reward_per_kwh": "CASE WHEN"}, "reward_per_kwh"),
])
def test_the_consequences_file_is_checked_on_load(change, error):
    import yaml

    data = {**yaml.safe_load(conseq.DEFAULT.read_text(encoding="utf-8")), **change}
    with pytest.raises(conseq.ConsequencesError, match=re.escape(error)):
        conseq.parse(yaml.safe_dump(data, allow_unicode=True), "rules.yaml")


# --- pages -------------------------------------------------------------------------------------


def login(county, name) -> Client:
    client = Client()
    client.force_login(county["users"][name])
    return client


def test_the_overview_lists_and_sheets_follow_the_role_and_township(land):
    ev = evaluate(2025, at(2026, 8, 1, 9))
    own = land["own_town"]
    admin, officer, leader = login(land, "admin"), login(land, "officer"), login(land, "leader")
    html = admin.get("/land/").content.decode()
    assert "2025 年度" in html and 'id="chart-data"' in html and "草稿" in html
    assert admin.get("/land/2025/lists.xlsx").status_code == 302  # a draft is not published
    assert leader.post("/land/2025/act/", {"action": "publish"}).status_code == 403
    assert officer.post("/land/2025/act/", {"action": "publish"}).status_code == 403
    admin.post("/land/2025/act/", {"action": "publish"})
    ev.refresh_from_db()
    assert ev.status == Evaluation.Status.PUBLISHED

    book = openpyxl.load_workbook(io.BytesIO(admin.get("/land/2025/lists.xlsx").content))
    assert book.sheetnames[-4:] == ["规上工业企业", "规下企业（≥3亩）", "规下企业（<3亩）", "租用厂房企业"]
    listed = sum(book[s].max_row - 1 for s in book.sheetnames[-4:])
    assert listed == Result.objects.filter(evaluation=ev).exclude(group="").count()
    first = book["规上工业企业"]
    assert [c.value for c in first[2]][7] == Result.objects.get(
        evaluation=ev, group="above", rank=1).klass

    mine = officer.get("/land/2025/results/?format=xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(mine.content)).worksheets[-1].iter_rows(min_row=2, values_only=True))
    assert rows and {r[2] for r in rows} == {own.name}
    other = Result.objects.filter(evaluation=ev).exclude(entity__town=own).first()
    assert officer.get(f"/land/2025/{other.entity_id}/").status_code == 403
    sheet = admin.get(f"/land/2025/{other.entity_id}/").content.decode()
    assert other.entity.name in sheet and "组内名次" in sheet

    entity_page = admin.get(f"/entities/{other.entity_id}/").content.decode()
    assert 'id="land"' in entity_page and f"/land/2025/{other.entity_id}/" in entity_page
    assert 'id="land-panel"' in admin.get("/").content.decode()


def test_the_portal_sheet_takes_a_confirmation_and_an_objection(land):
    ev = evaluate(2025, at(2026, 8, 1, 9))
    results = list(Result.objects.filter(evaluation=ev, group="above").exclude(klass="").order_by("rank")[:2])
    portal = Client()
    session = portal.session
    session["portal_uscc"] = results[0].entity_id
    session.save()
    assert "还没有已公示" in portal.get("/portal/land/").content.decode()  # a draft is not shown
    actions.do_publish(ev)
    html = portal.get("/portal/land/").content.decode()
    assert f">{results[0].klass}<" in html and "land-confirm" in html and "单位能耗增加值" in html
    portal.post("/portal/land/2025/act/", {"action": "confirm"})
    assert Result.objects.get(pk=results[0].pk).confirmed_at is not None
    assert "您已于" in portal.get("/portal/land/").content.decode()

    session = portal.session
    session["portal_uscc"] = results[1].entity_id
    session.save()
    portal.post("/portal/land/2025/act/", {"action": "object", "item": "evaluated_tax", "text": "税收少算了两个月"})
    objection = Result.objects.get(pk=results[1].pk).objection
    assert objection.department.name == "税务局" and objection.entity_id == results[1].entity_id
    assert objection.number in portal.get("/portal/land/").content.decode()
    # another firm's result cannot be reached: the portal shows only the signed-in firm's
    assert portal.get("/portal/land/2019/").status_code == 404


def test_remediation_cases_are_worked_by_their_township(land):
    ev = evaluate(2025, at(2026, 8, 1, 9))
    actions.do_publish(ev, now=at(2026, 8, 1, 9))
    actions.do_freeze(ev, land["users"]["admin"], now=at(2026, 8, 20, 9))
    own, other = Remediation.objects.order_by("parcel_id")[:2]
    Remediation.objects.filter(pk=own.pk).update(town=land["own_town"])  # one case in the officer's township
    Remediation.objects.filter(pk=other.pk).update(town=land["other_town"])
    own.refresh_from_db()
    officer = login(land, "officer")
    board = officer.get("/land/remediation/").content.decode()
    assert own.parcel_id in board and other.parcel_id not in board
    assert officer.get(f"/land/remediation/{other.id}/").status_code == 404
    officer.post(f"/land/remediation/{own.id}/", {"status": "done", "plan": ""})
    own.refresh_from_db()
    assert own.status == Remediation.Status.FLAGGED  # no plan yet: refused
    officer.post(f"/land/remediation/{own.id}/", {"plan": "upgrade", "status": "ongoing", "milestone": "签订提升改造协议",
                                                  "milestone_due": "2026-12-31", "note": "已约谈"})
    officer.post(f"/land/remediation/{own.id}/", {"done_milestone": "0", "status": "done", "tax_per_mu_after": "12.5"})
    own.refresh_from_db()
    assert (own.plan, own.status, own.tax_per_mu_after) == ("upgrade", "done", 12.5)
    assert own.milestones[0]["label"] == "签订提升改造协议" and own.milestones[0]["done"]
    assert len(own.history) == 3 and "officer" in own.history[-1]["by"]
    assert login(land, "leader").post(f"/land/remediation/{own.id}/", {"note": "x"}).status_code == 403
    totals = {t["code"]: t for t in queries.remediation_by_town(Remediation.objects.all())}
    assert totals[land["own_town"].code]["done"] == pytest.approx(round(own.area_mu, 1))
    book = openpyxl.load_workbook(io.BytesIO(login(land, "admin").get("/land/remediation/?format=xlsx").content))
    assert book.worksheets[-1].max_row - 1 == Remediation.objects.count()
    prices = login(land, "admin").get("/land/2025/prices.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(prices.content)).worksheets[-1]
    assert sheet.cell(1, 1).value == "统一社会信用代码" and sheet.max_row - 1 == Result.objects.filter(
        evaluation=ev).exclude(group="").count()
