"""Settings from the environment, read in one place (Django-free).

Every variable is listed with its default in ``.env.example``.
"""

from __future__ import annotations

import os
from pathlib import Path


class ConfigError(Exception):
    pass


def get(key: str, default: str | None = None) -> str | None:
    value = os.environ.get(key)
    return value if value not in (None, "") else default


def get_bool(key: str, default: bool = False) -> bool:
    value = get(key)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, not {value!r}")


def data_dir() -> Path:
    return Path(get("QIFU_DATA_DIR", "./var")).resolve()


def database_url() -> str:
    return get("QIFU_DATABASE_URL") or f"sqlite:///{data_dir() / 'qifu.sqlite3'}"
