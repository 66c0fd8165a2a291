"""A policy, written by staff as YAML (contract v1.1 §1.10), validated on load: its eligibility
and amount are expressions of the rule language over the entity profile (``profile.COLUMNS``),
compiled by the same compiler as the quality rules and the land consequences. Every error
names the file and the place (``eligible``, ``installments.1``).

A policy is data: its ``version`` is the digest of its canonical form, so a changed policy is a
new version and the matches keep the version they were made with.
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from qifu.engine.contract import SKILL_LEVELS
from qifu.engine.policies.profile import COLUMNS
from qifu.engine.rules.expressions import RuleCompileError, column_names, compile_expression

MODE_ALIASES = {"免申即享": "automatic", "自动": "automatic", "需申请": "application", "申请": "application"}
KNOWN = ("id", "title", "year", "mode", "eligible", "amount", "budget", "installments", "milestones",
         "department", "summary", "basis", "category", "kind", "levels")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the place."""


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
    title: str = Field(min_length=1, max_length=200)
    year: int = Field(ge=1990, le=2100)
    mode: Literal["automatic", "application"] = "automatic"
    # profile: eligibility and amount are expressions over the entity profile; skills: one
    # amount per vocational-skill certificate obtained in the year, by level (``levels``, 万元),
    # paid to the employer, never twice for one person, occupation and level
    kind: Literal["profile", "skills"] = "profile"
    eligible: str = Field(default="", max_length=4000)
    amount: str = Field(default="", max_length=2000)  # 万元
    levels: dict[str, Decimal] = Field(default_factory=dict)
    budget: Decimal | None = None  # 万元
    installments: tuple[Decimal, ...] = (Decimal(1),)
    milestones: tuple[str, ...] = ()  # what releases each installment after the first, e.g. 项目验收
    department: str = Field(default="", max_length=100)
    summary: str = Field(default="", max_length=2000)  # in plain words, for the portal and the assistant
    basis: str = Field(default="", max_length=300)  # the document it rests on (文件依据)
    category: str = Field(default="", max_length=50)  # 研发创新, 技能培训, 亩均奖励 …

    @field_validator("budget")
    @classmethod
    def _budget(cls, v: Decimal | None):
        if v is not None and v < 0:
            raise ValueError(f"预算不能为负数：{v}")
        return v

    @field_validator("installments")
    @classmethod
    def _installments(cls, v: tuple[Decimal, ...]):
        if not v:
            raise ValueError("分期比例不能为空（一次付清可不写）")
        for i, share in enumerate(v):
            if share <= 0 or share > 1:
                raise ValueError(f"第 {i + 1} 期比例应大于 0 且不超过 1：{share}")
        if sum(v) != 1:
            raise ValueError(f"各期比例之和应为 1，而不是 {sum(v)}")
        return v

    @model_validator(mode="after")
    def _milestones(self):
        if self.milestones and len(self.milestones) != len(self.installments) - 1:
            raise ValueError(f"milestones 应为第 2 期起每期的拨付节点，共 {len(self.installments) - 1} 个")
        if self.kind == "profile":
            for key in ("eligible", "amount"):
                if not getattr(self, key).strip():
                    raise ValueError(f"{key}：必填，未填写")
        else:
            known = dict(SKILL_LEVELS)
            if not self.levels:
                raise ValueError("levels：技能证书补贴应按等级写明金额（万元），如 {\"3\": 0.2}")
            for level, amount in self.levels.items():
                if level not in known:
                    raise ValueError(f"levels：不认识的技能等级 {level}（应为 {'、'.join(known)}）")
                if amount < 0:
                    raise ValueError(f"levels.{level}：金额不能为负数")
            if len(self.installments) != 1 or self.mode != "automatic":
                raise ValueError("技能证书补贴按证书一次拨付（免申即享），不设分期")
        return self

    @property
    def canonical(self) -> str:
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)

    @property
    def version(self) -> str:
        return hashlib.sha256(self.canonical.encode()).hexdigest()[:12]

    def eligible_sql(self, dialect: str = "duckdb") -> str:
        return compile_expression(self.eligible, COLUMNS, dialect, condition=True, sql_nulls=True)

    def amount_sql(self, dialect: str = "duckdb") -> str:
        return compile_expression(self.amount, COLUMNS, dialect, condition=False, sql_nulls=True)

    @property
    def fields(self) -> list[str]:
        """The profile fields the eligibility names, in the order written (the reason quotes them)."""
        return list(_columns(self.eligible))

    @property
    def columns(self) -> set[str]:
        """Every profile field the policy reads."""
        return set(_columns(self.eligible)) | set(_columns(self.amount)) if self.kind == "profile" else set()


