import os
from pathlib import Path

import pytest

os.environ.setdefault("QIFU_DATA_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))


@pytest.fixture(scope="session")
def small_county(tmp_path_factory) -> Path:
    """A synthetic county of 1,500 entities, written once per test session."""
    from qifu.engine.synth import county

    out = tmp_path_factory.mktemp("county")
    county.write(out, entities=1500, seed=11, last_year=2025)
    return out


@pytest.fixture
def data_dir(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("QIFU_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"
