"""Reading the land evaluation: a year's evaluation, a firm's classes over the years, the
distribution by group and township, the published lists, the firms' rows that the
consequences (prices, relief, low-efficiency flags) are computed over."""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import duckdb
import polars as pl
from django.db.models import Count, Max, Q, QuerySet, Sum

from qifu.engine.land import consequences as conseq
from qifu.engine.land import method as methods
from qifu.engine.land.method import CLASSES, GROUP_LABELS
from qifu.land.models import Evaluation, IndicatorRecord, Parcel, Remediation, Result
from qifu.registry.models import Entity

NO_CLASS = "不参评"


def inputs_sql(year: int, pg: bool) -> dict[str, str]:
    """The land engine's inputs as SQL of the database in use: the current indicators of
    ``year`` (money as floating point, the flag as a number) and every parcel."""
    real = "double precision" if pg else "REAL"
    money = ", ".join(f"CAST({c} AS {real}) AS {c}" for c in (
        "evaluated_tax", "electricity", "value_added", "main_revenue", "rd_spend", "energy_tce", "emissions"))
    return {
        "indicators": f"""SELECT uscc, year, CAST(above_threshold AS INTEGER) AS above_threshold, {money},
                          avg_employees, veto, exempt FROM land_indicatorrecord WHERE year = {int(year)} AND is_current""",
        "parcels": f"SELECT parcel_id, uscc, role, CAST(area_mu AS {real}) AS area_mu FROM land_parcel",
    }


def latest(year: int) -> Evaluation | None:
    """The year's evaluation: the latest run (a frozen one is always the latest: nothing runs after)."""
    return Evaluation.objects.filter(year=year).select_related("method").order_by("-created_at", "-id").first()


def latest_public(year: int) -> Evaluation | None:
    """What the firms see: the latest evaluation of the year that has been published."""
    return (Evaluation.objects.filter(year=year).exclude(status=Evaluation.Status.DRAFT)
            .select_related("method").order_by("-created_at", "-id").first())


def years() -> list[int]:
    return list(Evaluation.objects.values_list("year", flat=True).distinct().order_by("-year"))


def _latest_ids(public: bool = False) -> QuerySet:
    qs = Evaluation.objects.all()
    if public:
        qs = qs.exclude(status=Evaluation.Status.DRAFT)
    return qs.values("year").annotate(last=Max("id")).values("last")


def classes_by_year(usccs: list[str] | None = None, public: bool = False) -> dict[str, dict[int, Result]]:
    """{uscc: {year: its result in that year's evaluation}}."""
    qs = Result.objects.filter(evaluation_id__in=_latest_ids(public)).select_related("evaluation")
    if usccs is not None:
        qs = qs.filter(entity_id__in=usccs)
    out: dict[str, dict[int, Result]] = defaultdict(dict)
    for r in qs:
        out[r.entity_id][r.evaluation.year] = r
    return out


def group_label(group: str, large_mu=3) -> str:
    return GROUP_LABELS.get(group, group or "未分组").format(large=f"{float(large_mu):g}")


def class_label(result: Result) -> str:
    return result.klass or (NO_CLASS if result.group else "未评价")


def method_of(evaluation: Evaluation):
    """The evaluation's method, parsed (a stored method was valid when it ran)."""
    return _method(evaluation.method.version, evaluation.method.text)


@cache
def _method(version: str, text: str):
    return methods.parse(text, f"方法 {version}")


def distribution(evaluation: Evaluation, results: QuerySet) -> dict:
    """Counts by group × class and township × class, for the overview's charts."""
    rows = (results.values("group", "klass", "entity__town__name", "entity__town__code")
            .annotate(n=Count("id"), mu=Sum("area_mu")).order_by())
    by_group: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_town: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    area: dict[str, float] = defaultdict(float)
    for r in rows:
        k = r["klass"] or (NO_CLASS if r["group"] else "未评价")
        by_group[r["group"] or ""][k] += r["n"]
        by_town[(r["entity__town__code"], r["entity__town__name"])][k] += r["n"]
        totals[k] += r["n"]
        area[k] += r["mu"] or 0
    keys = [k for k in (*CLASSES, NO_CLASS, "未评价") if totals.get(k)]
    large = method_of(evaluation).large_mu
    groups = [g for g in ("above", "below_large", "below_small", "tenant", "") if g in by_group]

    def row(**fields):
        counts = fields.pop("counts")
        return {**fields, **{k: counts.get(k, 0) for k in keys}, "cells": [counts.get(k, 0) for k in keys]}

    return {
        "keys": keys, "totals": dict(totals), "area": dict(area),
        "tiles": [(k, totals[k]) for k in keys],
        "groups": [row(group=g, label=group_label(g, large) if g else "未评价", counts=by_group[g]) for g in groups],
        "towns": [row(code=c, name=n, counts=by_town[(c, n)]) for c, n in sorted(by_town)],
    }


