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


def typed(value: str, what: str, error: type[Exception] = ValueError) -> str:
    """``value`` stripped, or ``error`` naming ``what`` (the field: 检查情况含有无法保存的控制字符…)
    if it holds control characters: what staff typed into a form, for an action to store."""
    try:
        return clean(value or "")
    except ValueError as e:
        raise error(f"{what}{e}") from None


# a reason, finding or note that a decision quotes or a reader acts on: at least this many
# characters (a word or two explains nothing)
AT_LEAST = 4


def written(value: str, what: str, error: type[Exception], missing: str, at_least: int = AT_LEAST) -> str:
    """What someone wrote to explain a step (a reason, what was found, a note): ``value`` as
    ``typed`` reads it, or ``error(missing)`` when it has fewer than ``at_least`` characters
    (``missing`` says what to write, best with an example: 请写明…（至少4个字），如：…)."""
    value = typed(value, what, error)
    if len(value) < at_least:
        raise error(missing)
    return value


def shorten(value: str, width: int) -> str:
    """``value`` cut to ``width`` characters, the last an ellipsis when anything was cut (a
    chart's label: a project's name that ends mid-word looks like another name)."""
    return value if len(value) <= width else value[:width - 1] + "…"


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def nul_field(request) -> tuple[str, str] | None:
    """Where a request's query parameter or form field (urlencoded or multipart) holds NUL, as
    ("query" or "form", its name without the NUL), else None. PostgreSQL can neither store NUL
    nor compare a column with a value holding one; ``qifu.web.nul`` refuses it for every page,
    Open311's guard in that standard's error format."""
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in v for v in values):
            return ("query", name.replace("\x00", ""))
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.content_type in FORM_TYPES:
        for name, values in request.POST.lists():
            if "\x00" in name or any("\x00" in v for v in values):
                return ("form", name.replace("\x00", ""))
    return None
