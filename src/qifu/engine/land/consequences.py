"""What a class means (domain/enterprise-services.md §C.5, §C.7), as configuration a county
writes in YAML: the differential electricity price and the reward refunded, the land-use tax
relief, and the rules that flag a parcel as low-efficiency land. Every one is an expression of
the rule language (``rules.expressions.compile_expression``), the same one quality rules and
policies are written in, run on DuckDB over one row per firm or per parcel.

A firm's row (``FIRM``): its class and group of the year (``managed_class``: its class, or B
for an exempt firm, which is managed as B), its score and rank, ``consecutive_d``
(years in D running up to this one), its electricity (万千瓦时), evaluated tax (万元), area and
tax per mu. A parcel's row (``PARCEL``) adds the parcel's own fields and the county's average
tax per mu (``county_tax_per_mu``: the evaluated firms' tax over their area).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qifu.engine.rules.expressions import RuleCompileError, compile_expression

FIRM = frozenset({"class", "managed_class", "group", "score", "rank", "consecutive_d", "above_threshold",
                  "electricity", "evaluated_tax", "area_mu", "tax_per_mu"})
PARCEL = FIRM | {"role", "parcel_area_mu", "floor_area_ratio", "idle", "land_use", "county_tax_per_mu"}
DEFAULT = Path(__file__).resolve().parents[2] / "data" / "land" / "consequences.yaml"


class ConsequencesError(ValueError):
    """A configuration that cannot be used; the message names the file and the key."""


class Flag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=100)
    when: str = Field(min_length=1)


class Consequences(BaseModel):
    model_config = ConfigDict(extra="forbid")
    surcharge_per_kwh: str = "0"  # 元/千瓦时 added to the firm's electricity price
    reward_per_kwh: str = "0"  # 元/千瓦时 refunded as a reward (征收及返还奖励)
    land_tax_relief: str = "0"  # share (0–1) of 城镇土地使用税 relieved
    low_efficiency: list[Flag] = Field(default_factory=list)

    @field_validator("low_efficiency")
    @classmethod
    def _unique(cls, v: list[Flag]):
        ids = [f.id for f in v]
        if len(ids) != len(set(ids)):
            raise ValueError("低效用地认定规则的 id 不能重复")
        return v

    @property
    def version(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def firm_sql(self, relation: str = "firms") -> str:
        """Per firm: the surcharge, the reward and the relief (rates), and the amounts in 万元
        (万千瓦时 × 元/千瓦时 is 万元)."""
        s = compile_expression(self.surcharge_per_kwh, FIRM, condition=False)
        r = compile_expression(self.reward_per_kwh, FIRM, condition=False)
        t = compile_expression(self.land_tax_relief, FIRM, condition=False)
        return f"""
SELECT *, surcharge_per_kwh * COALESCE(electricity, 0) AS surcharge,
          reward_per_kwh * COALESCE(electricity, 0) AS reward
FROM (SELECT *, COALESCE({s}, 0) AS surcharge_per_kwh, COALESCE({r}, 0) AS reward_per_kwh,
             LEAST(GREATEST(COALESCE({t}, 0), 0), 1) AS land_tax_relief
      FROM {relation})"""

    def parcel_sql(self, relation: str = "parcels") -> str:
        """Per parcel: one boolean column ``flag_<id>`` per rule, and ``flagged``."""
        if not self.low_efficiency:
            return f"SELECT *, FALSE AS flagged FROM {relation}"
        flags = ", ".join(f"{compile_expression(f.when, PARCEL)} AS flag_{f.id}" for f in self.low_efficiency)
        any_flag = " OR ".join(f"flag_{f.id}" for f in self.low_efficiency)
        return f"SELECT *, {any_flag} AS flagged FROM (SELECT *, {flags} FROM {relation})"


def parse(text: str, source: str = "配置文件") -> Consequences:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConsequencesError(f"{source}：不是有效的 YAML：{e}") from None
    if not isinstance(data, dict):
        raise ConsequencesError(f"{source}：应为 surcharge_per_kwh、reward_per_kwh、land_tax_relief、low_efficiency 组成的映射")
    data = {k: str(v) if k in ("surcharge_per_kwh", "reward_per_kwh", "land_tax_relief") else v for k, v in data.items()}
    try:
        c = Consequences.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "（顶层）"
        raise ConsequencesError(f"{source}：{place}：{first['msg'].removeprefix('Value error, ')}") from None
    for key, columns in (("surcharge_per_kwh", FIRM), ("reward_per_kwh", FIRM), ("land_tax_relief", FIRM)):
        _check(getattr(c, key), columns, f"{source}：{key}", condition=False)
    for i, f in enumerate(c.low_efficiency):
        _check(f.when, PARCEL, f"{source}：low_efficiency.{i}（{f.id}）", condition=True)
    return c


def _check(text: str, columns, place: str, condition: bool) -> None:
    try:
        compile_expression(text, columns, condition=condition)
    except RuleCompileError as e:
        raise ConsequencesError(f"{place}：{e}") from None


def load(path: str | Path | None = None) -> Consequences:
    path = Path(path) if path else DEFAULT
    try:
        return parse(path.read_text(encoding="utf-8"), path.name)
    except FileNotFoundError:
        raise ConsequencesError(f"找不到亩均评价结果运用的配置文件：{path}") from None


def consecutive_d(classes_by_year: dict[int, str | None], year: int) -> int:
    """Years in D running up to ``year`` (0 when the year itself is not D)."""
    n = 0
    while classes_by_year.get(year - n) == "D":
        n += 1
    return n
