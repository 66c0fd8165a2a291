"""The engine must import in a fresh interpreter without Django settings (house style)."""

import pkgutil
import subprocess
import sys

import qifu.engine


def test_engine_imports_without_django():
    modules = [m.name for m in pkgutil.walk_packages(qifu.engine.__path__, "qifu.engine.")]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "leaked = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        + "assert not leaked, leaked\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert len(modules) >= 8
