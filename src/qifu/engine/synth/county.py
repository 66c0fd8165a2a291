"""Generate a synthetic county and write it as contract files.

``write(out, entities=240_000, seed=1)`` writes registry.csv, reports.csv, shareholders.csv,
tax.csv, social.csv and reminders.csv (contract §1), plus the hidden truth: behaviour.csv
(the filers' behavioural model, see ``behaviour``), injected_errors.csv (labelled data-quality
errors, see ``inject``) and README.md. All arrays are generated column-wise with numpy, so
240,000 entities with three seasons of history take seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from qifu.engine import reference
from qifu.engine import uscc as uscc_mod
from qifu.engine.contract import KINDS, T
from qifu.engine.synth import behaviour as bh
from qifu.engine.synth import experts as synth_experts
from qifu.engine.synth import inject
from qifu.engine.synth import labs as synth_labs
from qifu.engine.synth import land as synth_land
from qifu.engine.synth import projects as synth_projects
from qifu.engine.synth import requests as synth_requests
from qifu.engine.synth import trainings as synth_trainings
from qifu.engine.synth.words import BRAND, GIVEN, INDUSTRIES, REVENUE_PER_EMPLOYEE, ROADS, SURNAMES

TYPES = np.array(["enterprise", "individual", "cooperative"])
TYPE_SHARES = (0.42, 0.55, 0.03)
PREFIX = {"enterprise": "91", "individual": "92", "cooperative": "93"}
MOBILE_PREFIXES = np.array(
    "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158 159 166 177 180 181 182 183 186 187 188 189 191 193 198 199".split()
)
EMAIL_DOMAINS = np.array(["163.com", "126.com", "qq.com", "sina.com", "aliyun.com", "139.com"])
ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORG_VALUES = {c: (int(c) if c.isdigit() else ord(c) - 55) for c in ORG_ALPHABET}
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
MONEY_FIELDS_ENTERPRISE = (
    "total_assets", "total_liabilities", "total_equity", "total_revenue",
    "main_business_revenue", "total_profit", "net_profit", "total_tax_paid",
)

Progress = Callable[[str, int, int], None]


def org_check(body: str) -> str:
    """GB 11714 check character of an 8-character organisation-code body."""
    c = 11 - sum(ORG_VALUES[ch] * w for ch, w in zip(body, ORG_WEIGHTS)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_usccs(rng: np.random.Generator, types: np.ndarray, region: str) -> np.ndarray:
    n = len(types)
    space = 31**6
    ids = (np.arange(n, dtype=np.int64) * 387_420_489 + int(rng.integers(0, space))) % space  # 9^9: coprime to 31
    out = []
    for t, i in zip(types, ids.tolist()):
        chars = []
        for _ in range(6):
            i, r = divmod(i, 31)
            chars.append(ORG_ALPHABET[r])
        body = "MA" + "".join(chars)
        out.append(uscc_mod.make(PREFIX[t] + region + body + org_check(body)))
    return np.array(out)


def _pick(rng, pool, n, k=1) -> np.ndarray:
    arr = np.array(pool)
    s = arr[rng.integers(0, len(arr), size=n)]
    for _ in range(k - 1):
        s = np.char.add(s, arr[rng.integers(0, len(arr), size=n)])
    return s


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    given = np.where(rng.random(n) < 0.7, _pick(rng, GIVEN, n, 2), _pick(rng, GIVEN, n))
    return np.char.add(_pick(rng, SURNAMES, n), given)


def mobiles(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = MOBILE_PREFIXES[rng.integers(0, len(MOBILE_PREFIXES), size=n)]
    rest = np.char.zfill(rng.integers(0, 10**8, size=n).astype(str), 8)
    return np.char.add(prefix, rest)


def _date_str(days_since_epoch: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days_since_epoch.astype("datetime64[D]"), unit="D")


class County:
    """Columns of the synthetic county, generated in dependency order."""

    def __init__(self, entities: int, seed: int, last_year: int, model: bh.Model | None = None):
        self.n = entities
        self.seed = seed
        self.model = model or bh.TUNING
        self.years = [last_year - 2, last_year - 1, last_year]
        self.last_year = last_year
        self.rng = np.random.default_rng(seed)

    # --- registry -----------------------------------------------------------------------
    def make_registry(self) -> None:
        rng, n = self.rng, self.n
        t = rng.choice(3, size=n, p=TYPE_SHARES)
        self.types = TYPES[t]
        county = reference.county()
        region = county["county_code"]
        towns = reference.townships()
        weights = np.array([1.6 if tw.kind == "subdistrict" else 1.0 for tw in towns])
        weights[[i for i, tw in enumerate(towns) if tw.name in ("周巷镇", "观海卫镇", "逍林镇")]] = 1.4
        town_idx = rng.choice(len(towns), size=n, p=weights / weights.sum())
        self.town = np.array([tw.name for tw in towns])[town_idx]
        self.town_postcode = np.array([tw.postcode for tw in towns])[town_idx]
        self.uscc = make_usccs(rng, self.types, region)

        codes = list(INDUSTRIES)
        self.industry = np.empty(n, dtype=object)
        for name in TYPES:
            idx = np.flatnonzero(self.types == name)
            w = np.array([INDUSTRIES[c][0].get(name, 0.0) for c in codes])
            self.industry[idx] = np.array(codes)[rng.choice(len(codes), size=len(idx), p=w / w.sum())]
        self.industry = self.industry.astype(str)
        self.section = np.array([c[0] for c in self.industry])
        word = np.array([INDUSTRIES[c][1] for c in self.industry])
        self.activity = np.array([INDUSTRIES[c][2] for c in self.industry])

        brand = _pick(rng, BRAND, n, 2)
        ent, ind, coop = (self.types == x for x in TYPES)
        legal_forms = np.array(["有限责任公司", "股份有限公司", "个人独资企业", "合伙企业", "分公司"])
        lf = legal_forms[rng.choice(5, size=n, p=(0.85, 0.02, 0.06, 0.03, 0.04))]
        self.legal_form = np.where(ent, lf, "")
        suffix = np.select(
            [self.legal_form == "股份有限公司", self.legal_form == "个人独资企业", self.legal_form == "合伙企业",
             self.legal_form == "分公司"],
            ["股份有限公司", "厂", "商行（普通合伙）", "有限公司慈溪分公司"],
            "有限公司",
        )
        county_name = county["county"]
        name_ent = np.char.add(np.char.add(np.char.add(county_name, brand), word), suffix)
        town_short = np.char.replace(np.char.replace(self.town, "街道", ""), "镇", "")
        shop = np.where(np.char.endswith(word, "店") | np.char.endswith(word, "馆"), "", "店")
        name_ind = np.char.add(np.char.add(np.char.add(np.char.add(county_name, town_short), brand), word), shop)
        name_coop = np.char.add(np.char.add(np.char.add(county_name, brand), word), "专业合作社")
        self.name = np.where(ent, name_ent, np.where(ind, name_ind, name_coop))

        # Ages: individual businesses churn fastest. Snapshot: late in the filing season after last_year.
        snapshot = np.datetime64(f"{self.last_year + 1}-10-31")
        mean_age = np.where(ent, 8.5, np.where(ind, 5.0, 8.0))
        age_days = np.minimum(rng.exponential(mean_age * 365.25), 30 * 365.25).astype(np.int64)
        self.established = snapshot - age_days.astype("timedelta64[D]")
        self.established_year = self.established.astype("datetime64[Y]").astype(int) + 1970
        self.age_years = age_days / 365.25

        st = np.array(["active", "revoked", "cancelled", "moved_out"])
        self.status = st[rng.choice(4, size=n, p=(0.90, 0.03, 0.05, 0.02))]

        cap_median = np.where(ent, 100.0, np.where(ind, 5.0, 50.0))
        cap = cap_median * rng.lognormal(0, 1.0, size=n)
        cap = np.where(ent, np.round(cap / 10) * 10, np.round(cap, 1))
        self.registered_capital = np.clip(cap, 0.1, 500_000)

        self.legal_rep = person_names(rng, n)
        self.phone = mobiles(rng, n)
        landline = ent & (rng.random(n) < 0.12)
        self.landline = landline
        self.phone = np.where(landline, np.char.add("0574-6", np.char.zfill(rng.integers(0, 10**7, size=n).astype(str), 7)), self.phone)
        self.has_phone = rng.random(n) > 0.02
        handles = np.char.add("cx", np.char.zfill(rng.integers(0, 10**7, size=n).astype(str), 7))
        domains = EMAIL_DOMAINS[rng.integers(0, len(EMAIL_DOMAINS), size=n)]
        email = np.char.add(np.char.add(handles, "@"), domains)
        email = np.where((rng.random(n) < 0.25) & ~landline, np.char.add(self.phone, "@qq.com"), email)
        p_email = np.where(ent, 0.55, np.where(ind, 0.15, 0.3))
        self.email = np.where(rng.random(n) < p_email, email, "")
        road = _pick(rng, ROADS, n)
        number = rng.integers(1, 999, size=n).astype(str)
        self.address = np.char.add(np.char.add(np.char.add(np.char.add("浙江省" + county_name, self.town), road), number), "号")

    def registry_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "uscc": self.uscc,
                "name": self.name,
                "entity_type": self.types,
                "legal_form": self.legal_form,
                "industry_code": self.industry,
                "town": self.town,
                "address": self.address,
                "registered_capital": self.registered_capital,
                "established_on": _date_str(self.established),
                "status": self.status,
                "legal_rep": self.legal_rep,
                "phone": np.where(self.has_phone, self.phone, ""),
                "email": self.email,
            }
        )

    # --- behaviour and seasons ------------------------------------------------------------
    def make_behaviour(self) -> None:
        rng, n = self.rng, self.n
        seasons = len(self.years)
        model = self.model
        self.arche = bh.assign_archetypes(rng, self.types, self.age_years, seasons, model)
        # Filing agents: small firms and shops, 20-300 clients each, sharing the agent's phone.
        n_agents = max(2, int(n * model.agent_share / model.clients_per_agent))
        self.agent_phone = mobiles(rng, n_agents)
        self.agent_batch = rng.integers(bh.day_of(2001, 3, 1), bh.day_of(2001, 6, 20), size=n_agents)
        own = np.random.default_rng([self.seed, 31])  # draws only other models make: the tuning county is unchanged
        if model.agent_late:
            late = own.random(n_agents) < model.agent_late
            self.agent_batch[late] = own.integers(bh.day_of(2001, 7, 3), bh.day_of(2001, 7, 31), size=int(late.sum()))
        eligible = np.flatnonzero((self.types != "cooperative") & (self.status == "active") & (self.arche[:, -1] != bh.A["dormant"]))
        sizes = np.clip((rng.pareto(1.3, size=n_agents) + 1) * 20, 20, 300).astype(int)
        total = min(sizes.sum(), int(model.agent_share * n), len(eligible))
        clients = rng.choice(eligible, size=total, replace=False)
        owner = np.repeat(np.arange(n_agents), sizes)[:total]
        self.agent = np.full(n, -1)
        self.agent[clients] = owner
        self.arche[clients, :] = bh.A["agent_client"]
        self.reachable = ~np.any(self.arche == bh.A["unreachable"], axis=1)
        self.reachable &= self.has_phone
        self.deaf = (own.random(n) < model.deaf) & (self.arche[:, -1] != bh.A["dormant"])

    def simulate_seasons(self, progress: Progress | None) -> None:
        """Past seasons under the bureau's blanket policy: filing days and reminder history."""
        rng = self.rng
        self.filed_day: dict[int, np.ndarray] = {}
        reminder_parts = []
        active = self.status == "active"
        for s, year in enumerate(self.years):
            f_year = year + 1
            due = active & (self.established_year <= year)
            arche = self.arche[:, s]
            agent_day = np.where(self.agent >= 0, self.agent_batch[np.maximum(self.agent, 0)], 0)
            filed = bh.unprompted_day(rng, arche, f_year, agent_day, self.model)
            waves = [(bh.day_of(f_year, m, d), "sms") for m, d in bh.BLANKET_SMS]
            waves.append((bh.day_of(f_year, *bh.BLANKET_CALL), "call"))
            texts = np.zeros(self.n, dtype=np.int64)  # texts delivered so far this season
            for day, channel in sorted(waves):
                target = np.flatnonzero(due & (filed > day) & self.has_phone)
                status = bh.deliver(rng, channel, self.reachable[target], self.landline[target], self.model)
                p = bh.respond_probability(self.model, np.full(len(target), channel), arche[target], status,
                                           texts[target], self.deaf[target])
                respond = (status != 1) & (rng.random(len(target)) < p)
                if channel == "sms":
                    texts[target[status != 1]] += 1
                lag = (1 + rng.geometric(0.3, size=len(target))) if channel == "sms" else rng.integers(1, 6, size=len(target))
                idx = target[respond]
                filed[idx] = np.minimum(filed[idx], day + lag[respond])
                minute = rng.integers(0, 180, size=len(target))
                sent = np.datetime64(f"{f_year}-01-01T09:00") + (day * 1440 + minute).astype("timedelta64[m]")
                reminder_parts.append(
                    pl.DataFrame(
                        {
                            "uscc": self.uscc[target],
                            "sent_at": np.datetime_as_string(sent, unit="s"),
                            "channel": np.full(len(target), channel),
                            "purpose": np.full(len(target), "filing"),
                            "status": np.array(["delivered", "failed", "unknown"])[status],
                        }
                    )
                )
            cutoff = bh.day_of(f_year, 12, 20) if year < self.last_year else bh.day_of(f_year, 10, 31)
            filed = np.where(due & (filed <= cutoff), filed, -1)
            self.filed_day[year] = filed
            if progress:
                progress("往年报送与提醒", s + 1, len(self.years))
        self.reminders = pl.concat(reminder_parts).with_columns(pl.col("sent_at").str.replace("T", " "))

    # --- finances -----------------------------------------------------------------------
    def make_finances(self) -> None:
        """A clean panel of report values per year; every identity of the catalogue holds."""
        rng, n = self.rng, self.n
        ent, ind, coop = (self.types == x for x in TYPES)
        emp_base = np.where(
            ent,
            np.clip(rng.lognormal(np.log(9), 1.1, size=n), 1, 6000),
            np.where(ind, 1 + rng.poisson(1.0, size=n), 2 + rng.poisson(3.0, size=n)),
        )
        rpe_median = np.array([REVENUE_PER_EMPLOYEE.get(s, 40.0) for s in self.section])
        rpe = rpe_median * rng.lognormal(0, 0.45, size=n)
        asset_ratio = rng.lognormal(np.log(0.9), 0.4, size=n)
        lev = rng.uniform(0.15, 0.8, size=n)
        margin0 = np.clip(rng.normal(0.045, 0.05, size=n), -0.25, 0.3)
        tax_rate = rng.uniform(0.012, 0.05, size=n)
        female_share = rng.uniform(0.15, 0.65, size=n)
        insured_share = np.where(rng.random(n) < 0.25, 0.0, rng.uniform(0.6, 1.0, size=n))
        insured_share = np.where(emp_base > 10, np.maximum(insured_share, 0.6), insured_share)
        wage_base = np.maximum(rng.lognormal(np.log(7.6), 0.18, size=n), 5.6)  # 万元 per insured person-year
        turnover0 = np.clip(rng.lognormal(np.log(25), 0.9, size=n), 1, 3000)
        coop_sales0 = np.clip(rng.lognormal(np.log(80), 1.0, size=n), 2, 20000)
        members0 = np.clip(5 + rng.lognormal(np.log(20), 1.0, size=n), 5, 2000).astype(int)
        website = rng.random(n) < np.where(ent, 0.2, 0.05)
        subsidy = np.where(rng.random(n) < 0.4, rng.lognormal(np.log(5), 0.8, size=n), 0.0)
        loans = np.where(rng.random(n) < 0.3, rng.lognormal(np.log(30), 1.0, size=n), 0.0)
        arrears_flag = rng.random(n) < 0.02
        ind_tax_zero = rng.random(n) < 0.6
        op = np.where(rng.random(n) < 0.015, "suspended", np.where(rng.random(n) < 0.005, "liquidating", "open"))

        self.fin: dict[int, dict[str, np.ndarray]] = {}
        growth = np.ones(n)
        emp_growth = np.ones(n)
        for year in self.years:
            growth = growth * np.exp(np.clip(rng.normal(0.04, 0.10, size=n), -0.35, 0.35))
            emp_growth = emp_growth * np.exp(np.clip(rng.normal(0.01, 0.08, size=n), -0.3, 0.3))
            quiet = op != "open"
            emp = np.maximum(1, np.round(emp_base * emp_growth)).astype(np.int64)
            emp = np.where(quiet, np.minimum(emp, 2), emp)
            revenue = np.round(emp * rpe * growth, 2)
            revenue = np.where(quiet, np.round(np.minimum(revenue, 8.0), 2), revenue)
            main = np.floor(revenue * rng.uniform(0.86, 1.0, size=n) * 100) / 100
            assets = np.round(np.maximum(revenue * asset_ratio, 1.0), 2)
            liabilities = np.round(assets * lev, 2)
            equity = np.round(assets - liabilities, 2)
            margin = np.clip(margin0 + rng.normal(0, 0.015, size=n), -0.3, 0.3)
            profit = np.round(revenue * margin, 2)
            net = np.where(profit > 0, np.round(profit * 0.75, 2), profit)
            tax = np.round(revenue * tax_rate, 2)
            female = np.round(emp * female_share).astype(np.int64)
            insured = np.minimum(np.round(emp * insured_share), emp).astype(np.int64)
            base = np.round(insured * wage_base, 2)
            arrears = np.where(arrears_flag & (insured > 0), np.round(rng.lognormal(0.5, 1.0, size=n), 2), 0.0)
            turnover = np.round(turnover0 * growth, 2)
            ind_tax = np.where(ind_tax_zero, 0.0, np.round(turnover * rng.uniform(0.005, 0.03, size=n), 2))
            coop_sales = np.round(coop_sales0 * growth, 2)
            f = {
                "employees": emp,
                "employees_female": female,
                "operating_status": op,
                "has_website": website,
                "total_assets": assets,
                "total_liabilities": liabilities,
                "total_equity": equity,
                "total_revenue": revenue,
                "main_business_revenue": main,
                "total_profit": profit,
                "net_profit": net,
                "total_tax_paid": np.where(ent, tax, np.where(ind, ind_tax, np.round(coop_sales * 0.005, 2))),
                "turnover": turnover,
                "coop_members": members0,
                "coop_sales": coop_sales,
                "coop_surplus": np.round(coop_sales * np.clip(margin, -0.2, 0.2), 2),
                "coop_gov_subsidies": np.round(subsidy, 2),
                "coop_bank_loans": np.round(loans, 2),
                "insured": insured,
                "si_base": base,
                "si_paid_pension": np.round(base * 0.16, 2),
                "si_paid_unemployment": np.round(base * 0.005, 2),
                "si_paid_medical": np.round(base * 0.09, 2),
                "si_paid_injury": np.round(base * 0.004, 2),
                "si_paid_maternity": np.round(base * 0.005, 2),
                "si_arrears_total": arrears,
            }
            self.fin[year] = f

    def reports_frame(self, year: int) -> pl.DataFrame:
        """Reports filed for ``year`` (rows only for entities that filed)."""
        filed = self.filed_day[year]
        idx = np.flatnonzero(filed >= 0)
        f = {k: v[idx] for k, v in self.fin[year].items()}
        types = self.types[idx]
        ent, ind, coop = (types == x for x in TYPES)
        rng = self.rng
        secs = rng.integers(8 * 3600, 22 * 3600, size=len(idx))
        filed_at = np.datetime64(f"{year + 1}-01-01T00:00:00") + (filed[idx] * 86400 + secs).astype("timedelta64[s]")
        agent = self.agent[idx]
        phone = np.where(agent >= 0, self.agent_phone[np.maximum(agent, 0)], np.where(self.has_phone[idx], self.phone[idx], ""))
        # Reports carry a reachable contact even when the registry's phone went stale.
        fresh = mobiles(rng, len(idx))
        phone = np.where((agent < 0) & ~self.reachable[idx], fresh, phone)
        phone = np.where(phone == "", fresh, phone)
        email = np.where(agent >= 0, "", self.email[idx])

        def only(mask, values, null=np.nan):
            return np.where(mask, values, null)

        ins = f["insured"]
        cols = {
            "uscc": self.uscc[idx],
            "report_year": np.full(len(idx), year),
            "filed_at": np.char.replace(np.datetime_as_string(filed_at, unit="s"), "T", " "),
            "phone": phone,
            "email": email,
            "postcode": self.town_postcode[idx],
            "contact_address": self.address[idx],
            "operating_status": f["operating_status"],
            "main_business_activity": np.where(ind, "", self.activity[idx]),
            "employees": f["employees"],
            "employees_female": only(~ind, f["employees_female"]),
            "has_website": np.where(f["has_website"], "true", "false"),
        }
        for name in MONEY_FIELDS_ENTERPRISE:
            cols[name] = only(ent, f[name])
        cols["total_tax_paid"] = f["total_tax_paid"]
        cols["turnover"] = only(ind, f["turnover"])
        cols["coop_members"] = only(coop, f["coop_members"])
        for name in ("coop_sales", "coop_surplus", "coop_gov_subsidies", "coop_bank_loans"):
            cols[name] = only(coop, f[name])
        for kind in ("pension", "unemployment", "medical", "injury", "maternity"):
            cols[f"si_{kind}_insured"] = only(ent, ins)
        for kind in ("pension", "unemployment", "medical", "maternity"):
            cols[f"si_base_{kind}"] = only(ent, f["si_base"])
        for kind in ("pension", "unemployment", "medical", "injury", "maternity"):
            cols[f"si_paid_{kind}"] = only(ent, f[f"si_paid_{kind}"])
        cols["si_arrears_total"] = only(ent, f["si_arrears_total"])
        frame = pl.DataFrame(cols)
        return frame.with_columns(pl.Series("__idx", idx))

    # --- other bureaus ----------------------------------------------------------------------
    def tax_social_frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        rng, n = self.rng, self.n
        ent, ind, coop = (self.types == x for x in TYPES)
        dormant = np.all(self.arche == bh.A["dormant"], axis=1) | (self.status != "active")
        has_tax = ~dormant & (rng.random(n) < np.where(ent, 0.97, np.where(ind, 0.7, 0.6)))
        tax_parts, social_parts = [], []
        for year in self.years:
            f = self.fin[year]
            exists = has_tax & (self.established_year <= year)
            idx = np.flatnonzero(exists)
            sales = np.where(ent, f["total_revenue"], np.where(ind, f["turnover"], f["coop_sales"]))[idx]
            tax_parts.append(
                pl.DataFrame(
                    {
                        "uscc": self.uscc[idx],
                        "year": np.full(len(idx), year),
                        "declared_sales": np.round(sales * rng.uniform(0.97, 1.03, size=len(idx)), 2),
                        "tax_paid": np.round(f["total_tax_paid"][idx] * rng.uniform(0.98, 1.02, size=len(idx)), 2),
                    }
                )
            )
            sidx = np.flatnonzero(exists & ent & (f["insured"] > 0))
            social_parts.append(
                pl.DataFrame(
                    {
                        "uscc": self.uscc[sidx],
                        "year": np.full(len(sidx), year),
                        "insured_count": np.maximum(0, f["insured"][sidx] + rng.integers(-1, 2, size=len(sidx))),
                        "arrears": f["si_arrears_total"][sidx],
                    }
                )
            )
        return pl.concat(tax_parts), pl.concat(social_parts)

    def shareholders_frame(self, reports: dict[int, pl.DataFrame]) -> pl.DataFrame:
        """Shareholders of companies, per report filed; subscribed amounts sum to registered capital."""
        rng, n = self.rng, self.n
        company = np.isin(self.legal_form, ["有限责任公司", "股份有限公司"])
        k = np.where(company, np.clip(1 + rng.poisson(0.8, size=n), 1, 6), 0)
        k = np.where(self.legal_form == "股份有限公司", np.maximum(k, 2), k)
        owner = np.repeat(np.arange(n), k)
        m = len(owner)
        shares = rng.gamma(1.0, size=m)
        totals = np.bincount(owner, weights=shares, minlength=n)
        sub = np.floor(self.registered_capital[owner] * shares / totals[owner] * 100) / 100
        first = np.r_[True, owner[1:] != owner[:-1]]
        remainder = self.registered_capital - np.bincount(owner, weights=sub, minlength=n)
        sub[first] = np.round(sub[first] + remainder[owner[first]], 2)
        is_person = rng.random(m) < 0.85
        names = np.where(is_person, person_names(rng, m), np.char.add(np.char.add("宁波", _pick(rng, BRAND, m, 2)), "投资有限公司"))
        # make names unique within an entity
        pos = np.arange(m) - np.maximum.accumulate(np.where(first, np.arange(m), 0))
        names = np.where(pos > 0, np.char.add(names, np.where(pos > 0, pos.astype(str), "")), names)
        est = self.established[owner]
        new_law = est >= np.datetime64("2024-07-01")
        due_years = np.where(new_law, rng.integers(1, 6, size=m), rng.integers(5, 31, size=m))
        due = est + (due_years * 365).astype("timedelta64[D]")
        paid_frac_final = np.where(rng.random(m) < 0.4, 1.0, rng.uniform(0, 1, size=m))
        form = np.array(["货币", "实物", "知识产权"])[rng.choice(3, size=m, p=(0.9, 0.05, 0.05))]
        parts = []
        for s, year in enumerate(self.years):
            filed_idx = reports[year]["__idx"].to_numpy()
            filed_mask = np.zeros(n, dtype=bool)
            filed_mask[filed_idx] = True
            rows = np.flatnonzero(filed_mask[owner])
            frac = paid_frac_final[rows] * (s + 1) / len(self.years)
            paid = np.floor(sub[rows] * frac * 100) / 100
            year_end = np.datetime64(f"{year}-12-31")
            span = np.maximum((year_end - est[rows]).astype(int), 0)
            paid_date = est[rows] + (span * rng.uniform(0, 1, size=len(rows))).astype("timedelta64[D]")
            parts.append(
                pl.DataFrame(
                    {
                        "uscc": self.uscc[owner[rows]],
                        "report_year": np.full(len(rows), year),
                        "shareholder_name": names[rows],
                        "subscribed_amount": sub[rows],
                        "subscribed_due_date": _date_str(due[rows]),
                        "paid_in_amount": paid,
                        "paid_in_date": np.where(paid > 0, _date_str(paid_date), ""),
                        "paid_in_form": np.where(paid > 0, form[rows], ""),
                    }
                )
            )
        return pl.concat(parts)

    def behaviour_frame(self) -> pl.DataFrame:
        names = np.array(bh.ARCHETYPES)
        cols = {"uscc": self.uscc}
        for s, year in enumerate(self.years):
            cols[f"archetype_{year}"] = names[self.arche[:, s]]
        cols["agent_id"] = np.where(self.agent >= 0, np.char.add("A", self.agent.astype(str)), "")
        cols["agent_phone"] = np.where(self.agent >= 0, self.agent_phone[np.maximum(self.agent, 0)], "")
        cols["phone_reachable"] = self.reachable
        return pl.DataFrame(cols)


