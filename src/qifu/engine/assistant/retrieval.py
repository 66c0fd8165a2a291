"""Retrieval for the assistant: jieba tokens, synonyms, BM25 ranking and a confidence score.

The confidence is the share of the question's information that the best entry covers: each
question word is weighted by how informative it is in general Chinese (jieba's dictionary
frequencies, so 怎么 and 公司 weigh little and 商标 or 贷款 weigh much), and the weights of the
words the best entry contains are divided by the weights of all of them. A question about
something the knowledge base does not cover leaves its most informative words unmatched and
is handed to a person.
"""

from __future__ import annotations

import logging
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import bm25s
import jieba
import numpy as np
import yaml

jieba.setLogLevel(logging.WARNING)
logging.getLogger("bm25s").setLevel(logging.WARNING)

THRESHOLD = 0.25  # below this confidence the question goes to a person (tuned on bench/assistant_questions.yaml)
OOV_WEIGHT_CAP = 4.0
STOPWORDS = set(
    "的 了 吗 呢 啊 呀 吧 么 嘛 哦 哈 我 我们 你 你们 您 他 她 它 是 在 有 和 与 及 或 要 需要 请问 请 问 问一下 一下 "
    "怎么 怎样 怎么样 如何 什么 啥 哪些 哪个 哪里 哪 几 多少 可以 能 能不能 会 会不会 还 也 都 就 这 那 这个 那个 一个 个 "
    "怎么办 办 咨询 想 知道 帮 帮忙 一般 应该 是否 是不是 有没有 没有 不 了解 下 时 中 里 上 对 把 被 让 给 从 到 为 "
    "我家 我们家 本 该 这样 那样 现在 今年 去年 已经 还是 因为 所以 但是 如果 就是 自己 老板 店 家 吗？".split()
)
PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)


@dataclass
class Entry:
    id: str
    title: str
    answer: str
    basis: str
    questions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


@dataclass
class OutOfScope:
    id: str
    topic: str
    questions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


@dataclass
class Answer:
    answer: str
    score: float
    sources: list[dict]
    handoff: bool
    entry_id: str | None
    tokens: list[str]
    elapsed_ms: float
    topic: str | None = None  # for a hand-off: the staff queue topic, when known

    def as_json(self) -> dict:
        return {
            "answer": self.answer,
            "score": round(self.score, 4),
            "sources": self.sources,
            "handoff": self.handoff,
            "entry_id": self.entry_id,
            "topic": self.topic,
        }


HANDOFF_ANSWER = (
    "这个问题我没有把握回答准确，已转给工作人员，会尽快联系您。年报相关的常见问题（截止时间、万元单位、怎么更正、"
    "异常名录移出、防诈骗等）可以直接问我。"
)


def _tidy(text: str) -> str:
    """YAML folds lines with a space; Chinese text has none between characters."""
    return re.sub(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])", "", text.strip())


def _data(name: str) -> str:
    return resources.files("qifu.engine.assistant").joinpath(name).read_text(encoding="utf-8")


