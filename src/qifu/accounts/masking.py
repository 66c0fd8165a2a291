"""Masking personal data in lists: enough to recognise, not enough to copy."""

from __future__ import annotations


def phone(value: str | None) -> str:
    """13812345678 -> 138****5678; 0574-63012345 -> 0574-****2345."""
    if not value:
        return ""
    v = value.strip()
    if len(v) <= 4:
        return "*" * len(v)
    keep_head = 3 if len(v) >= 11 and "-" not in v else v.find("-") + 1 if "-" in v else 2
    return v[:keep_head] + "*" * max(len(v) - keep_head - 4, 1) + v[-4:]


def name(value: str | None) -> str:
    """张三丰 -> 张**; a person's name keeps its first character only."""
    if not value:
        return ""
    v = value.strip()
    return v[0] + "*" * max(len(v) - 1, 1)


def email(value: str | None) -> str:
    """zhang.san@example.cn -> z***@example.cn"""
    if not value or "@" not in value:
        return name(value)
    local, _, domain = value.partition("@")
    return f"{local[0]}***@{domain}"
