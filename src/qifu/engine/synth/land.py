"""The synthetic county's industrial land (contract §1.8–1.9): parcels and two years of
evaluation data for its manufacturing firms, in a realistic mix: about one above-threshold
firm per 120 entities (Cixi: some 2,000 of 240,000), three times as many below threshold with
land of their own (some under 3 mu), tenants, a few vetoes and exemptions, above-threshold
firms without monitored emissions, and some below-threshold firms the land survey missed."""

from __future__ import annotations

import numpy as np
import polars as pl


def make(registry: pl.DataFrame, last_year: int, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    firms = registry.filter((pl.col("status") == "active") & (pl.col("entity_type") == "enterprise")
                            & pl.col("industry_code").fill_null("").str.starts_with("C"))
    n_all = registry.height
    n_above = min(firms.height, max(5, round(n_all / 120)))
    n_below = min(firms.height - n_above, n_above * 3)
    n_tenant = min(firms.height - n_above - n_below, n_above * 2)
    order = rng.permutation(firms.height)
    picked = firms[order[: n_above + n_below + n_tenant]]
    kinds = ["above"] * n_above + ["below"] * n_below + ["tenant"] * n_tenant
    parcels, indicators = [], []
    seq = 0
    for i, (uscc, town) in enumerate(zip(picked["uscc"].to_list(), picked["town"].to_list())):
        kind = kinds[i]
        seq += 1
        pid = f"330282{100000 + seq:06d}GB{seq % 1000:05d}"
        if kind == "above":
            own = float(np.round(rng.lognormal(3.2, 0.8), 2))
            ratio = float(rng.lognormal(np.log(1.7), 0.25))  # plot ratio: few below the 1.0 standard
            parcels.append((pid, uscc, "owner", own, town, ratio, rng.random() < 0.02))
            if rng.random() < 0.15:
                seq += 1
                parcels.append((f"330282{100000 + seq:06d}GB{seq % 1000:05d}", uscc, "tenant",
                                float(np.round(rng.uniform(2, 20), 2)), town, None, False))
            area = own
        elif kind == "below":
            if rng.random() < 0.06:  # the land survey did not find it: not evaluated (无用地信息)
                area = float(rng.uniform(1, 8))
            else:
                area = float(np.round(rng.lognormal(1.4, 0.8), 2))
                ratio = float(rng.lognormal(np.log(1.4), 0.25))  # older, lower buildings: about 1 in 10 below 1.0
                parcels.append((pid, uscc, "owner", area, town, ratio, rng.random() < 0.04))
        else:
            area = float(np.round(rng.lognormal(0.8, 0.7), 2))
            parcels.append((pid, uscc, "tenant", area, town, None, False))
        efficiency = rng.lognormal(0, 0.7)  # the firm's own, steady across the years
        for year in (last_year - 1, last_year):
            drift = rng.lognormal(0, 0.15)
            veto = "重大安全生产事故" if rng.random() < 0.01 else None
            exempt = "重大项目在建" if rng.random() < 0.01 else None
            if kind == "above":
                tax = area * 20 * efficiency * drift
                va = tax * rng.uniform(4, 7)
                revenue = va * rng.uniform(3, 5)
                indicators.append((uscc, year, True, tax, tax / 0.06 * rng.uniform(0.7, 1.3), va, revenue,
                                   revenue * rng.uniform(0.005, 0.05), va / 2.2 * rng.uniform(0.5, 1.5),
                                   None if rng.random() < 0.3 else va / 160 * rng.uniform(0.5, 1.5),
                                   max(5, int(va / 26 * rng.uniform(0.6, 1.4))), veto, exempt))
            else:
                per_mu = {"below": 8, "tenant": 6}[kind]
                tax = max(area * per_mu * efficiency * drift, 0.01)
                indicators.append((uscc, year, False, tax, tax / 0.05 * rng.uniform(0.6, 1.5), None, None, None, None,
                                   None, int(rng.integers(3, 40)), veto, exempt))
    p = pl.DataFrame(parcels, schema=["parcel_id", "uscc", "role", "area_mu", "town", "floor_area_ratio", "idle"],
                     orient="row")
    p = p.with_columns(pl.lit("工业用地").alias("land_use"), pl.col("floor_area_ratio").round(2))
    cols = ["uscc", "year", "above_threshold", "evaluated_tax", "electricity", "value_added", "main_revenue", "rd_spend",
            "energy_tce", "emissions", "avg_employees", "veto", "exempt"]
    ind = pl.DataFrame(indicators, schema=cols, orient="row", infer_schema_length=None)
    money = ["evaluated_tax", "electricity", "value_added", "main_revenue", "rd_spend", "energy_tce", "emissions"]
    ind = ind.with_columns(pl.col(c).cast(pl.Float64).round(4) for c in money)
    return p.select("parcel_id", "uscc", "role", "area_mu", "town", "land_use", "floor_area_ratio", "idle"), ind
