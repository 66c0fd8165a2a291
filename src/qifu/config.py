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


def cache_dir() -> Path:
    """What is kept only to be faster next time (compiled plans and expressions): safe to empty."""
    return data_dir() / "cache"


def database_url() -> str:
    return get("QIFU_DATABASE_URL") or f"sqlite:///{data_dir() / 'qifu.sqlite3'}"


def is_demo() -> bool:
    """Set by `qifu demo` for itself and the worker it starts; never in a deployment."""
    return get_bool("QIFU_DEMO", False)


def secret_key() -> str | None:
    """``QIFU_SECRET_KEY``; in the demo, a key made once and kept in the data directory, so a
    restarted demo keeps its sessions. None otherwise (see ``require_secret_key``)."""
    key = get("QIFU_SECRET_KEY")
    if key or not is_demo():
        return key
    path = data_dir() / "demo-secret-key"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def require_secret_key() -> None:
    """The server signs sessions and hashes sign-in codes with the secret key: without a fixed
    one, every restart would end every session and void every code sent."""
    if not secret_key():
        raise ConfigError("未设置 QIFU_SECRET_KEY：网页服务需要固定的密钥（如 python -c \"import secrets; "
                          "print(secrets.token_urlsafe(50))\" 生成一个，写入环境变量或 .env）")


REAL_SMS_BACKENDS = ("http",)


def require_real_sms() -> None:
    """A worker that sends on its own must send for real: the file and console backends mark
    texts sent that nobody receives. Allowed only in the demo."""
    backend = get("QIFU_SMS_BACKEND")
    if backend in REAL_SMS_BACKENDS or is_demo():
        return
    if backend is None:
        raise ConfigError("未配置短信通道：定时发送需要 QIFU_SMS_BACKEND=http 和 QIFU_SMS_GATEWAY_URL"
                          "（开发用的 file、console 只在 qifu demo 中可用）")
    raise ConfigError(f"QIFU_SMS_BACKEND={backend} 不会真正发出短信，定时发送拒绝启动；"
                      "请配置 QIFU_SMS_BACKEND=http 和 QIFU_SMS_GATEWAY_URL")


# The native libraries' own thread pools: OpenMP (scikit-learn's gradient boosting, which learns
# the season's reminder plan) and OpenBLAS (numpy). Each starts one thread per core and spins
# them while it waits for work. Two processes doing so on the same cores slow each other many
# times over (measured in CI: a test of 17 s took 260 s beside another process's), so each
# process of a deployment gets a share: a web worker one thread (the server already runs one
# process per core), `qifu worker` half the cores, leaving the other half to the web.
THREAD_POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def compute_threads(role: str) -> int:
    """The native thread pools' size for a process of ``role`` ("serve" or "worker"):
    ``QIFU_COMPUTE_THREADS`` if set, else one for the web, half the cores for the worker."""
    value = get("QIFU_COMPUTE_THREADS")
    if value is not None:
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"QIFU_COMPUTE_THREADS 应为正整数，而不是 {value!r}")
        return int(value)
    if role == "serve":
        return 1
    return max(1, (os.cpu_count() or 1) // 2)


def limit_compute_threads(role: str) -> int:
    """Size the native thread pools of this process and those it starts, before any of those
    libraries loads (they read the variables once, when loaded). A variable the operator set
    is kept. Returns OpenMP's size as set."""
    threads = compute_threads(role)
    for name in THREAD_POOL_VARIABLES:
        os.environ.setdefault(name, str(threads))
    given = os.environ["OMP_NUM_THREADS"]
    return int(given) if given.isdigit() else threads