def _money_to_text(frame: pl.DataFrame, kind: str | None) -> pl.DataFrame:
    whole = {f.name for f in KINDS[kind].fields if f.type in (T.INT, T.YEAR)} if kind else set()
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.Float64 and name in whole:
            exprs.append(pl.col(name).fill_nan(None).cast(pl.Int64))
        elif dtype == pl.Float64:
            exprs.append(pl.col(name).fill_nan(None).round(6).cast(pl.Utf8))
    return frame.with_columns(exprs) if exprs else frame


def _write_csv(frame: pl.DataFrame, path: Path, kind: str | None = None) -> None:
    frame = _money_to_text(frame, kind)
    if kind:
        frame = frame.select(KINDS[kind].names)
    frame.write_csv(path)


def write(out: str | Path, entities: int = 240_000, seed: int = 1, last_year: int = 2025,
          progress: Progress | None = None) -> str:
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = County(entities, seed, last_year)
    steps = 7

    def step(i: int) -> None:
        if progress:
            progress("生成", i, steps)

    c.make_registry()
    step(1)
    c.make_behaviour()
    step(2)
    c.simulate_seasons(None)
    step(3)
    c.make_finances()
    step(4)
    reports = {y: c.reports_frame(y) for y in c.years}
    shareholders = c.shareholders_frame(reports)
    tax, social = c.tax_social_frames()
    step(5)
    registry = c.registry_frame()
    registry, reports, shareholders, tax, social, labels = inject.inject(
        np.random.default_rng([seed, 7]), c, registry, reports, shareholders, tax, social
    )
    step(6)
    _write_csv(registry, out / "registry.csv", "registry")
    _write_csv(pl.concat([reports[y] for y in c.years], how="vertical_relaxed"), out / "reports.csv", "reports")
    _write_csv(shareholders, out / "shareholders.csv", "shareholders")
    _write_csv(tax, out / "tax.csv", "tax")
    _write_csv(social, out / "social.csv", "social")
    _write_csv(c.reminders, out / "reminders.csv", "reminders")
    requests = synth_requests.make(registry.filter(pl.col("status") == "active"), last_year,
                                   dt.date(last_year + 1, 11, 30), np.random.default_rng([seed, 13]))
    _write_csv(requests, out / "requests.csv", "requests")
    parcels, indicators = synth_land.make(registry, last_year, np.random.default_rng([seed, 17]))
    parcels.write_csv(out / "parcels.csv")
    indicators.write_csv(out / "indicators.csv")
    synth_trainings.make(registry, last_year, np.random.default_rng([seed, 19])).write_csv(out / "trainings.csv")
    write_policies(out / "policies", last_year)
    synth_labs.make(registry, np.random.default_rng([seed, 23])).write_csv(out / "labs.csv")
    expert_rows = synth_experts.make(60, np.random.default_rng([seed, 29]))
    expert_rows.write_csv(out / "experts.csv")
    synth_experts.make_achievements(expert_rows, 30, np.random.default_rng([seed, 37])).write_csv(out / "achievements.csv")
    synth_projects.make(registry, last_year + 1, np.random.default_rng([seed, 31])).write_csv(out / "projects.csv")
    abnormal_frame(registry, reports, c.years[:-1]).write_csv(out / "abnormal.csv")
    c.behaviour_frame().write_csv(out / "behaviour.csv")
    labels.write_csv(out / "injected_errors.csv")
    (out / "README.md").write_text(_readme(c, labels), encoding="utf-8")
    step(7)
    n_reports = sum(r.height for r in reports.values())
    return (
        f"模拟县域已写入 {out}：{entities} 个主体，{n_reports} 份年报（{c.years[0]}–{c.years[-1]}），"
        f"{c.reminders.height} 条历史提醒，{requests.height} 件企业诉求，{labels.height} 处标注错误；"
        f"用时 {time.perf_counter() - started:.1f} 秒"
    )


