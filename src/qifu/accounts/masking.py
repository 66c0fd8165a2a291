"""Masking personal data in lists: enough to recognise, not enough to copy."""

from __future__ import annotations

import re
from collections.abc import Iterable


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


# A mobile number, a landline with its area code, an email address: what a staff page must not
# show in full inside free text (finding messages quote the values a report holds).
MOBILE = re.compile(r"(?<![0-9])(?:\+?86-?)?1[3-9][0-9]{9}(?![0-9])")
LANDLINE = re.compile(r"(?<![0-9])0[0-9]{2,3}-?[0-9]{7,8}(?![0-9])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def value(v: str | None) -> str:
    """A contact value masked by its kind: an address by ``email``, anything else by ``phone``."""
    if not v:
        return ""
    return email(v) if "@" in v else phone(v)


def text(v: str | None, known: Iterable[str | None] = ()) -> str:
    """``v`` with every personal value in it masked: the ``known`` values (an entity's phones
    and emails as filed, even malformed ones such as a ten-digit mobile), then anything shaped
    like a mobile number, a landline or an email address."""
    if not v:
        return ""
    for k in sorted({x.strip() for x in known if x and len(x.strip()) >= 5}, key=len, reverse=True):
        v = v.replace(k, value(k))
    v = EMAIL.sub(lambda m: email(m.group()), v)
    v = MOBILE.sub(lambda m: phone(m.group()), v)
    return LANDLINE.sub(lambda m: phone(m.group()), v)