class Assistant:
    def __init__(self, knowledge: str | None = None, threshold: float = THRESHOLD, extra_entries=()):
        started = time.perf_counter()
        self.threshold = threshold
        raw = yaml.safe_load(Path(knowledge).read_text(encoding="utf-8") if knowledge else _data("knowledge.yaml"))
        self.entries = [Entry(**{**e, "answer": _tidy(e["answer"])}) for e in raw["entries"]] + list(extra_entries)
        self.out_of_scope = [OutOfScope(**e) for e in raw.get("out_of_scope", [])]
        self.synonyms = {}
        for canonical, words in yaml.safe_load(_data("synonyms.yaml")).items():
            for w in words:
                self.synonyms[w.lower()] = canonical
        self.tk = jieba.Tokenizer()
        self.tk.initialize()
        words = resources.files("qifu.engine.assistant").joinpath("words.txt")
        with resources.as_file(words) as path:
            self.tk.load_userdict(str(path))
        for term in list(self.synonyms) + list(set(self.synonyms.values())):
            if len(term) > 1:
                self.tk.add_word(term, 300)
        self.total = float(self.tk.total)
        docs = []
        for e in self.entries:
            text = [e.title, e.title, *e.questions, *e.keywords, *e.keywords, e.answer]
            docs.append([t for chunk in text for t in self.tokenize(chunk)])
        for o in self.out_of_scope:
            text = [*o.questions, *o.keywords, *o.keywords]
            docs.append([t for chunk in text for t in self.tokenize(chunk)])
        self.doc_tokens = [set(d) for d in docs]
        # Character bigrams as well as words: robust to segmentation and to phrasings the
        # entries do not contain word for word.
        docs = [d + [g for chunk in self._chunks(i) for g in self.bigrams(chunk)] for i, d in enumerate(docs)]
        self.retriever = bm25s.BM25(k1=1.2, b=0.75)
        self.retriever.index(docs, show_progress=False)
        self.vocab = set().union(*(set(d) for d in docs))
        self.load_seconds = time.perf_counter() - started

    def tokenize(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", str(text)).lower()
        out = []
        for tok in self.tk.lcut_for_search(text):
            tok = tok.strip()
            if not tok or PUNCT.match(tok) or tok in STOPWORDS:
                continue
            out.append(self.synonyms.get(tok, tok))
        return out

    def _chunks(self, index: int) -> list[str]:
        if index < len(self.entries):
            e = self.entries[index]
            return [e.title, *e.questions, *map(str, e.keywords)]
        o = self.out_of_scope[index - len(self.entries)]
        return [*o.questions, *map(str, o.keywords)]

    @staticmethod
    def bigrams(text: str) -> list[str]:
        chars = [c for c in unicodedata.normalize("NFKC", str(text)) if "\u4e00" <= c <= "\u9fff"]
        return ["§" + a + b for a, b in zip(chars, chars[1:])]

    def weight(self, token: str) -> float:
        """How informative a word is in general Chinese (rare words weigh more). A word no entry
        knows is capped: out-of-scope topics are caught by their own entries, and a filer's
        unusual wording should not outweigh the words that do match."""
        freq = self.tk.FREQ.get(token, 0)
        w = min(12.0, max(1.0, math.log(self.total / (freq + 1)) - 6.0))
        return w if token in self.vocab else min(w, OOV_WEIGHT_CAP)

    def rank(self, tokens: list[str], question: str = "") -> np.ndarray:
        known = [t for t in tokens + self.bigrams(question) if t in self.vocab]
        if not known:
            return np.zeros(len(self.doc_tokens))
        return np.asarray(self.retriever.get_scores(known))

    def confidence(self, tokens: list[str], best: int) -> float:
        unique = list(dict.fromkeys(tokens))
        if not unique:
            return 0.0
        weights = {t: self.weight(t) for t in unique}
        covered = sum(w for t, w in weights.items() if t in self.doc_tokens[best])
        return covered / sum(weights.values())

    def ask(self, question: str) -> Answer:
        started = time.perf_counter()
        tokens = self.tokenize(question)
        scores = self.rank(tokens, question)
        best = int(np.argmax(scores)) if len(scores) else 0
        if not tokens or scores[best] <= 0:
            return Answer(HANDOFF_ANSWER, 0.0, [], True, None, tokens, (time.perf_counter() - started) * 1000)
        score = self.confidence(tokens, best)
        if best >= len(self.entries):
            topic = self.out_of_scope[best - len(self.entries)].topic
            return Answer(HANDOFF_ANSWER, score, [], True, None, tokens, (time.perf_counter() - started) * 1000, topic)
        entry = self.entries[best]
        handoff = score < self.threshold
        sources = [{"id": entry.id, "title": entry.title, "basis": entry.basis}]
        answer = HANDOFF_ANSWER if handoff else f"{entry.answer}\n\n依据：{entry.basis}"
        return Answer(answer, score, sources, handoff, entry.id, tokens, (time.perf_counter() - started) * 1000)


@lru_cache(maxsize=1)
def default() -> Assistant:
    return Assistant()
