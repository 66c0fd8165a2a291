"""The season's proof: the randomised holdout against the treated group.

For a filing season (1 January–30 June of ``season``, filing the reports of ``season - 1``):
who was due, which group each entity was in (the same deterministic assignment `remind run`
uses), the contacts each group received by channel, the cumulative filing rate by day, the
on-time rate of each group with the difference and its 95% interval, and the contacts the
treated group would have received under the blanket practice (texts to every non-filer on
1 Mar, 15 Apr, 15 May, 1 Jun, 15 Jun and 25 Jun, a call round on 20 Jun).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl

from qifu import config
from qifu.engine import season as filing_season
from qifu.reminders import practice
from qifu.reminders.actions import _datetime, _frame, holdout_mask, plan_path

GROUPS = ("treated", "holdout")
LABELS = {"treated": "处理组（按模型提醒）", "holdout": "对照组（原有做法）"}


POLICY_LABELS = {
    "blanket": "原有做法（统一群发）", "qifu": "qifu（学习模型＋逐次跟进）", "rule": "简单规则＋逐次跟进",
    "history": "简单规则：往年早报者只在6月20日提醒", "history_delivery": "简单规则：另对短信失败者改打电话",
    "last_heard": "简单规则：另对上次接电话后才报送者改打电话",
}
PLAN_SOURCES = {"model": "学习模型", "rule": "简单规则", "oracle": "—"}


def season_report(season: int, until: dt.date | None = None, simulate: int = 0, town: str | None = None) -> dict:
    """``simulate``: entities of a synthetic county on which every policy is also replayed on
    every behaviour model (``season.side_by_side``), 0 for none; ``town``: one township's code."""
    year = season - 1
    start, end = filing_season.opens(year), filing_season.deadline(year)
    until = min(until or end, end)
    reg = _frame("SELECT uscc, status, established_on FROM registry_entity"
                 + (" WHERE town_id = %s" if town else ""), [town] if town else []).with_columns(
        pl.col("uscc").cast(pl.Utf8), pl.col("established_on").cast(pl.Utf8).str.to_date(strict=False))
    due = reg.filter((pl.col("status") == "active") & (pl.col("established_on") <= dt.date(year, 12, 31)))
    share = float(config.get("QIFU_HOLDOUT_SHARE", "0.05") or 0.05)
    due = due.with_columns(pl.Series("group", np.where(holdout_mask(due["uscc"].to_list(), season, share),
                                                       "holdout", "treated")))
    # one township: its entities' filings and messages only, chosen by the database
    scope, town_arg = (" AND uscc IN (SELECT uscc FROM registry_entity WHERE town_id = %s)", [town]) if town else ("", [])
    filed = (_frame("SELECT uscc, MIN(filed_at) AS filed_at FROM reports_annualreport WHERE report_year = %s"
                    f"{scope} GROUP BY uscc", [year, *town_arg]).with_columns(_datetime("filed_at"))
             .select(pl.col("uscc").cast(pl.Utf8), pl.col("filed_at").dt.date().alias("filed_on")))
    due = due.join(filed, on="uscc", how="left")  # (the cast: a season nobody has filed in yet)
    messages = _frame(f"""SELECT uscc, also_for, channel, "group", status FROM reminders_outboxmessage
                          WHERE purpose = 'filing' AND planned_for >= %s AND planned_for <= %s{scope}""",
                      [start, until, *town_arg])
    days = [start + dt.timedelta(days=i) for i in range((until - start).days + 1)]
    out: dict = {"season": season, "report_year": year, "until": until.isoformat(), "holdout_share": share,
                 "groups": {}, "by_day": {"date": [d.isoformat() for d in days]}}
    for g in GROUPS:
        part = due.filter(pl.col("group") == g)
        n = part.height
        on_time = int(part.filter(pl.col("filed_on") <= end)["filed_on"].len()) if n else 0
        by_day = part.filter(pl.col("filed_on").is_not_null()).group_by("filed_on").len()
        counts = dict(zip(by_day["filed_on"].to_list(), by_day["len"].to_list()))
        before = sum(v for d, v in counts.items() if d < start)
        cum, series = before, []
        for d in days:
            cum += counts.get(d, 0)
            series.append(round(cum / n, 4) if n else 0.0)
        out["by_day"][g] = series
        msgs = messages.filter(pl.col("group") == g) if messages.height else messages
        by_channel = dict(msgs.group_by("channel").len().iter_rows()) if msgs.height else {}
        contacted = set(msgs["uscc"].to_list()) if msgs.height else set()
        for extra in (msgs["also_for"].to_list() if msgs.height else []):
            contacted |= {u for u in (extra or "").split(",") if u}
        blanket = _blanket(part, season, until)
        made = int(msgs.height) if msgs.height else 0
        out["groups"][g] = {
            "label": LABELS[g], "due": n, "filed_on_time": on_time, "on_time_rate": on_time / n if n else None,
            "contacts": made, "contacts_by_channel": by_channel, "entities_contacted": len(contacted),
            "contacts_per_due_entity": made / n if n else None,
            "blanket_contacts": blanket, "saved_vs_blanket": 1 - made / blanket if blanket else None,
        }
    out["plan"] = plan_used(season)
    if simulate:
        from qifu.engine.reminders.season import side_by_side

        out["simulation"] = {"entities": simulate, "seed": season, "rows": side_by_side(simulate, [season])}
    t, h = out["groups"]["treated"], out["groups"]["holdout"]
    if t["due"] and h["due"] and h["contacts_per_due_entity"]:
        out["saved_vs_holdout"] = 1 - t["contacts_per_due_entity"] / h["contacts_per_due_entity"]
    if t["due"] and h["due"]:
        p1, p2 = t["on_time_rate"], h["on_time_rate"]
        se = math.sqrt(p1 * (1 - p1) / t["due"] + p2 * (1 - p2) / h["due"])
        out["effect"] = {"on_time_difference": p1 - p2, "ci95": [p1 - p2 - 1.96 * se, p1 - p2 + 1.96 * se]}
    return out