def abnormal_frame(registry: pl.DataFrame, reports: dict[int, pl.DataFrame], years: list[int]) -> pl.DataFrame:
    """The abnormal-operation list as the national system would hold it for ``years`` (the
    earlier seasons; the last one's list is qifu's to make): every entity trading and registered
    by a year's end with no report of it filed by 30 June listed on 15 July, in credit-code
    order, and taken off five days after it filed late (or after it was listed, if it filed before), where it did."""
    frames = []
    for y in years:
        cut = f"{y + 1}-07-01"
        due = registry.filter((pl.col("status") == "active") & (pl.col("established_on") <= f"{y}-12-31")).select("uscc")
        filed = reports[y].group_by("uscc").agg(pl.col("filed_at").min())
        late = (due.join(filed, on="uscc", how="left").filter(pl.col("filed_at").is_null() | (pl.col("filed_at") >= cut))
                .sort("uscc").with_row_index("i", offset=1))
        frames.append(late.select(
            "uscc", pl.lit(y).alias("report_year"),
            pl.format("市监异列〔{}〕第{}号", pl.lit(y + 1), pl.col("i").cast(pl.String).str.zfill(5)).alias("number"),
            pl.lit(f"{y + 1}-07-15").alias("listed_on"),
            pl.when(pl.col("filed_at").is_not_null()).then(
                pl.max_horizontal(pl.col("filed_at").str.slice(0, 10).str.to_date(), pl.lit(dt.date(y + 1, 7, 15)))
                + pl.duration(days=5)).cast(pl.String).alias("removed_on")))
    columns = ("uscc", "report_year", "number", "listed_on", "removed_on")
    return pl.concat(frames) if frames else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))


