"""The synthetic county's construction projects for phased acceptance (an addition to the
contract: projects.csv): new and extended plants of manufacturers, a few public buildings, in
two or three phases of unit works, as the approval system lists them."""

from __future__ import annotations

import numpy as np
import polars as pl

from qifu.engine.contract import PROJECTS


def make(registry: pl.DataFrame, year: int, rng: np.random.Generator, n: int = 12) -> pl.DataFrame:
    firms = registry.filter((pl.col("status") == "active") & (pl.col("entity_type") == "enterprise")
                            & pl.col("industry_code").str.starts_with("C").fill_null(False))
    if firms.height == 0:
        firms = registry.filter(pl.col("entity_type") == "enterprise")
    rows = []
    for k, i in enumerate(rng.permutation(firms.height)[:n]):
        f = firms.row(int(i), named=True)
        kind = "public" if rng.random() < 0.15 else "industrial"
        phases = int(rng.choice([2, 2, 3]))
        plan = "；".join(f"{'一二三'[p]}期：{2 * p + 1}号{'厂房' if kind == 'industrial' else '楼'}、{2 * p + 2}号"
                        f"{'厂房' if kind == 'industrial' else '楼'}" for p in range(phases))
        rows.append({
            "project_code": f"{year}-330282-{k + 1:02d}-03-{int(rng.integers(100000, 1000000))}", "uscc": f["uscc"],
            "name": f["name"].removesuffix("有限公司") + ("新建厂房项目" if kind == "industrial" else "研发综合楼项目"),
            "project_type": kind, "site": f"{f['town']}工业园区", "permits": f"330282{year}{int(rng.integers(1000, 9999))}0101",
            "phases": plan,
        })
    return pl.DataFrame(rows, schema={f.name: pl.Utf8 for f in PROJECTS.fields})
