"""Unified social credit code (统一社会信用代码, GB 32100-2015).

The check character is position 18: weights 3^(i-1) mod 31 over the first 17 characters,
alphabet ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (no I, O, S, V, Z). See the domain reference §4.
"""

from __future__ import annotations

import re
import unicodedata

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {c: i for i, c in enumerate(ALPHABET)}
WEIGHTS = [pow(3, i, 31) for i in range(17)]
SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")

# Second character under registration authority 9 (market regulation).
TYPE_PREFIX = {"enterprise": "91", "individual": "92", "cooperative": "93"}


def normalise(code: str) -> str:
    """Full-width to half-width, strip spaces, upper-case. Never maps O to 0 or I to 1."""
    return unicodedata.normalize("NFKC", code).replace(" ", "").strip().upper()


def check_char(first17: str) -> str:
    total = sum(VALUES[c] * w for c, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why ``code`` is not a valid credit code, in Chinese, or None when it is valid."""
    if len(code) != 18:
        return f"统一社会信用代码应为18位，实际为{len(code)}位"
    if not SHAPE.match(code):
        return "统一社会信用代码只能由数字和大写字母组成（不含I、O、S、V、Z）"
    expected = check_char(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码校验位错误：第18位应为{expected}"
    return None


def is_valid(code: str) -> bool:
    return problem(code) is None


def make(first17: str) -> str:
    """Append the check character (used by the synthetic county)."""
    return first17 + check_char(first17)
