"""Where `qifu demo` is in filling the modules' data behind a running server: written by the
process that fills them, read by every page's banner (``web.context_processors.demo``).

A small JSON file under ``$QIFU_DATA_DIR/run``, replaced whole at each step (a reader never sees
half of one), removed when the data are all in. A demo stopped in the middle leaves it behind;
the next `qifu demo` removes it before it starts."""

from __future__ import annotations

import json
from pathlib import Path

from qifu import config
from qifu.engine.files import write_whole


def path() -> Path:
    return config.data_dir() / "run" / "demo-filling.json"


def mark(done: int, total: int, step: str, failed: str = "") -> None:
    """Step ``done + 1`` of ``total`` (named ``step``) under way; or, with ``failed``, stopped there."""
    path().parent.mkdir(parents=True, exist_ok=True)
    write_whole(path(), json.dumps({"done": done, "total": total, "step": step, "failed": failed}, ensure_ascii=False))


def clear() -> None:
    path().unlink(missing_ok=True)


def state() -> dict | None:
    """The step under way, or None when nothing is being filled (or the file cannot be read:
    a banner is not worth an error page)."""
    try:
        found = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
