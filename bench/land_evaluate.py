"""Land-efficiency evaluation at scale (issue 14's speed targets; results in docs/benchmarks.md).

1. A county: `qifu synth` of ``--entities`` (200,000 give about 10,000 evaluated firms), its
   registry, parcels and indicators imported, then `qifu land evaluate` timed end to end as a
   command (start-up, reading the year from the database, DuckDB, storing every result row,
   writing §2.3).
2. A province: ``--firms`` (1,000,000) firms made here with NumPy, evaluated by the same
   compiled SQL on DuckDB in this process, with its peak memory.
3. The same province on Spark local[2] from Parquet, the result written by the executors as
   Parquet partitioned by group.

    .venv/bin/python bench/land_evaluate.py --entities 200000 --firms 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from qifu.engine.land import evaluate
from qifu.engine.land import method as methods

EXAMPLE = Path(__file__).resolve().parent.parent / "src" / "qifu" / "data" / "land" / "method-example.yaml"


def qifu(env, *args) -> str:
    done = subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


def county(entities: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="qifu-land-bench-"))
    env = dict(os.environ, QIFU_DATA_DIR=str(work / "var"), QIFU_SECRET_KEY="bench-" + "k" * 50)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    qifu(env, "synth", "--entities", entities, "--seed", 4, "--out", work / "county")
    for kind in ("registry", "parcels", "indicators"):
        qifu(env, "import", kind, work / "county" / f"{kind}.csv")
    years = sorted({line.split(",")[1] for line in (work / "county" / "indicators.csv").read_text().splitlines()[1:]})
    year = int(years[-1])
    method_file = work / "method.yaml"
    method_file.write_text(EXAMPLE.read_text(encoding="utf-8").replace("year: 2025", f"year: {year}"), "utf-8")
    out = work / "out.csv"
    runs = []
    for _ in range(3):  # each run stores a new draft evaluation of the year
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "qifu", "land", "evaluate", "--year", str(year), "--method",
                               str(method_file), "--out", str(out), "--verbose"], env=env, capture_output=True, text=True)
        runs.append(time.perf_counter() - t)
        if done.returncode:
            raise SystemExit(done.stderr)
    print(done.stderr.strip())
    firms = sum(1 for _ in out.open(encoding="utf-8")) - 1
    print(f"county: {entities} entities, {firms} evaluated firms; `qifu land evaluate` end to end "
          f"{min(runs):.2f} s best / {max(runs):.2f} s worst of 3")


def province(n: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """``n`` firms in the synthetic county's mix (1 above threshold : 3 below : 2 tenants), one
    parcel each (owners) or a rented one (tenants), values log-normal around county levels."""
    rng = np.random.default_rng(seed)
    uscc = np.char.add("91330282", np.char.zfill(np.arange(n).astype(str), 10))
    kind = rng.choice(3, size=n, p=[1 / 6, 3 / 6, 2 / 6])  # 0 above, 1 below, 2 tenant
    above = kind == 0
    area = np.where(above, rng.lognormal(3.2, 0.8, n), rng.lognormal(1.6, 0.7, n)).round(2)
    tax = area * rng.lognormal(np.log(25), 0.7, n)

    def maybe(values, share_missing):
        return pa.array(np.where(rng.random(n) < share_missing, np.nan, values), from_pandas=True)

    indicators = pa.table({
        "uscc": uscc, "year": np.full(n, 2025), "above_threshold": above,
        "evaluated_tax": tax.round(2), "electricity": (area * rng.lognormal(np.log(40), 0.6, n)).round(1),
        "value_added": maybe(tax * rng.lognormal(np.log(4), 0.4, n), 0.0),
        "main_revenue": maybe(tax * rng.lognormal(np.log(12), 0.4, n), 0.0),
        "rd_spend": maybe(tax * rng.lognormal(np.log(0.4), 0.8, n), 0.05),
        "energy_tce": maybe(area * rng.lognormal(np.log(6), 0.6, n), 0.0),
        "emissions": maybe(area * rng.lognormal(np.log(0.3), 0.6, n), 0.3),
        "avg_employees": maybe(np.ceil(area * rng.lognormal(np.log(2), 0.5, n)), 0.0),
        "veto": pa.array(np.where(rng.random(n) < 0.002, "安全生产事故", None)),
        "exempt": pa.array(np.where(rng.random(n) < 0.003, "新投产", None)),
    })
    parcels = pa.table({
        "parcel_id": np.char.add("P", np.arange(n).astype(str)), "uscc": uscc,
        "role": np.where(kind == 2, "tenant", "owner"), "area_mu": area,
    })
    return indicators, parcels


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entities", type=int, default=200_000)
    ap.add_argument("--firms", type=int, default=1_000_000)
    ap.add_argument("--skip-spark", action="store_true")
    args = ap.parse_args()
    if args.entities:
        county(args.entities)
    if not args.firms:
        return

    m = methods.parse(EXAMPLE.read_text(encoding="utf-8"))
    indicators, parcels = province(args.firms)
    before = peak_mb()
    t = time.perf_counter()
    result = evaluate.run_duckdb(m, indicators, parcels)
    took = time.perf_counter() - t
    values, counts = np.unique(result.column("class").to_numpy(zero_copy_only=False).astype(str), return_counts=True)
    classes = {str(v): int(n) for v, n in zip(values, counts)}
    print(f"province on DuckDB: {args.firms} firms in {took:.1f} s; peak RSS {peak_mb():.0f} MB "
          f"(data made: {before:.0f} MB); classes {classes}")

    if args.skip_spark:
        return
    from qifu.engine.land import spark as land_spark
    from qifu.engine.rules.spark_engine import session

    work = Path(tempfile.mkdtemp(prefix="qifu-land-spark-"))
    paths = {"indicators": str(work / "indicators.parquet"), "parcels": str(work / "parcels.parquet")}
    pq.write_table(indicators, paths["indicators"])
    pq.write_table(parcels, paths["parcels"])
    spark = session()
    t = time.perf_counter()
    land_spark.write(spark, m, paths, str(work / "result"))
    took = time.perf_counter() - t
    rows = spark.read.parquet(str(work / "result")).count()
    print(f"province on Spark {spark.sparkContext.master}: {args.firms} firms in {took:.1f} s "
          f"(written as Parquet by the executors, {rows} rows)")


if __name__ == "__main__":
    main()
