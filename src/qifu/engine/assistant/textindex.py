"""Chinese retrieval over any short documents (a lab's instruments, later experts' profiles),
tokenised exactly as the assistant tokenises questions: jieba with the assistant's words and
synonyms, plus character bigrams, ranked by BM25. Each hit names the query words it matched,
so a page can say why it was found."""

from __future__ import annotations

from dataclasses import dataclass

import bm25s
import numpy as np

from qifu.engine.assistant import retrieval


@dataclass(frozen=True)
class Hit:
    index: int
    score: float
    words: tuple[str, ...]  # the query's words the document contains


class TextIndex:
    def __init__(self, documents: list[str]):
        self.assistant = retrieval.default()
        self.words = [self._words(d) for d in documents]
        docs = [w + self.assistant.bigrams(d) for w, d in zip(self.words, documents)]
        self.sets = [set(d) for d in docs]
        self.vocab = set().union(*self.sets) if self.sets else set()
        self.retriever = bm25s.BM25(k1=1.2, b=0.75)
        if documents:
            self.retriever.index(docs, show_progress=False)

    def _words(self, text: str) -> list[str]:
        return self.assistant.tokenize(text)

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        """Documents that share a word or a pair of characters with the query, best first; an
        empty query or no document finds nothing."""
        words = list(dict.fromkeys(self._words(query)))
        terms = [t for t in words + self.assistant.bigrams(query) if t in self.vocab]
        if not terms:
            return []
        scores = np.asarray(self.retriever.get_scores(terms))
        order = np.argsort(-scores, kind="stable")[:limit]
        return [Hit(int(i), float(scores[i]), tuple(w for w in words if w in self.sets[i]))
                for i in order if scores[i] > 0]