def chart(rows: list[dict], label_key: str, keys: list[str]) -> dict:
    """A stacked bar chart's data: one series per class."""
    return {"labels": [r[label_key] for r in rows], "stacked": True,
            "series": [{"label": k, "values": [r.get(k, 0) for r in rows]} for k in keys]}


def firms(evaluation: Evaluation, usccs: list[str] | None = None) -> pl.DataFrame:
    """One row per firm of the evaluation with what the consequences read (``conseq.FIRM``)."""
    results = Result.objects.filter(evaluation=evaluation)
    if usccs is not None:
        results = results.filter(entity_id__in=usccs)
    rows = list(results.values_list("entity_id", "group", "area_mu", "score", "rank", "klass", "note"))
    frame = pl.DataFrame(rows, schema={"uscc": pl.String, "group": pl.String, "area_mu": pl.Float64,
                                        "score": pl.Float64, "rank": pl.Int64, "class": pl.String, "note": pl.String},
                         orient="row")
    ind = IndicatorRecord.objects.filter(year=evaluation.year, is_current=True)
    if usccs is not None:
        ind = ind.filter(entity_id__in=usccs)
    data = pl.DataFrame(list(ind.values_list("entity_id", "above_threshold", "evaluated_tax", "electricity")),
                        schema={"uscc": pl.String, "above_threshold": pl.Boolean, "evaluated_tax": pl.Float64,
                                "electricity": pl.Float64}, orient="row")
    history = classes_by_year(usccs)
    streak = pl.DataFrame({"uscc": list(history), "consecutive_d": [
        conseq.consecutive_d({y: r.klass for y, r in h.items() if y < evaluation.year}, evaluation.year - 1)
        for h in history.values()]}, schema={"uscc": pl.String, "consecutive_d": pl.Int64})
    frame = (frame.join(data, on="uscc", how="left").join(streak, on="uscc", how="left")
             .with_columns(
                 # this year's class counts, whatever the stored history says of it
                 pl.when(pl.col("class") == "D").then(pl.col("consecutive_d").fill_null(0) + 1).otherwise(0)
                 .alias("consecutive_d"),
                 pl.when(pl.col("class").fill_null("") != "").then(pl.col("class"))
                 .when(pl.col("group").fill_null("") != "").then(pl.lit("B")).otherwise(None).alias("managed_class"),
                 pl.col("class").replace("", None),
                 pl.when(pl.col("area_mu") > 0).then(pl.col("evaluated_tax") / pl.col("area_mu")).alias("tax_per_mu"),
             ))
    return frame


PRICE_COLUMNS = ("uscc", "name", "town", "class", "managed_class", "consecutive_d", "electricity", "surcharge_per_kwh",
                 "surcharge", "reward_per_kwh", "reward", "land_tax_relief")


def prices(evaluation: Evaluation, rules: conseq.Consequences, usccs: list[str] | None = None) -> pl.DataFrame:
    """Per classed firm (or managed as B): the class, the years in D, the surcharge and reward
    per kWh and in 万元, the land-use tax relief: the file for the power company and the tax
    bureau."""
    frame = firms(evaluation, usccs)
    con = duckdb.connect()
    try:
        con.register("firms", frame.to_arrow())
        table = pl.from_arrow(con.sql(rules.firm_sql("firms")).to_arrow_table())
    finally:
        con.close()
    table = table.filter(pl.col("managed_class").is_not_null())
    known = dict(Entity.objects.filter(uscc__in=table["uscc"].to_list()).values_list("uscc", "name"))
    towns = dict(Entity.objects.filter(uscc__in=table["uscc"].to_list()).values_list("uscc", "town__name"))
    return table.with_columns(
        pl.col("uscc").replace_strict(known, default="").alias("name"),
        pl.col("uscc").replace_strict(towns, default="").alias("town"),
    ).select(PRICE_COLUMNS).sort("uscc")


