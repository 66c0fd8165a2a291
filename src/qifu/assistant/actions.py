"""Asking the assistant: the answer, and a staff-queue item when it hands over."""

from __future__ import annotations

from qifu.assistant.models import Handoff
from qifu.engine.assistant.retrieval import Answer, default


def ask(question: str, channel: str = "web", contact: str = "") -> tuple[Answer, Handoff | None]:
    question = (question or "").strip()[:500]
    answer = default().ask(question)
    item = None
    if answer.handoff and question:
        item = Handoff.objects.create(
            question=question, topic=answer.topic or "", best_entry=answer.entry_id or "", score=answer.score,
            channel=channel, contact=contact[:100],
        )
    return answer, item