def plan_used(season: int) -> dict:
    """Which plan the season's runs used and why: the learnt one, or the simple rule where it
    did as well on the last past season (``policy.backtest``)."""
    try:
        with np.load(plan_path(season), allow_pickle=False) as f:
            source = str(f["source"]) if "source" in f.files else "model"
            check = json.loads(str(f["check"])) if "check" in f.files else {}
    except (FileNotFoundError, OSError, ValueError):
        return {"source": None, "label": "本季尚未运行提醒", "check": {}}
    why = ""
    if check:
        why = (f"上一季回测：学习模型 {check.get('model')}，简单规则 {check.get('rule')}"
               "（每百户应报主体中，误判为无需提醒者计2、多余提醒计1，越低越好）")
    return {"source": source, "label": PLAN_SOURCES.get(source, source), "check": check, "why": why}


def _blanket(part: pl.DataFrame, season: int, until: dt.date) -> int:
    total = 0
    for day, _ in practice.blanket().on(season):
        if day <= until:
            total += part.filter(pl.col("filed_on").is_null() | (pl.col("filed_on") >= day)).height
    return total


def write_report(report: dict, path: Path) -> None:
    """JSON (everything) or XLSX (three sheets staff can chart: 概要, 按日报送率, 按渠道)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        return
    if path.suffix.lower() != ".xlsx":
        raise ValueError(f"输出文件扩展名应为 .xlsx 或 .json，而不是 {path.suffix or '（无）'}")
    report_workbook(report).save(path)


def report_workbook(report: dict):
    """Three sheets staff can chart (概要, 按日报送率, 按渠道), and the simulation's when it ran."""
    from openpyxl import Workbook
    from openpyxl.chart import LineChart, Reference

    wb = Workbook()
    ws = wb.active
    ws.title = "概要"
    ws.append(["组别", "应报户数", "6月30日前报送", "按时报送率", "提醒次数", "被提醒户数", "每户提醒次数",
               "原做法应提醒次数", "少打扰比例"])
    for g in GROUPS:
        r = report["groups"][g]
        ws.append([r["label"], r["due"], r["filed_on_time"], r["on_time_rate"], r["contacts"], r["entities_contacted"],
                   r["contacts_per_due_entity"], r["blanket_contacts"], r["saved_vs_blanket"]])
    if "effect" in report:
        e = report["effect"]
        ws.append([])
        ws.append(["按时报送率差（处理组−对照组）", e["on_time_difference"], "95%区间", e["ci95"][0], e["ci95"][1]])
    if "saved_vs_holdout" in report:
        ws.append(["每户提醒次数比对照组少", report["saved_vs_holdout"]])
    days = wb.create_sheet("按日报送率")
    days.append(["日期", LABELS["treated"], LABELS["holdout"]])
    for i, d in enumerate(report["by_day"]["date"]):
        days.append([d, report["by_day"]["treated"][i], report["by_day"]["holdout"][i]])
    chart = LineChart()
    chart.title = "累计报送率：处理组与对照组"
    chart.add_data(Reference(days, min_col=2, max_col=3, min_row=1, max_row=days.max_row), titles_from_data=True)
    chart.set_categories(Reference(days, min_col=1, min_row=2, max_row=days.max_row))
    days.add_chart(chart, "E2")
    ch = wb.create_sheet("按渠道")
    ch.append(["组别", "渠道", "次数"])
    for g in GROUPS:
        for channel, n in sorted(report["groups"][g]["contacts_by_channel"].items()):
            ch.append([LABELS[g], channel, n])
    plan = report.get("plan") or {}
    if plan.get("source"):
        ws.append([])
        ws.append(["本季采用的计划", plan["label"], plan.get("why", "")])
    if "simulation" in report:
        sim = wb.create_sheet("各做法仿真对比")
        sim.append([f"合成县 {report['simulation']['entities']} 户，各行为模型下同一批主体、同样的随机数；"
                    "tuning 是调参所用模型，其余模型事先固定、从未用来调参"])
        sim.append(["行为模型", "做法", "提醒次数", "比原做法少", "按时报送率", "比原做法高（百分点）", "两项都优于qifu"])
        for r in report["simulation"]["rows"]:
            sim.append([r["model"] + ("（调参）" if r["tuning"] else ""), POLICY_LABELS.get(r["policy"], r["policy"]),
                        r["contacts"], r["fewer_than_blanket"], r["on_time_rate"], 100 * r["on_time_vs_blanket"],
                        "是" if r["better_than_qifu_on_both"] else ""])
    return wb
