"""A progress bar on a terminal, silence elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Bar:
    def __init__(self, title: str):
        self.title = title
        self.bar: tqdm | None = None
        self.phase = ""
        self.enabled = sys.stderr.isatty()

    def update(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None or phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=total, desc=f"{self.title}·{phase}", unit="行", file=sys.stderr, leave=False)
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
