"""Files written whole, for readers in other processes and threads: each writer writes under a
temporary name of its own beside the target, then renames it into place. A reader sees the old
file or the new, never half of one; two writers at once (two server workers refreshing the same
copy, the demo's filling process beside them) each rename a file they wrote whole, the last one
staying. A name shared by the writers (``x.tmp``) let one rename the file the other was still
writing, and the other's rename then fail: a page's error."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def own_tmp(target: str | Path) -> Path:
    """A temporary name beside ``target``, this process's and this thread's own."""
    target = Path(target)
    return target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_whole(target: Path, text: str) -> None:
    """``text`` written to ``target`` (UTF-8) through a temporary name of this writer's own."""
    tmp = own_tmp(target)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