POLICIES = Path(__file__).resolve().parents[2] / "data" / "policies"


def write_policies(folder: Path, year: int) -> None:
    """The shipped example policies, judged on data year ``year`` (for `qifu policy match`)."""
    import re

    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(POLICIES.glob("*.yaml")):
        text = re.sub(r"(?m)^year: \d+", f"year: {year}", path.read_text(encoding="utf-8"))
        (folder / path.name.replace(str(2025), str(year))).write_text(
            text.replace("id: CX-2025-", f"id: CX-{year}-"), encoding="utf-8")


def _readme(c: County, labels: pl.DataFrame) -> str:
    counts = labels.group_by("error_class", "category").len().sort("category", "error_class")
    rows = "\n".join(f"| {r[1]} | {r[0]} | {r[2]} |" for r in counts.iter_rows())
    return f"""# Synthetic county (seed {c.seed}, {c.n} entities, report years {c.years[0]}–{c.years[-1]})

Made-up data for tests, benchmarks and demos. No real person, phone number or company.

Contract files (import with `qifu import KIND FILE`, in this order: registry first):
registry.csv, reports.csv, shareholders.csv, tax.csv, social.csv, reminders.csv, requests.csv
(the hotline's and stations' requests from 1 January {c.last_year} to 30 November {c.last_year + 1}),
parcels.csv and indicators.csv (industrial land and its evaluation data, {c.last_year - 1}–{c.last_year}),
trainings.csv (workers' vocational-skill certificates, {c.last_year - 1}–{c.last_year}; made-up names and numbers),
labs.csv (the shared-lab catalogue: one row per instrument, its lab's columns repeated),
experts.csv (sixty expert partners of made-up universities and institutes),
achievements.csv (up to thirty results of their projects, the results library),
projects.csv (construction projects registered for phased acceptance, with their phase plans),
abnormal.csv (the abnormal-operation list of the seasons before {c.last_year}'s, as the national system holds it).
policies/: ten example policies judged on {c.last_year} data (`qifu policy match --policies policies
--year {c.last_year} --out matches.csv`, after `qifu land evaluate`: some read the land classes).

Hidden truth (never import these; they score qifu's checks and reminder policy):
- behaviour.csv: each entity's filing archetype per season, its filing agent and whether its
  registered phone still reaches it. The model is documented in docs/synthetic-county.md.
- injected_errors.csv: one row per injected data-quality error in the {c.last_year} reports:
  uscc, report_year, error_class, category (rule family of the domain catalogue), rule (the
  catalogue rule expected to catch it), fields, original and injected values.

| category | error_class | count |
|---|---|---|
{rows}
"""
