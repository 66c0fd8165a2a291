"""Load the rule catalogue: one YAML file per rule, validated, named after its id."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from qifu.engine.rules.model import Rule


class RuleFileError(Exception):
    """A rule file is malformed; the message names the file and the problem."""


def _catalogue_dir() -> Path:
    return Path(str(resources.files("qifu.engine.rules").joinpath("catalogue")))


def load_file(path: Path) -> Rule:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise RuleFileError(f"{path.name}: not valid YAML: {e}") from None
    try:
        rule = Rule.model_validate(data)
    except ValidationError as e:
        raise RuleFileError(f"{path.name}: {e}") from None
    if path.stem != rule.id:
        raise RuleFileError(f"{path.name}: file must be named after its rule id ({rule.id}.yaml)")
    return rule


@lru_cache(maxsize=4)
def load_rules(folder: str | None = None) -> tuple[Rule, ...]:
    directory = Path(folder) if folder else _catalogue_dir()
    rules = [load_file(p) for p in sorted(directory.glob("*.yaml"))]
    if not rules:
        raise RuleFileError(f"no rule files in {directory}")
    return tuple(rules)


@lru_cache(maxsize=4)
def ruleset_version(folder: str | None = None) -> str:
    """A short digest of every rule file: findings record which rule set produced them."""
    directory = Path(folder) if folder else _catalogue_dir()
    h = hashlib.sha256()
    for p in sorted(directory.glob("*.yaml")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]
