"""Labelled data-quality errors injected into the last report year.

Each class is an error a real filer makes (a yuan figure in a 万元 field, a placeholder phone,
a report copied from last year …), named after the rule family of the domain catalogue
(``shared/domain/annual-report.md`` §3) that should catch it. Every injected row is written to
``injected_errors.csv`` with the field(s) a correct finding must name, so the quality engine
can be scored for recall per class. A report gets at most one injected error; everything
else in the county stays clean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from qifu.engine import uscc as uscc_mod

RATE = 0.0012  # share of last-year reports per class
MIN_PER_CLASS = 8
FIN8 = ("total_assets", "total_liabilities", "total_equity", "total_revenue",
        "main_business_revenue", "total_profit", "net_profit", "total_tax_paid")
SI_INSURED = tuple(f"si_{k}_insured" for k in ("pension", "unemployment", "medical", "injury", "maternity"))
SI_BASE = tuple(f"si_base_{k}" for k in ("pension", "unemployment", "medical", "maternity"))
SI_PAID = tuple(f"si_paid_{k}" for k in ("pension", "unemployment", "medical", "injury", "maternity"))
SI_ALL = SI_INSURED + SI_BASE + SI_PAID + ("si_arrears_total",)


@dataclass
class Ctx:
    rng: np.random.Generator
    r: dict[str, np.ndarray]  # last-year report columns (mutable copies)
    prev: dict[str, np.ndarray]  # previous-year values aligned to r (NaN / None where absent)
    has_prev: np.ndarray
    etype: np.ndarray
    tax_sales: np.ndarray
    tax_paid: np.ndarray
    social_count: np.ndarray
    used: np.ndarray
    labels: list[dict]
    year: int

    def choose(self, mask: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(mask & ~self.used)
        k = min(len(cand), max(MIN_PER_CLASS, int(RATE * len(self.used))))
        take = self.rng.choice(cand, size=k, replace=False) if k else cand
        self.used[take] = True
        return np.sort(take)

    def label(self, rows, error_class, category, rule, fields, before, after, note) -> None:
        for i, b, a in zip(rows, before, after):
            self.labels.append(
                {
                    "uscc": self.r["uscc"][i],
                    "report_year": self.year,
                    "error_class": error_class,
                    "category": category,
                    "rule": rule,
                    "fields": fields,
                    "original": "" if b is None else str(b),
                    "injected": "" if a is None else str(a),
                    "description": note,
                }
            )


def _set(ctx: Ctx, rows, field: str, values, error_class, category, rule, note, fields=None) -> None:
    before = [ctx.r[field][i] for i in rows]
    ctx.r[field][rows] = values
    after = [ctx.r[field][i] for i in rows]
    ctx.label(rows, error_class, category, rule, fields or field, before, after, note)


def _num(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def _classes() -> list[Callable[[Ctx], None]]:
    out = []

    def reg(fn):
        out.append(fn)
        return fn

    @reg
    def missing_base_field(c: Ctx):
        rows = c.choose(np.ones(len(c.used), bool))
        options = np.array(["contact_address", "postcode", "phone", "operating_status", "employees"])
        which = options[c.rng.integers(0, len(options), size=len(rows))]
        for f in options:
            sel = rows[which == f]
            _set(c, sel, f, np.nan if f == "employees" else "", "missing_base_field", "CP", "CP-01",
                 "基本信息必填项为空", fields=f)

    @reg
    def placeholder_activity(c: Ctx):
        rows = c.choose(c.etype != "individual")
        vals = np.array(["1", "无", "/", "-", "123", "."])[c.rng.integers(0, 6, size=len(rows))]
        _set(c, rows, "main_business_activity", vals, "placeholder_activity", "CP", "CP-07", "主营业务活动填了占位符")

    @reg
    def missing_social_insurance(c: Ctx):
        rows = c.choose((c.etype == "enterprise") & (_num(c.r["employees"]) > 0))
        before = [c.r["si_pension_insured"][i] for i in rows]
        for f in SI_ALL:
            c.r[f][rows] = np.nan
        c.label(rows, "missing_social_insurance", "CP", "CP-06", "si_pension_insured", before, [None] * len(rows),
                "有从业人员但社保信息全部为空")

    @reg
    def malformed_phone(c: Ctx):
        rows = c.choose(np.ones(len(c.used), bool))
        phones = c.r["phone"][rows].astype(str)
        bad = np.array([p[:-1] if len(p) == 11 else p + "9" for p in phones], dtype=object)
        bad[1::3] = np.array(["574" + p[-7:] for p in phones[1::3]], dtype=object)
        _set(c, rows, "phone", bad, "malformed_phone", "FM", "FM-01", "电话号码位数或格式错误")

    @reg
    def placeholder_phone(c: Ctx):
        rows = c.choose(np.ones(len(c.used), bool))
        vals = np.array(["13800138000", "11111111111", "12345678901", "13333333333", "18888888888"])
        _set(c, rows, "phone", vals[c.rng.integers(0, len(vals), size=len(rows))], "placeholder_phone", "FM",
             "FM-02", "电话为占位号码")

    @reg
    def malformed_postcode(c: Ctx):
        rows = c.choose(np.ones(len(c.used), bool))
        vals = np.array(["31530", "3153000", "31530O", "3l5300"])
        _set(c, rows, "postcode", vals[c.rng.integers(0, len(vals), size=len(rows))], "malformed_postcode", "FM",
             "FM-03", "邮政编码不是6位数字")

    @reg
    def postcode_elsewhere(c: Ctx):
        rows = c.choose(np.ones(len(c.used), bool))
        vals = np.array(["100010", "200001", "510000", "430000"])
        _set(c, rows, "postcode", vals[c.rng.integers(0, len(vals), size=len(rows))], "postcode_elsewhere", "FM",
             "FM-04", "邮政编码与慈溪地址不符")

    @reg
    def malformed_email(c: Ctx):
        rows = c.choose(np.ones(len(c.used), bool))
        base = np.char.add("cx", c.rng.integers(10**5, 10**6, size=len(rows)).astype(str))
        forms = [np.char.add(base, "@163"), np.char.add(base, "163.com"), np.char.add(base, "@@qq.com"),
                 np.char.add(base, "@qq,com")]
        which = c.rng.integers(0, len(forms), size=len(rows))
        vals = np.choose(which, forms).astype(object)
        _set(c, rows, "email", vals, "malformed_email", "FM", "FM-05", "电子邮箱格式错误")

    ent = lambda c: c.etype == "enterprise"  # noqa: E731

    @reg
    def equity_mismatch(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["total_liabilities"]) > 1))
        _set(c, rows, "total_equity", _num(c.r["total_assets"][rows]), "equity_mismatch", "AR", "AR-01",
             "所有者权益填成了资产总额（未减负债）")

    @reg
    def main_exceeds_total(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["total_revenue"]) > 5))
        _set(c, rows, "main_business_revenue", np.round(_num(c.r["total_revenue"][rows]) * 1.3, 2),
             "main_exceeds_total", "AR", "AR-02", "主营业务收入大于营业总收入")

    @reg
    def female_exceeds_employees(c: Ctx):
        rows = c.choose((c.etype != "individual") & (_num(c.r["employees"]) >= 2))
        _set(c, rows, "employees_female", _num(c.r["employees"][rows]) + c.rng.integers(1, 10, size=len(rows)),
             "female_exceeds_employees", "AR", "AR-07", "女性从业人数大于从业人数")

    @reg
    def insured_exceeds_employees(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["si_pension_insured"]) >= 1))
        new = _num(c.r["employees"][rows]) * 2 + 5
        before = list(c.r["si_pension_insured"][rows])
        for f in SI_INSURED:
            c.r[f][rows] = new
        c.label(rows, "insured_exceeds_employees", "AR", "AR-09", "si_pension_insured", before, list(new),
                "参保人数远大于从业人数")

    @reg
    def si_paid_exceeds_base(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["si_base_pension"]) > 1))
        _set(c, rows, "si_paid_pension", _num(c.r["si_base_pension"][rows]), "si_paid_exceeds_base", "AR",
             "AR-10", "养老保险实际缴费金额填成了缴费基数")

    @reg
    def tax_exceeds_revenue(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["total_revenue"]) > 5) & np.isnan(c.tax_paid))
        _set(c, rows, "total_tax_paid", np.round(_num(c.r["total_revenue"][rows]) * c.rng.uniform(1.1, 3, len(rows)), 2),
             "tax_exceeds_revenue", "AR", "AR-12", "纳税总额大于营业总收入")

    @reg
    def net_exceeds_total_profit(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["total_profit"]) > 2))
        _set(c, rows, "net_profit", np.round(_num(c.r["total_profit"][rows]) * 1.6, 2), "net_exceeds_total_profit",
             "AR", "AR-03", "净利润大于利润总额")

    @reg
    def yuan_for_wanyuan(c: Ctx):
        rows = c.choose((ent(c) | (c.etype == "individual")) & c.has_prev & (_num(c.r["total_revenue"]) > 1)
                        | ((c.etype == "individual") & c.has_prev & (_num(c.r["turnover"]) > 1)))
        for i in rows:
            fields = ("total_revenue", "main_business_revenue") if c.etype[i] == "enterprise" else ("turnover",)
            before = c.r[fields[0]][i]
            for f in fields:
                c.r[f][i] = np.round(float(c.r[f][i]) * 10000, 2)
            c.label([i], "yuan_for_wanyuan", "UM", "UM-01", ";".join(fields), [before], [c.r[fields[0]][i]],
                    "收入按元填报（应为万元），约为上年的一万倍")

    @reg
    def double_converted(c: Ctx):
        rows = c.choose(ent(c) & c.has_prev & (_num(c.r["total_revenue"]) > 50))
        before = list(c.r["total_revenue"][rows])
        for f in ("total_revenue", "main_business_revenue"):
            c.r[f][rows] = np.round(_num(c.r[f][rows]) / 10000, 6)
        c.label(rows, "double_converted", "UM", "UM-03", "total_revenue;main_business_revenue", before,
                list(c.r["total_revenue"][rows]), "收入被重复换算，约为上年的万分之一")

    @reg
    def si_base_in_yuan(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["si_base_pension"]) > 1))
        before = list(c.r["si_base_pension"][rows])
        for f in SI_BASE:
            c.r[f][rows] = np.round(_num(c.r[f][rows]) * 10000, 2)
        c.label(rows, "si_base_in_yuan", "UM", "UM-07", ";".join(SI_BASE), before, list(c.r["si_base_pension"][rows]),
                "社保缴费基数按元填报")

    @reg
    def suspended_but_trading(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["total_revenue"]) > 80) & (_num(c.r["employees"]) > 8))
        _set(c, rows, "operating_status", "suspended", "suspended_but_trading", "LC", "LC-01",
             "经营状态为歇业，但有营业收入和从业人员")

    @reg
    def revenue_without_employees(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["total_revenue"]) > 5) & np.isnan(c.social_count))
        before = list(c.r["employees"][rows])
        c.r["employees"][rows] = 0
        c.r["employees_female"][rows] = 0
        for f in SI_INSURED:
            c.r[f][rows] = 0
        c.label(rows, "revenue_without_employees", "LC", "LC-03", "employees", before, [0] * len(rows),
                "有营业收入但从业人数为0")

    @reg
    def revenue_differs_from_tax(c: Ctx):
        rows = c.choose(ent(c) & (c.tax_sales > 150) & ~c.has_prev)
        before = list(c.r["total_revenue"][rows])
        factor = c.rng.uniform(1.8, 3.0, len(rows))
        for f in ("total_revenue", "main_business_revenue"):
            c.r[f][rows] = np.round(_num(c.r[f][rows]) * factor, 2)
        c.label(rows, "revenue_differs_from_tax", "XS", "XS-01", "total_revenue", before,
                list(c.r["total_revenue"][rows]), "营业总收入与税务申报销售收入相差过大")

    @reg
    def tax_differs_from_tax_bureau(c: Ctx):
        rows = c.choose(ent(c) & (c.tax_paid > 8) & (_num(c.r["total_revenue"]) > 0))
        new = np.minimum(np.round(_num(c.r["total_tax_paid"][rows]) * 3, 2), _num(c.r["total_revenue"][rows]) * 0.3)
        _set(c, rows, "total_tax_paid", new, "tax_differs_from_tax_bureau", "XS", "XS-02",
             "纳税总额与税务部门记录不符")

    @reg
    def insured_differs_from_social(c: Ctx):
        rows = c.choose(ent(c) & (c.social_count >= 15))
        _set(c, rows, "si_pension_insured", np.floor(c.social_count[rows] / 3), "insured_differs_from_social", "XS",
             "XS-03", "养老保险参保人数与社保部门记录不符")

    @reg
    def zero_employees_but_insured(c: Ctx):
        rows = c.choose(ent(c) & (c.social_count >= 3))
        before = list(c.r["employees"][rows])
        c.r["employees"][rows] = 0
        c.r["employees_female"][rows] = 0
        c.label(rows, "zero_employees_but_insured", "XS", "XS-05", "employees", before, [0] * len(rows),
                "社保部门有参保职工，但从业人数填0")

    @reg
    def copied_last_year(c: Ctx):
        rows = c.choose(ent(c) & c.has_prev & (_num(c.prev["total_revenue"]) > 0))
        before = list(c.r["total_revenue"][rows])
        for f in FIN8:
            c.r[f][rows] = c.prev[f][rows]
        c.label(rows, "copied_last_year", "YY", "YY-03", ";".join(FIN8), before, list(c.r["total_revenue"][rows]),
                "八项财务数据与上年完全相同")

    @reg
    def big_jump(c: Ctx):
        rows = c.choose(ent(c) & c.has_prev & (_num(c.r["total_assets"]) > 20))
        before = list(c.r["total_assets"][rows])
        factor = c.rng.uniform(20, 60, len(rows))
        for f in ("total_assets", "total_liabilities", "total_equity"):
            c.r[f][rows] = np.round(_num(c.r[f][rows]) * factor, 2)
        c.r["total_equity"][rows] = np.round(_num(c.r["total_assets"][rows]) - _num(c.r["total_liabilities"][rows]), 2)
        c.label(rows, "big_jump", "YY", "YY-01", "total_assets", before, list(c.r["total_assets"][rows]),
                "资产总额比上年增长数十倍")

    @reg
    def headcount_jump(c: Ctx):
        rows = c.choose((c.etype != "individual") & c.has_prev & (_num(c.prev["employees"]) >= 3)
                        & (_num(c.r["employees"]) <= 200))
        _set(c, rows, "employees", _num(c.r["employees"][rows]) * 8 + 30, "headcount_jump", "YY", "YY-02",
             "从业人数比上年激增")

    @reg
    def si_base_below_minimum(c: Ctx):
        rows = c.choose(ent(c) & (_num(c.r["si_pension_insured"]) >= 2) & (_num(c.r["si_base_pension"]) > 0))
        insured = _num(c.r["si_pension_insured"][rows])
        scale = insured * 1.2 / _num(c.r["si_base_pension"][rows])  # 1,000 yuan per person-month
        before = list(c.r["si_base_pension"][rows])
        for f in SI_BASE + SI_PAID:
            c.r[f][rows] = np.round(_num(c.r[f][rows]) * scale, 2)
        c.label(rows, "si_base_below_minimum", "PO", "PO-04", "si_base_pension", before,
                list(c.r["si_base_pension"][rows]), "人均缴费基数低于当地最低缴费基数")

    @reg
    def filing_bot_defaults(c: Ctx):
        rows = c.choose(ent(c))
        before = list(c.r["phone"][rows])
        c.r["phone"][rows] = "13600000000"
        c.r["email"][rows] = "13600000000@qq.com"
        c.r["main_business_activity"][rows] = "1"
        c.r["employees"][rows] = 1
        c.r["employees_female"][rows] = 0
        for f in FIN8 + SI_ALL:
            c.r[f][rows] = 0.0
        c.label(rows, "filing_bot_defaults", "SP", "SP-03", "phone;email;main_business_activity", before,
                ["13600000000"] * len(rows), "代报机器人默认值（13600000000、主营业务“1”、全零）")

    @reg
    def identical_financials(c: Ctx):
        donors = np.flatnonzero(ent(c) & (_num(c.r["total_revenue"]) > 10) & ~c.used)
        rows = c.choose(ent(c) & (_num(c.r["total_revenue"]) > 10))
        if len(donors) == 0:
            return
        donor = c.rng.choice(np.setdiff1d(donors, rows), size=len(rows))
        before = list(c.r["total_revenue"][rows])
        for f in FIN8:
            c.r[f][rows] = c.r[f][donor]
        c.label(rows, "identical_financials", "SP", "SP-05", ";".join(FIN8), before, list(c.r["total_revenue"][rows]),
                "财务数据与另一家无关企业完全相同")

    return out


def inject(rng, county, registry: pl.DataFrame, reports: dict[int, pl.DataFrame], shareholders: pl.DataFrame,
           tax: pl.DataFrame, social: pl.DataFrame):
    year = county.last_year
    rep = reports[year]
    r = {k: rep[k].to_numpy().copy() for k in rep.columns}
    for k in r:
        if r[k].dtype.kind in "iu" and k not in ("report_year", "__idx"):
            r[k] = r[k].astype(float)
        elif r[k].dtype.kind in "OU":
            r[k] = r[k].astype(object)
    idx = r["__idx"]
    n = len(idx)

    prev_frame = reports[year - 1]
    pos = np.full(county.n, -1)
    pos[prev_frame["__idx"].to_numpy()] = np.arange(prev_frame.height)
    ppos = pos[idx]
    has_prev = ppos >= 0
    prev = {}
    for f in FIN8 + ("employees",):
        col = prev_frame[f].cast(pl.Float64).to_numpy()
        prev[f] = np.where(has_prev, col[np.maximum(ppos, 0)], np.nan)

    def aligned(frame: pl.DataFrame, key: str, column: str) -> np.ndarray:
        sub = frame.filter(pl.col(key) == year)
        lookup = dict(zip(sub["uscc"].to_list(), sub[column].cast(pl.Float64).to_list()))
        return np.array([lookup.get(u, np.nan) for u in r["uscc"]], dtype=float)

    ctx = Ctx(rng, r, prev, has_prev, county.types[idx], aligned(tax, "year", "declared_sales"),
              aligned(tax, "year", "tax_paid"), aligned(social, "year", "insured_count"),
              np.zeros(n, dtype=bool), [], year)
    for make in _classes():
        make(ctx)

    # Classes that touch the registry or the shareholders file.
    registry, shareholders, reports, tax, social = _registry_classes(ctx, county, registry, shareholders, reports,
                                                                     tax, social)
    reports[year] = pl.DataFrame(dict(r), strict=False).with_columns(
        pl.col(c).cast(pl.Float64) for c in r if r[c].dtype.kind == "f"
    )
    labels = pl.DataFrame(ctx.labels, schema=dict.fromkeys(("uscc", "report_year", "error_class", "category", "rule", "fields", "original", "injected", "description"), pl.Utf8))
    return registry, reports, shareholders, tax, social, labels


def _registry_classes(ctx: Ctx, county, registry, shareholders, reports, tax, social):
    year = ctx.year
    r = ctx.r
    # ID-07: a report for a year before the entity existed (established early the next year).
    first_year_only = county.established_year[r["__idx"]] == year
    rows = ctx.choose(first_year_only)
    new_dates = {}
    for i in rows:
        filed = str(r["filed_at"][i])[:10]
        day = min(f"{year + 1}-01-0{1 + int(ctx.rng.integers(0, 5))}", filed)
        new_dates[r["uscc"][i]] = day
    before = dict(zip(registry["uscc"].to_list(), registry["established_on"].to_list()))
    ctx.label(rows, "report_before_established", "ID", "ID-07", "report_year",
              [before[r["uscc"][i]] for i in rows], [new_dates[r["uscc"][i]] for i in rows],
              "成立日期在报告年度之后，不应报送该年度年报")
    registry = registry.with_columns(
        pl.when(pl.col("uscc").is_in(list(new_dates))).then(pl.col("uscc").replace(new_dates)).otherwise(
            pl.col("established_on")).alias("established_on")
    )

    # ID-03: the credit code's type prefix does not match the registered entity type
    # (an enterprise holding a 92… code). The code stays valid: only the prefix is wrong.
    rows = ctx.choose(ctx.etype == "enterprise")
    mapping = {}
    for i in rows:
        old = r["uscc"][i]
        mapping[old] = uscc_mod.make("92" + old[2:17])
    ctx.label(rows, "type_prefix_mismatch", "ID", "ID-03", "uscc", [r["uscc"][i] for i in rows],
              [mapping[r["uscc"][i]] for i in rows], "统一社会信用代码前两位与主体类型不符")
    for label in ctx.labels:
        label["uscc"] = mapping.get(label["uscc"], label["uscc"])
    r["uscc"] = np.array([mapping.get(u, u) for u in r["uscc"]], dtype=object)

    def remap(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("uscc").replace(mapping))

    registry, shareholders, tax, social = (remap(f) for f in (registry, shareholders, tax, social))
    county.reminders = remap(county.reminders)
    reports = {y: (remap(f) if y != year else f) for y, f in reports.items()}

    # AR-05: paid-in capital above the subscribed amount (shareholders file).
    sh_year = shareholders.filter(pl.col("report_year") == year)
    owners = set(sh_year["uscc"].to_list())
    eligible = np.array([u in owners for u in r["uscc"]])
    rows = ctx.choose(eligible & (ctx.etype == "enterprise"))
    chosen = {r["uscc"][i] for i in rows}
    first = sh_year.filter(pl.col("uscc").is_in(list(chosen)) & (pl.col("subscribed_amount") > 0)).group_by("uscc").first()
    targets = {u: (name, sub) for u, name, sub in first.select("uscc", "shareholder_name", "subscribed_amount").iter_rows()}
    hit = [i for i in rows if r["uscc"][i] in targets]
    ctx.label(hit, "paid_in_exceeds_subscribed", "AR", "AR-05", "paid_in_amount",
              [targets[r["uscc"][i]][1] for i in hit], [round(targets[r["uscc"][i]][1] * 2, 2) for i in hit],
              "实缴出资额大于认缴出资额")
    keys = pl.DataFrame({"uscc": list(targets), "shareholder_name": [v[0] for v in targets.values()],
                         "__hit": [True] * len(targets)}, schema={"uscc": pl.Utf8, "shareholder_name": pl.Utf8, "__hit": pl.Boolean})
    shareholders = shareholders.join(keys, on=["uscc", "shareholder_name"], how="left").with_columns(
        pl.when(pl.col("__hit") & (pl.col("report_year") == year))
        .then((pl.col("subscribed_amount") * 2).round(2))
        .otherwise(pl.col("paid_in_amount"))
        .alias("paid_in_amount"),
        pl.when(pl.col("__hit") & (pl.col("report_year") == year) & (pl.col("paid_in_date") == ""))
        .then(pl.lit(f"{year}-06-30"))
        .otherwise(pl.col("paid_in_date"))
        .alias("paid_in_date"),
        pl.when(pl.col("__hit") & (pl.col("report_year") == year) & (pl.col("paid_in_form") == ""))
        .then(pl.lit("货币"))
        .otherwise(pl.col("paid_in_form"))
        .alias("paid_in_form"),
    ).drop("__hit")
    return registry, shareholders, reports, tax, social
