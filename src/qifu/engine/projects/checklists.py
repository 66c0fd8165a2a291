"""Checklist templates per project type (YAML data, configurable by staff): the documents and
inspections of each phase, and the baseline days of the single final acceptance a phased one
replaces."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    kind: str  # document | inspection
    authority: str


@dataclass(frozen=True)
class ProjectType:
    code: str
    name: str
    baseline_days: int  # days from ready to use under one final acceptance of the whole project
    items: tuple[Item, ...]


class TemplateError(ValueError):
    pass


def parse(text: str, source: str = "模板") -> dict[str, ProjectType]:
    raw = yaml.safe_load(text) or {}
    out = {}
    for code, t in (raw.get("types") or {}).items():
        try:
            items = tuple(Item(i["code"], i["name"], i["kind"], i.get("authority", "")) for i in t["items"])
            pt = ProjectType(code, t["name"], int(t["baseline_days"]), items)
        except (KeyError, TypeError, ValueError) as e:
            raise TemplateError(f"{source}：项目类型 {code} 缺少或写错了 {e}") from None
        if any(i.kind not in ("document", "inspection") for i in items):
            raise TemplateError(f"{source}：项目类型 {code} 的检查项类型应为 document 或 inspection")
        if len({i.code for i in items}) != len(items):
            raise TemplateError(f"{source}：项目类型 {code} 的检查项编号重复")
        if pt.baseline_days <= 0:
            raise TemplateError(f"{source}：项目类型 {code} 的 baseline_days 应为正数")
        out[code] = pt
    if not out:
        raise TemplateError(f"{source}：没有项目类型")
    return out


@lru_cache(maxsize=4)
def load(path: str | None = None) -> dict[str, ProjectType]:
    """The templates at ``path`` (``QIFU_ACCEPTANCE_TEMPLATES``), else the shipped ones."""
    if path:
        return parse(Path(path).read_text(encoding="utf-8"), path)
    text = resources.files("qifu.data").joinpath("acceptance.yaml").read_text(encoding="utf-8")
    return parse(text, "acceptance.yaml")
