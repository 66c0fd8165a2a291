"""The annual-report assistant: Chinese questions answered from a knowledge base.

Django-free. ``knowledge.yaml`` holds the entries (answer and legal basis), ``synonyms.yaml``
maps filers' words to the knowledge base's, ``words.txt`` teaches jieba the domain's terms.
``retrieval.Assistant`` tokenises with jieba, ranks entries with BM25 (bm25s) and says how
sure it is; below the threshold, or out of scope, it hands the question to a person.
"""
