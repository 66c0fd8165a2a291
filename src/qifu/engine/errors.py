"""Errors the engine reports to people: each says what is wrong in Chinese."""

from __future__ import annotations

from dataclasses import dataclass


class FileProblem(Exception):
    """The file as a whole cannot be read (encoding, format, header)."""


@dataclass(frozen=True, order=True)
class RowError:
    row: int
    field: str
    value: str
    reason: str

    def line(self, label: str = "") -> str:
        if not self.field:  # the row as a whole (too few or too many cells)
            return f"第{self.row}行：{self.reason}"
        named = f"{self.field}（{label}）" if label else self.field
        return f"第{self.row}行 字段 {named} 值“{self.value}”：{self.reason}"


class InvalidFile(Exception):
    """Some rows are invalid; nothing from the file was stored."""

    def __init__(self, errors: list[RowError], warnings: list[str] | None = None):
        self.errors = sorted(errors)
        self.warnings = warnings or []
        super().__init__(f"{len(self.errors)} 处错误")
