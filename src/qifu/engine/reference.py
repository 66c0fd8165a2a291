"""Reference data shipped in the package: townships and the industry classification."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

_INDUSTRY_CODE = re.compile(r"^([A-T]?)([0-9]{2})([0-9]{2})?$")


@dataclass(frozen=True)
class Township:
    code: str
    name: str
    kind: str
    postcode: str


@cache
def county() -> dict:
    text = resources.files("qifu.data").joinpath("townships.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def townships() -> list[Township]:
    return [Township(**t) for t in county()["townships"]]


def township_aliases() -> dict[str, str]:
    """Name as written in a file -> township code. Accepts the name with the county prefix."""
    prefix = county()["county"]
    out: dict[str, str] = {}
    for t in townships():
        out[t.name] = t.code
        out[prefix + t.name] = t.code
        out["浙江省宁波市" + prefix + t.name] = t.code
    return out


@cache
def industries() -> dict[str, str]:
    """Code -> name: section letters, two-digit divisions and four-digit classes."""
    text = resources.files("qifu.data").joinpath("industries.csv").read_text(encoding="utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


@cache
def section_of_division() -> dict[str, str]:
    out: dict[str, str] = {}
    section = ""
    for code in industries():
        if code.isalpha():
            section = code
        elif len(code) == 2:
            out[code] = section
    return out


def normalise_industry(code: str) -> tuple[str | None, str | None]:
    """('C3857', None) for a valid code written as C3857 or 3857, else (None, reason)."""
    m = _INDUSTRY_CODE.match(code.strip().upper())
    if not m:
        return None, "行业代码应为4位数字，可带门类字母（如 C3857 或 3857）"
    letter, division, rest = m.groups()
    section = section_of_division().get(division)
    if section is None:
        return None, f"行业大类 {division} 不在 GB/T 4754-2017 中"
    if letter and letter != section:
        return None, f"门类字母应为 {section}（大类 {division} 属于门类 {section}）"
    if rest is None:
        return None, "行业代码应到小类（4位数字），如 C3857"
    return f"{section}{division}{rest}", None


def industry_name(code: str) -> str:
    names = industries()
    digits = code[1:]
    return names.get(digits) or names.get(digits[:2], "")