def milestone(mode: str, milestones, seq: int) -> str:
    """What releases installment ``seq`` (1-based): the first is paid on confirmation (an
    automatic policy) or approval (an application), the others at the named milestones."""
    if seq == 1:
        return "企业确认" if mode == "automatic" else "审核通过"
    return milestones[seq - 2] if milestones else f"第 {seq} 期拨付节点"


@cache
def _columns(text: str) -> tuple[str, ...]:
    seen = [name for name in column_names(text) if name in COLUMNS]
    order = {m.start(): m.group(0) for m in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", text)}
    first = {name: min((p for p, w in order.items() if w == name), default=0) for name in seen}
    return tuple(sorted(seen, key=first.get))


def _decimal(v: Any, place: str) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float, str)):
        try:
            return Decimal(str(v))
        except InvalidOperation:
            raise PolicyError(f"{place}：应为数字，而不是 {v!r}") from None
    return v


def parse(text: str, source: str = "政策文件") -> tuple[Policy, list[str]]:
    """The policy and the warnings about it (unknown keys, which are ignored)."""
    try:
        data = yaml.load(text, Loader=LOADER)
    except yaml.YAMLError as e:
        raise PolicyError(f"{source}：不是有效的 YAML：{e}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}：应为 id、title、year、mode、eligible、amount 等键组成的映射")
    warnings = [f"{source}：不认识的键 {k}，已忽略" for k in data if k not in KNOWN]
    data = {k: v for k, v in data.items() if k in KNOWN}
    for key in ("id", "eligible", "amount", "title"):
        if key in data and isinstance(data[key], (int, float)) and not isinstance(data[key], bool):
            data[key] = str(data[key])
    if isinstance(data.get("mode"), str):
        data["mode"] = MODE_ALIASES.get(data["mode"].strip(), data["mode"].strip())
    data["budget"] = _decimal(data.get("budget"), f"{source}：budget")
    if isinstance(data.get("installments"), list):
        data["installments"] = [_decimal(v, f"{source}：installments.{i}") for i, v in enumerate(data["installments"])]
    elif data.get("installments") is None:
        data.pop("installments", None)
    if isinstance(data.get("levels"), dict):
        data["levels"] = {str(k): _decimal(v, f"{source}：levels.{k}") for k, v in data["levels"].items()}
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        place = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            msg = "必填，未填写"
        raise PolicyError(f"{source}：{place}：{msg}" if place else f"{source}：{msg}") from None
    for key, condition in (("eligible", True), ("amount", False)):
        if policy.kind == "skills" and not getattr(policy, key):
            continue
        try:
            compile_expression(getattr(policy, key), COLUMNS, condition=condition, sql_nulls=True)
        except RuleCompileError as e:
            raise PolicyError(f"{source}：{key}：{e}") from None
    return policy, warnings


def load(path: str | Path) -> tuple[Policy, list[str]]:
    path = Path(path)
    try:
        return parse(path.read_text(encoding="utf-8"), path.name)
    except FileNotFoundError:
        raise PolicyError(f"找不到政策文件：{path}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"{path.name}：应为 UTF-8 编码的 YAML") from None


def load_folder(folder: str | Path, year: int | None = None) -> tuple[list[Policy], list[str]]:
    """Every ``*.yaml`` / ``*.yml`` of ``folder``, sorted by file name; a policy without a
    ``year`` takes ``year``. Two files with one id are an error."""
    policies, warnings, _ = load_folder_texts(folder, year)
    return policies, warnings


def load_folder_texts(folder: str | Path, year: int | None = None) -> tuple[list[Policy], list[str], dict[str, str]]:
    """``load_folder`` and each policy's text as stored (the file, with ``year`` added when it had none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError(f"找不到政策文件夹：{folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    if not files:
        raise PolicyError(f"{folder} 里没有政策文件（*.yaml）")
    policies, warnings, seen, texts = [], [], {}, {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"{path.name}：应为 UTF-8 编码的 YAML") from None
        if year is not None and not re.search(r"(?m)^year\s*:", text):
            text = text.rstrip("\n") + f"\nyear: {year}\n"
        policy, w = parse(text, path.name)
        if policy.id in seen:
            raise PolicyError(f"{path.name}：id {policy.id} 与 {seen[policy.id]} 重复")
        seen[policy.id] = path.name
        policies.append(policy)
        texts[policy.id] = text
        warnings += w
    return policies, warnings, texts
