"""Settings: every variable the code reads is in .env.example with the code's own default, and
a deployment's settings hold (secret key, HTTPS behind a proxy)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READ = re.compile(r'get(_bool)?\(\s*"(QIFU_[A-Z0-9_]+)"(?:\s*,\s*("([^"]*)"|True|False))?')


def _read_by_code() -> dict[str, set[str | None]]:
    found: dict[str, set[str | None]] = {}
    for path in (ROOT / "src" / "qifu").rglob("*.py"):
        for m in READ.finditer(path.read_text(encoding="utf-8")):
            is_bool, name, raw, text = m.groups()
            default = text if text is not None else (raw.lower() if raw else None)
            found.setdefault(name, set()).add(default)
    return found


def _listed() -> dict[str, str]:
    listed = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key not in listed, f"{key} listed twice"
            listed[key] = value
    return listed


def test_env_example_lists_every_variable_the_code_reads_and_no_other():
    code, listed = _read_by_code(), _listed()
    assert len(code) > 30
    assert set(code) - set(listed) == set(), "read by the code but not in .env.example"
    assert set(listed) - set(code) == set(), "in .env.example but read nowhere"


def test_env_example_values_are_the_code_defaults():
    code, listed = _read_by_code(), _listed()
    for name, value in listed.items():
        defaults = {d for d in code[name] if d not in (None, "")}
        if value:  # an empty value means "the default": nothing to compare
            assert defaults <= {value}, f"{name}: .env.example says {value!r}, the code's default is {defaults}"


def test_secure_settings_behind_a_proxy(monkeypatch):
    """With a trusted proxy the HTTPS header is believed; cookies can be made secure and HSTS
    sent: read from the environment when the settings load."""
    import subprocess
    import sys

    probe = ("import os; os.environ['DJANGO_SETTINGS_MODULE']='qifu.settings'; import django; django.setup();"
             "from django.conf import settings as s;"
             "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)")
    env = {"PATH": "/usr/bin:/bin", "QIFU_DATA_DIR": "/tmp/qifu-settings-probe", "QIFU_SECURE_COOKIES": "true",
           "QIFU_HSTS_SECONDS": "31536000", "QIFU_TRUSTED_PROXIES": "127.0.0.1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "31536000", "('HTTP_X_FORWARDED_PROTO',", "'https')"]


# --- the native libraries' thread pools ---------------------------------------------------------

THREADS_SEEN = """
import json, sys
from qifu import config
config.limit_compute_threads(sys.argv[1])
import sklearn.ensemble  # noqa: F401  (loads OpenMP, as learning the reminder plan does)
from threadpoolctl import threadpool_info
print(json.dumps({p["user_api"]: p["num_threads"] for p in threadpool_info()}))
"""


def _pools_seen(role: str, **env: str) -> dict[str, int]:
    import json
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                              "QIFU_COMPUTE_THREADS")}
    done = subprocess.run([sys.executable, "-c", THREADS_SEEN, role], env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_web_process_computes_on_one_thread_and_the_worker_on_half_the_cores(monkeypatch):
    from qifu import config

    monkeypatch.delenv("QIFU_COMPUTE_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert config.compute_threads("serve") == 1
    assert config.compute_threads("worker") == 4
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert config.compute_threads("worker") == 1
    assert _pools_seen("serve")["openmp"] == 1  # what scikit-learn itself sees, loaded after


def test_the_operator_sets_the_compute_threads(monkeypatch):
    import pytest

    from qifu import config

    monkeypatch.setenv("QIFU_COMPUTE_THREADS", "3")
    assert config.compute_threads("serve") == config.compute_threads("worker") == 3
    monkeypatch.setenv("QIFU_COMPUTE_THREADS", "0")
    with pytest.raises(config.ConfigError, match="QIFU_COMPUTE_THREADS"):
        config.compute_threads("worker")
    assert _pools_seen("worker", QIFU_COMPUTE_THREADS="3")["openmp"] == 3
    # OpenMP's own variable, set by the operator, wins
    assert _pools_seen("serve", QIFU_COMPUTE_THREADS="3", OMP_NUM_THREADS="2")["openmp"] == 2
