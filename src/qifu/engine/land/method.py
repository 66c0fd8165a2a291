"""The evaluation method, written by staff as YAML (contract v1.1 §1.10), validated on load:
known groups and indicators, the weights of a group summing to 100, positive benchmarks, class
shares increasing to 1. Every error names the file and the place (``groups.above.tax_per_mu``).

The method is data: its ``version`` is the digest of its canonical form, so a changed method is
a new version and results keep the version they were made with.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

GROUPS = ("above", "below_large", "below_small", "tenant")
GROUP_LABELS = {"above": "规上工业企业", "below_large": "规下企业（自有用地≥{large}亩）",
                "below_small": "规下企业（自有用地<{large}亩）", "tenant": "租用厂房企业"}
CLASSES = ("A", "B", "C", "D")
# indicator → (numerator, denominator, factor): value = numerator / denominator × factor
INDICATORS: dict[str, tuple[str, str, int]] = {
    "tax_per_mu": ("evaluated_tax", "area_mu", 1),
    "value_added_per_mu": ("value_added", "area_mu", 1),
    "value_added_per_energy": ("value_added", "energy_tce", 1),
    "value_added_per_emission": ("value_added", "emissions", 1),
    "labour_productivity": ("value_added", "avg_employees", 1),
    "rd_share": ("rd_spend", "main_revenue", 100),
    "tax_per_kwh": ("evaluated_tax", "electricity", 1),
}
INDICATOR_LABELS = {
    "tax_per_mu": "亩均税收", "value_added_per_mu": "亩均增加值", "value_added_per_energy": "单位能耗增加值",
    "value_added_per_emission": "单位排放增加值", "labour_productivity": "全员劳动生产率", "rd_share": "研发经费占比",
    "tax_per_kwh": "单位电耗税收",
}


class MethodError(ValueError):
    """A method file that cannot be used; the message names the file and the place."""


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: Decimal = Field(gt=0)
    benchmark: Decimal = Field(gt=0)
    missing: str | None = None

    @field_validator("missing")
    @classmethod
    def _missing(cls, v):
        if v not in (None, "zero", "group_average"):
            raise ValueError("missing 只能是 group_average（取本组平均得分）或不写（缺失得 0 分）")
        return v


class Method(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    year: int = Field(ge=2000, le=2100)
    large_mu: Decimal = Field(default=Decimal(3), gt=0)
    cap: Decimal | None = Field(default=None, gt=0)
    classes: dict[str, Decimal]
    groups: dict[str, dict[str, Indicator]]

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: dict[str, Decimal]):
        if list(v) != list(CLASSES):
            raise ValueError(f"classes 应依次写 A、B、C、D 四档的累计比例，而不是 {', '.join(v)}")
        shares = list(v.values())
        if any(s <= 0 for s in shares) or any(b <= a for a, b in zip(shares, shares[1:])) or shares[-1] != 1:
            raise ValueError("classes 的累计比例应逐档增大，且 D 为 1（如 A 0.25、B 0.70、C 0.95、D 1.00）")
        return v

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: dict[str, dict[str, Indicator]]):
        for group, indicators in v.items():
            if group not in GROUPS:
                raise ValueError(f"没有这个分组：{group}（可用：{'、'.join(GROUPS)}）")
            for name in indicators:
                if name not in INDICATORS:
                    raise ValueError(f"groups.{group}：没有这个指标：{name}（可用：{'、'.join(INDICATORS)}）")
            total = sum(i.weight for i in indicators.values())
            if total != 100:
                raise ValueError(f"groups.{group}：权重之和应为 100，现为 {total}")
        if not v:
            raise ValueError("至少要有一个分组")
        return v

    @model_validator(mode="after")
    def _cap(self):
        return self

    @property
    def indicators(self) -> list[str]:
        """Every indicator of the method, in the contract's order (the output's points columns)."""
        used = {i for g in self.groups.values() for i in g}
        return [i for i in INDICATORS if i in used]

    def canonical(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)

    @property
    def version(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:12]


def parse(text: str, source: str = "方法文件") -> Method:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MethodError(f"{source}：不是有效的 YAML：{e}") from None
    if not isinstance(data, dict):
        raise MethodError(f"{source}：应为 name、year、classes、groups 等字段组成的映射")
    try:
        return Method.model_validate(_decimals(data))
    except ValidationError as e:
        first = e.errors()[0]
        place = ".".join(str(p) for p in first["loc"]) or "（顶层）"
        message = first["msg"].removeprefix("Value error, ")
        more = f"（另有 {len(e.errors()) - 1} 处）" if len(e.errors()) > 1 else ""
        raise MethodError(f"{source}：{place}：{message}{more}") from None


def load(path: str | Path) -> Method:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MethodError(f"找不到方法文件：{path}") from None
    except UnicodeDecodeError:
        raise MethodError(f"{path.name}：应为 UTF-8 编码的 YAML") from None
    return parse(text, path.name)


def _decimals(value):
    """Numbers as exact decimals (0.70 × 100 is 70, not 70.00000000000001)."""
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, float):
        try:
            return Decimal(repr(value))
        except InvalidOperation:
            return value
    return value
