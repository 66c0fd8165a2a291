"""Routing a request's text to a category (§1.7.1): a model learnt from the requests the
county has classified (imported history, confirmed by staff) and from a seed of hand-written
examples shipped with the package, so that a county with no history yet routes too.

Features: the assistant's own Chinese words (jieba with its dictionary, synonyms and stop
words: ``engine.assistant.retrieval``), as words and word pairs, and character 1–3-grams
(robust to segmentation and typos); TF-IDF; a multinomial logistic regression, whose
probability is the score. Staff overrides (a phrase that always means a category) are
applied first and score 1.0.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from qifu.engine.files import own_tmp
from qifu.engine.requests.categories import BY_CODE, CODES

VERSION = "1"  # bump when the features or the model change: cached models are relearnt


@dataclass(frozen=True)
class Route:
    category: str
    score: float
    override: str | None = None  # the phrase that decided it, if an override did

    def as_json(self, department: str) -> dict:
        return {"category": self.category, "category_name": BY_CODE[self.category].name, "department": department,
                "score": round(self.score, 4), "override": self.override}


def _shipped(name: str) -> dict[str, list[str]]:
    return yaml.safe_load(resources.files("qifu.engine.requests").joinpath(name).read_text(encoding="utf-8"))


def seed() -> list[tuple[str, str]]:
    """What the package ships to learn from: hand-written examples (seed.yaml) and each
    category's words (lexicon.yaml), as (text, category)."""
    return [(text, code) for name in ("seed.yaml", "lexicon.yaml") for code, texts in _shipped(name).items()
            for text in texts]


def _tokenizer():
    from qifu.engine.assistant.retrieval import default

    assistant = default()
    return assistant.tokenize


def _words(text: str) -> list[str]:
    return _tokenizer()(text)


class Router:
    def __init__(self, model, overrides: Sequence[tuple[str, str]] = ()):
        self.model = model
        self.overrides = sorted(((p.strip(), c) for p, c in overrides if p.strip()), key=lambda pc: -len(pc[0]))

    def route(self, text: str) -> Route:
        return self.route_many([text])[0]

    def route_many(self, texts: Sequence[str]) -> list[Route]:
        """Each text's route, as ``route`` gives it, the model asked once for all of them (a
        ledger of a year's requests: one call instead of thousands)."""
        routes: list[Route | None] = [None] * len(texts)
        asked = []
        for i, text in enumerate(texts):
            phrase, code = next(((p, c) for p, c in self.overrides if p in text), (None, None))
            if phrase is None:
                asked.append(i)
            else:
                routes[i] = Route(code, 1.0, phrase)
        if asked:
            for i, proba in zip(asked, self.model.predict_proba([texts[i] for i in asked])):
                best = int(proba.argmax())
                routes[i] = Route(str(self.model.classes_[best]), float(proba[best]))
        return routes

    def with_overrides(self, overrides: Sequence[tuple[str, str]]) -> Router:
        return Router(self.model, overrides)


def train(examples: Iterable[tuple[str, str]]):
    """A fitted pipeline over (text, category) pairs."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    texts, labels = [], []
    for text, code in examples:
        if code in BY_CODE and text and text.strip():
            texts.append(text.strip()[:2000])
            labels.append(code)
    features = FeatureUnion([
        ("words", TfidfVectorizer(tokenizer=_words, token_pattern=None, lowercase=False, ngram_range=(1, 2),
                                  sublinear_tf=True, min_df=1)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2)),
    ])
    model = make_pipeline(features, LogisticRegression(C=8.0, max_iter=3000, class_weight="balanced"))
    model.fit(texts, labels)
    return model


def fingerprint(examples: Sequence[tuple[str, str]]) -> str:
    h = hashlib.sha1(VERSION.encode())
    for text, code in examples:
        h.update(code.encode())
        h.update(text.encode())
    return h.hexdigest()[:16]


def load_or_train(examples: Sequence[tuple[str, str]], folder: Path | None):
    """The model for these examples, from ``folder`` if it was learnt before, else learnt now
    (and kept there). The file is this process's own pickle, never one from elsewhere."""
    key = fingerprint(examples)
    path = folder / f"request-router-{key}.pkl" if folder else None
    if path and path.exists():
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass
    model = train(examples)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = own_tmp(path)
        with tmp.open("wb") as fh:
            pickle.dump(model, fh)
        tmp.replace(path)
    return model


@lru_cache(maxsize=1)
def seed_router() -> Router:
    """Learnt from the seed alone (a county with no history)."""
    return Router(train(seed()))


def categories() -> tuple[str, ...]:
    return CODES
