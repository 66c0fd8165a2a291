"""Work a person asks for in a page and `qifu worker` does: a row per request in a table of its
own (``web.Export``, 后台导出; ``policies.MatchRun``, 保存并匹配), taken oldest first.

One worker runs per installation and never runs a queue's job twice at once, so a row it finds
running the first time it looks, in a new process, was interrupted by the last worker's stop:
it is queued again, or failed once it has been tried ``attempts`` times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import models
from django.db.models import F
from django.utils import timezone


@dataclass
class Queue:
    model: type[models.Model]  # with status, attempts, created_at, started_at, finished_at, error
    queued: str
    running: str
    failed: str
    attempts: int  # an interrupted row is queued again until it has been tried this often
    gave_up: str  # the error of one interrupted that often
    claim: dict = field(default_factory=dict)  # fields a row starts over with when it is taken
    requeue: dict = field(default_factory=dict)  # and when an interrupted one is queued again
    recovered: bool = False  # this process has looked for rows the last worker left running

    def run(self, make: Callable[[models.Model], object]) -> int:
        """``make`` each row ``take`` gives; how many were taken up."""
        n = 0
        for row in self.take():
            make(row)
            n += 1
        return n

    def take(self) -> Iterator[models.Model]:
        """Each queued row, oldest first, once this process has claimed it (running, its attempt
        counted); rows queued meanwhile are taken too."""
        if not self.recovered:
            self.recovered = True
            left = self.model.objects.filter(status=self.running)
            left.filter(attempts__gte=self.attempts).update(status=self.failed, finished_at=timezone.now(),
                                                            error=self.gave_up)
            left.update(status=self.queued, **self.requeue)
        while (row := self.model.objects.filter(status=self.queued).order_by("created_at", "pk").first()) is not None:
            if self.model.objects.filter(pk=row.pk, status=self.queued).update(
                    status=self.running, started_at=timezone.now(), attempts=F("attempts") + 1, **self.claim):
                row.refresh_from_db()
                yield row
