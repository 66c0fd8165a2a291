"""The Django-free engine: contract, file reading, validation, synthetic data.

Nothing under ``qifu.engine`` may import Django; ``tests/test_engine_is_django_free.py``
imports every module here in a fresh interpreter to keep it that way.
"""
