"""Where compiled SQL is kept between processes: the folder the app names at start (the data
folder's cache), or None to keep it per process only. Nothing else here, and nothing heavy
imported, so that naming it costs nothing to a process that compiles nothing (the compiler
imports sqlglot and pydantic); ``expressions`` reads it."""

from __future__ import annotations

from pathlib import Path

folder: Path | None = None


def keep_in(path: str | Path | None) -> None:
    global folder
    folder = Path(path) if path is not None else None
