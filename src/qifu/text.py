"""Free text typed by people: refuse what a database cannot store or a reader cannot see."""

from __future__ import annotations

import re

# NUL cannot be stored in PostgreSQL text; other C0/C1 controls (but tab and newlines) are
# never typed on purpose and hide in exports.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def problem(value: str) -> str | None:
    """A reason in Chinese if ``value`` holds control characters, else None."""
    if CONTROL.search(value):
        return "含有无法保存的控制字符，请重新输入"
    return None


def clean(value: str, max_length: int | None = None) -> str:
    """``value`` stripped; raises ValueError with a Chinese reason for control characters."""
    if reason := problem(value):
        raise ValueError(reason)
    value = value.strip()
    return value[:max_length] if max_length else value
