"""Asking the assistant: the answer, and a staff-queue item when it hands over."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qifu import text
from qifu.assistant.models import Handoff, KnowledgeEntry

if TYPE_CHECKING:  # the retrieval (jieba, BM25) is imported when first asked, not by Django's admin at start-up
    from qifu.engine.assistant.retrieval import Answer, Assistant


def do_propose_entry(*, question: str, answer: str, source: str, user) -> KnowledgeEntry:
    """A staff member proposes an entry (e.g. from a good answer to a request); it takes effect
    when an administrator approves it (``do_review_entry``)."""
    question, answer = text.clean(question, 200), text.clean(answer, 2000)
    if len(question) < 4 or len(answer) < 10:
        raise ValueError("问题至少4个字，答复至少10个字")
    return KnowledgeEntry.objects.create(question=question, answer=answer, source=source[:100], proposed_by=user)


def do_review_entry(entry: KnowledgeEntry, user, approve: bool) -> None:
    entry.status = KnowledgeEntry.Status.APPROVED if approve else KnowledgeEntry.Status.REJECTED
    entry.reviewed_by = user
    entry.save(update_fields=["status", "reviewed_by", "updated_at"])


_assistant: tuple[tuple, Assistant] | None = None


def assistant() -> Assistant:
    """The shipped knowledge base plus the approved staff entries, one entry per policy the
    county has loaded and one per kind of shared instrument (rebuilt when any of them changes)."""
    global _assistant
    from django.db.models import Count, Max

    from qifu.engine.assistant.retrieval import Assistant, default
    from qifu.labs.models import Lab
    from qifu.policies.models import Policy

    stamp = (*KnowledgeEntry.objects.filter(status=KnowledgeEntry.Status.APPROVED)
             .aggregate(n=Count("id"), last=Max("updated_at")).values(),
             *Policy.objects.aggregate(n=Count("id"), last=Max("updated_at")).values(),
             *Lab.objects.aggregate(n=Count("id"), last=Max("updated_at")).values())
    if stamp[0] == 0 and stamp[2] == 0 and stamp[4] == 0:
        return default()
    if _assistant is None or _assistant[0] != stamp:
        _assistant = (stamp, Assistant(extra_entries=extra_entries()))
    return _assistant[1]


def extra_entries() -> list:
    from qifu.engine.assistant.retrieval import Entry
    from qifu.policies.models import Policy

    extra = [Entry(id=f"staff-{e.id}", title=e.question, answer=e.answer, basis=e.source or "工作人员答复",
                   questions=[e.question]) for e in KnowledgeEntry.objects.filter(status=KnowledgeEntry.Status.APPROVED)]
    for p in Policy.objects.order_by("-year", "code"):
        how = ("免申即享：符合条件的企业会收到通知，在企业端“惠企政策”里核对后确认收款账户即可，不用提交材料。"
               if p.mode == Policy.Mode.AUTOMATIC else "需申请：在企业端“惠企政策”里提交申请说明和证明材料，主管部门审核。")
        extra.append(Entry(
            id=f"policy-{p.code}", title=p.title,
            answer=f"{p.summary or p.title}（{p.year} 年度数据，{p.department or '主管部门'}）。{how}",
            basis=p.basis or f"政策 {p.code}", questions=[p.title, f"{p.title}怎么申请", f"{p.title}的条件是什么"],
            keywords=[k for k in (p.category, p.department) if k]))
    return extra + _instrument_entries()


def _instrument_entries() -> list:
    """One entry per kind of shared instrument, naming the labs that offer it, so that a filer's
    "哪里能做盐雾试验" finds the instrument as well as how booking works."""
    from qifu.engine.assistant.retrieval import Entry
    from qifu.labs.models import Instrument

    kinds: dict[str, list] = {}
    for i in Instrument.objects.filter(active=True, lab__active=True).select_related("lab__town").order_by("lab__code"):
        kinds.setdefault(i.name, []).append(i)
    out = []
    for name, items in sorted(kinds.items()):
        first = items[0]
        where = "；".join(f"{i.lab.name}（{i.lab.town.name}，{i.price_per_hour} 元/小时）" for i in items[:6])
        words = list(dict.fromkeys(first.capabilities.split()))
        out.append(Entry(
            id=f"instrument-{name}", title=f"{name}（共享实验室）",
            answer=f"{name}可以做：{first.capabilities}。开放预约的实验室：{where}。打开企业端“共享实验室”，"
                   f"搜索“{name}”即可查看空闲时段并在线预约，创新券可抵扣部分费用。",
            basis="《国务院关于国家重大科研基础设施和大型科研仪器向社会开放的意见》（国发〔2014〕70号）；本县共享实验室开放目录", questions=[f"哪里可以做{w}" for w in words[:4]] + [f"{name}在哪里可以用"],
            keywords=[name, *words[:8]]))
    return out


def ask(question: str, channel: str = "web", contact: str = "") -> tuple[Answer, Handoff | None]:
    question = (question or "").strip()[:500]
    answer = assistant().ask(question)
    item = None
    if answer.handoff and question:
        item = Handoff.objects.create(
            question=question, topic=answer.topic or "", best_entry=answer.entry_id or "", score=answer.score,
            channel=channel, contact=contact[:100],
        )
    return answer, item
