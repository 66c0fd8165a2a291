"""The rule schema. See docs/rules.md for an annotated example."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Category(StrEnum):
    ID = "ID"  # identity
    CP = "CP"  # completeness
    FM = "FM"  # format
    AR = "AR"  # arithmetic identities
    UM = "UM"  # unit / magnitude (万元 vs 元)
    LC = "LC"  # logical consistency
    XS = "XS"  # cross-source (tax, social security, registry, contactability)
    YY = "YY"  # year over year
    PO = "PO"  # peer outliers
    SP = "SP"  # suspicious patterns (agents, bots)


CATEGORY_LABELS = {
    "ID": "主体身份", "CP": "完整性", "FM": "格式", "AR": "勾稽关系", "UM": "单位与数量级",
    "LC": "逻辑一致", "XS": "跨部门比对", "YY": "同比", "PO": "同行比较", "SP": "可疑模式",
}


class Severity(StrEnum):
    BLOCK = "block"  # impossible: reject at entry
    HIGH = "high"  # almost certainly wrong: ask for a correction
    MEDIUM = "medium"  # suspicious: ask for confirmation
    LOW = "low"  # staff review only, never sent to the enterprise
    INFO = "info"  # context for staff


SEVERITY_RANK = {Severity.BLOCK: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1, Severity.INFO: 0}
SEVERITY_LABELS = {"block": "阻断", "high": "高", "medium": "中", "low": "低", "info": "提示"}


class EntityType(StrEnum):
    ENTERPRISE = "enterprise"
    INDIVIDUAL = "individual"
    COOPERATIVE = "cooperative"


class Example(BaseModel):
    """A table-driven test: the record (context columns; the rest are empty) and whether it fires."""

    model_config = ConfigDict(extra="forbid")
    fires: bool
    record: dict[str, Any]
    field: str | None = None  # for rules with `each`: which variant fires
    note: str | None = None


PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^(ID|CP|FM|AR|UM|LC|XS|YY|PO|SP)-[0-9]{2}$")
    title: str = Field(min_length=2)
    category: Category
    severity: Severity
    applies_to: list[EntityType] = Field(min_length=1)
    each: list[str] | None = None  # run once per listed field; the condition says `x` and `prev_x`
    fields: list[str] = Field(min_length=1)  # contract fields the finding concerns; `x` in `each` rules
    condition: str
    values: dict[str, str] = Field(default_factory=dict, max_length=3)  # numeric SQL expressions
    message: str  # plain Chinese for the enterprise (or staff for low/info); {placeholders}
    suggestion: str | None = None  # numeric SQL expression, e.g. the 万元 value
    fix: str | None = None  # one line: what to do
    params: dict[str, float | int | str] = Field(default_factory=dict)
    source: str = "shared/domain/annual-report.md §3"
    deviation: str | None = None  # where the rule departs from the catalogue's wording, and why
    examples: list[Example] = Field(min_length=2)

    @field_validator("title", "message")
    @classmethod
    def _chinese(cls, v: str) -> str:
        if not re.search(r"[\u4e00-\u9fff]", v):
            raise ValueError("must be written in Chinese")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if not self.id.startswith(self.category.value + "-"):
            raise ValueError(f"id {self.id} does not match category {self.category}")
        if self.each is not None and "x" not in self.fields:
            raise ValueError("a rule with `each` names `x` in fields")
        if not any(e.fires for e in self.examples) or all(e.fires for e in self.examples):
            raise ValueError("examples need at least one case that fires and one that does not")
        for name in PLACEHOLDER.findall(self.message):
            if name in self.values or name in ("field_label", "x", "prev_x"):
                continue
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"bad placeholder {name}")
        return self

    def variants(self) -> list[str | None]:
        return list(self.each) if self.each else [None]

    def key(self, variant: str | None) -> str:
        return f"{self.id}:{variant}" if variant else self.id

    def fields_for(self, variant: str | None) -> list[str]:
        return [variant if f == "x" else f for f in self.fields]
