"""Whether two requests say the same thing, with the assistant's own Chinese words (jieba with
its dictionary, synonyms and stop words, ``engine.assistant.retrieval``) weighted as the
assistant weighs them (informative words count more). The score is the weighted share of the
shorter text's words that the other text contains, as a word or within its characters (so
that 这周 matches ...这周已经...), so that a short follow-up ("停电的问题还是没有解决") matches the
longer first request."""

from __future__ import annotations

import unicodedata


def similarity(a: str, b: str) -> float:
    from qifu.engine.assistant.retrieval import default

    assistant = default()
    if len(a) > len(b):
        a, b = b, a
    words = assistant.tokenize(a)
    if not words:
        return 0.0
    other = set(assistant.tokenize(b))
    text = unicodedata.normalize("NFKC", b).lower()
    weights = [assistant.weight(w) for w in words]
    shared = sum(wt for w, wt in zip(words, weights) if w in other or w in text)
    return shared / sum(weights)
