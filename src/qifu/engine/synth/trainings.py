"""The synthetic county's vocational-skill certificates (职业技能等级证书, an addition to the
contract for the skill subsidies): about one active enterprise in twenty-five has workers
certified in the last two years, one to six each, mostly at the lower levels; a few workers
hold a second certificate of the same occupation and level (re-issued), which must never be
paid twice. Names and identity numbers are made up (valid check characters, Cixi's region
code, birth dates 1965–2004)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from qifu.engine.synth.words import GIVEN, SURNAMES
from qifu.engine.validate import id_check_char

OCCUPATIONS = ["电工", "焊工", "车工", "数控车工", "钳工", "家用电器产品维修工", "电子商务师", "育婴员", "保育员", "养老护理员",
               "中式烹调师", "电梯安装维修工", "模具工", "注塑工", "工业机器人系统操作员", "汽车维修工", "美容师"]
LEVELS = ["5", "4", "3", "2", "1"]
SHARES = [0.42, 0.33, 0.18, 0.05, 0.02]


def make(registry: pl.DataFrame, last_year: int, rng: np.random.Generator) -> pl.DataFrame:
    firms = registry.filter((pl.col("status") == "active") & (pl.col("entity_type") == "enterprise"))
    picked = firms["uscc"].to_list()
    picked = [picked[i] for i in rng.permutation(len(picked))[: max(3, len(picked) // 25)]]
    rows, seq, people = [], 0, set()
    for uscc in picked:
        for _ in range(int(rng.integers(1, 7))):
            while True:
                born = dt.date(1965, 1, 1) + dt.timedelta(days=int(rng.integers(0, 40 * 365)))
                first17 = f"330282{born:%Y%m%d}{int(rng.integers(0, 1000)):03d}"
                if first17 not in people:
                    people.add(first17)
                    break
            idn = first17 + id_check_char(first17)
            name = SURNAMES[int(rng.integers(len(SURNAMES)))] + "".join(
                GIVEN[int(rng.integers(len(GIVEN)))] for _ in range(int(rng.integers(1, 3))))
            occupation = OCCUPATIONS[int(rng.integers(len(OCCUPATIONS)))]
            level = str(rng.choice(LEVELS, p=SHARES))
            year = last_year if rng.random() < 0.7 else last_year - 1
            issued = dt.date(year, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
            seq += 1
            rows.append((f"S{year}330282{seq:07d}", idn, name, uscc, occupation, level, issued,
                         int(rng.choice([40, 60, 80, 120]))))
            if rng.random() < 0.03:  # re-issued: the same person, occupation and level again
                seq += 1
                rows.append((f"S{year}330282{seq:07d}", idn, name, uscc, occupation, level,
                             min(issued + dt.timedelta(days=30), dt.date(year, 12, 31)), rows[-1][7]))
    return pl.DataFrame(rows, schema={"certificate_no": pl.Utf8, "id_number": pl.Utf8, "person_name": pl.Utf8,
                                      "uscc": pl.Utf8, "occupation": pl.Utf8, "level": pl.Utf8, "issued_on": pl.Date,
                                      "training_hours": pl.Int64}, orient="row")