def flagged_parcels(evaluation: Evaluation, rules: conseq.Consequences) -> pl.DataFrame:
    """Every parcel of the year's evaluated firms with the rules that flag it."""
    frame = firms(evaluation)
    parcels = pl.DataFrame(list(Parcel.objects.values_list("parcel_id", "entity_id", "role", "area_mu", "town_id",
                                                           "land_use", "floor_area_ratio", "idle")),
                           schema={"parcel_id": pl.String, "uscc": pl.String, "role": pl.String,
                                   "parcel_area_mu": pl.Float64, "town": pl.String, "land_use": pl.String,
                                   "floor_area_ratio": pl.Float64, "idle": pl.Boolean}, orient="row")
    evaluated = frame.filter(pl.col("class").is_not_null() & (pl.col("area_mu") > 0))
    area = evaluated["area_mu"].sum()
    county = float(evaluated["evaluated_tax"].fill_null(0).sum() / area) if area else None
    joined = parcels.join(frame, on="uscc", how="inner").with_columns(pl.lit(county, pl.Float64).alias("county_tax_per_mu"))
    con = duckdb.connect()
    try:
        con.register("parcels", joined.to_arrow())
        return pl.from_arrow(con.sql(rules.parcel_sql("parcels")).to_arrow_table())
    finally:
        con.close()


def remediation_by_town(cases: QuerySet) -> list[dict]:
    """Flagged and remediated area (mu) by township, for the board and the dashboard."""
    rows = (cases.values("town__code", "town__name")
            .annotate(flagged=Sum("area_mu"), done=Sum("area_mu", filter=Q(status=Remediation.Status.DONE)),
                      cases=Count("id"))
            .order_by("town__code"))
    return [{"code": r["town__code"], "name": r["town__name"], "flagged": round(r["flagged"] or 0, 1),
             "done": round(r["done"] or 0, 1), "cases": r["cases"]} for r in rows]


UNITS = {"tax_per_mu": "万元/亩", "value_added_per_mu": "万元/亩", "value_added_per_energy": "万元/吨标准煤",
         "value_added_per_emission": "万元/吨", "labour_productivity": "万元/人", "rd_share": "%",
         "tax_per_kwh": "元/千瓦时"}
FORMULAS = {"tax_per_mu": "评价税收 ÷ 用地面积", "value_added_per_mu": "工业增加值 ÷ 用地面积",
            "value_added_per_energy": "工业增加值 ÷ 综合能耗", "value_added_per_emission": "工业增加值 ÷ 排放量",
            "labour_productivity": "工业增加值 ÷ 年平均职工人数", "rd_share": "研发经费 ÷ 主营业务收入 × 100",
            "tax_per_kwh": "评价税收 ÷ 用电量"}


def sheet(result: Result) -> dict:
    """A firm's sheet (一企一单): its data, each indicator's value, benchmark, weight and points,
    its score, rank among the ranked firms of its group, and class. Values by the Python sheet
    (engine.land.sheet), points as stored by the evaluation (the two agree: tests hold them)."""
    from qifu.engine.land import sheet as engine_sheet

    evaluation = result.evaluation
    m = method_of(evaluation)
    record = IndicatorRecord.objects.filter(entity_id=result.entity_id, year=evaluation.year, is_current=True).first()
    parcels = list(Parcel.objects.filter(entity_id=result.entity_id).select_related("town").order_by("parcel_id"))
    data = {f.name: getattr(record, f.name) for f in IndicatorRecord._meta.fields} if record else {}
    data = {k: (float(v) if hasattr(v, "as_tuple") else v) for k, v in data.items()}
    data["uscc"] = result.entity_id
    computed = engine_sheet.compute(m, data, [(p.role, float(p.area_mu)) for p in parcels]) if record else None
    rows = []
    if result.group and result.group in m.groups:
        for name, ind in m.groups[result.group].items():
            value = computed.values.get(name) if computed else None
            rows.append({
                "name": name, "label": methods.INDICATOR_LABELS[name], "formula": FORMULAS[name], "unit": UNITS[name],
                "value": value, "benchmark": float(ind.benchmark), "weight": float(ind.weight),
                "points": (result.points or {}).get(name),
                "average": value is None and ind.missing == "group_average",
            })
    ranked = Result.objects.filter(evaluation=evaluation, group=result.group, rank__isnull=False).count() if result.group else 0
    return {"result": result, "evaluation": evaluation, "method": m, "record": record, "parcels": parcels,
            "group_label": group_label(result.group, m.large_mu) if result.group else "未分组",
            "rows": rows, "ranked": ranked, "class_label": class_label(result), "class_rule": class_rule(m)}


def class_rule(m) -> str:
    shares = list(m.classes.items())
    parts = [f"前 {float(s) * 100:g}% 为 {c} 类" for c, s in shares[:-1]]
    return f"组内按得分从高到低排名（同分按信用代码）：{'、'.join(parts)}、其余为 {shares[-1][0]} 类（名额向上取整）。"
