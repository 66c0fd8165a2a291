"""Expressions of the rule language outside a rule (a policy's eligibility and amount, a
land-evaluation consequence, a low-efficiency flag), compiled once and kept.

A compiled text and the columns a text names are kept on disk (``kept.folder``) in a file
named by sqlglot's release and the compiler's code (``code``), so that a process that meets
only texts compiled before never imports sqlglot or the compiler: a nightly policy match spent
a tenth of a second importing sqlglot and another parsing twenty policies to list their
fields. A text not seen before goes through the compiler (``compiler.compile_expression_now``);
only what compiled is kept."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import cache
from pathlib import Path

from qifu.engine.files import write_whole
from qifu.engine.rules import kept


class RuleCompileError(Exception):
    """A rule cannot be compiled as written."""


class UnsupportedOnEngine(RuleCompileError):
    """A construct an engine would run differently or not at all; named so it can be fixed."""


@cache
def code() -> str:
    """What a compiled text depends on besides its input: sqlglot's release and the compiler's
    own code (in the names of the files compiled texts are kept in)."""
    digest = hashlib.sha256(_sqlglot_release())
    for name in ("compiler.py", "model.py", "expressions.py"):
        digest.update(Path(__file__).with_name(name).read_bytes())
    return digest.hexdigest()[:16]


def _sqlglot_release() -> bytes:
    """sqlglot's version file, read without importing sqlglot (its version, imported, where an
    installation has no such file)."""
    spec = importlib.util.find_spec("sqlglot")
    try:
        return Path(spec.origin).with_name("_version.py").read_bytes()
    except (AttributeError, TypeError, OSError):
        import sqlglot

        return sqlglot.__version__.encode()


def read_json(path: Path) -> object:
    """What a file of compiled texts holds, or None when there is none or it is damaged."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: object) -> None:
    """``value`` written to ``path`` whole: through a file of this process's own, renamed, so
    that another process never reads half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, json.dumps(value, ensure_ascii=False))


def compile_expression(text: str, columns: set[str] | frozenset[str], dialect: str = "duckdb",
                       condition: bool = True, sql_nulls: bool = False) -> str:
    """``text`` as SQL of ``dialect``: the same passes as a rule's condition, and every column it
    names must be one of ``columns``. A condition is true or false, never NULL (a comparison
    with an empty value is not true); a value is a DOUBLE. ``sql_nulls``: GREATEST and LEAST
    skip empty values as SQL does (contract §1.10 for policies) instead of the rules' stricter
    reading (empty if any argument is). Compiled once per process for each text, and kept."""
    return _compile_expression(text, frozenset(columns), dialect, condition, sql_nulls)


@cache
def _compile_expression(text: str, columns: frozenset[str], dialect: str, condition: bool, sql_nulls: bool) -> str:
    columns_digest = hashlib.sha256("\n".join(sorted(columns)).encode()).hexdigest()[:16]
    key = json.dumps([text, columns_digest, dialect, condition, sql_nulls], ensure_ascii=False)
    sql = _kept(kept.folder).get(key)
    if not isinstance(sql, str):
        from qifu.engine.rules.compiler import compile_expression_now

        sql = compile_expression_now(text, columns, dialect, condition, sql_nulls)
        _keep(key, sql)
    return sql


@cache
def column_names(text: str) -> tuple[str, ...]:
    """The column names ``text`` reads, each once, in the parsed tree's order (kept as the
    compiled texts are). A text that does not parse: ``RuleCompileError``."""
    key = json.dumps(["columns", text], ensure_ascii=False)
    names = _kept(kept.folder).get(key)
    if not isinstance(names, list):
        from qifu.engine.rules.compiler import column_names_now

        names = column_names_now(text)
        _keep(key, names)
    return tuple(names)


@cache
def _kept(folder: Path | None) -> dict[str, object]:
    """What is kept in ``folder`` (``kept.folder``) for this compiler and sqlglot: empty when
    nothing is, or the file is damaged."""
    found = read_json(folder / f"expressions-{code()}.json") if folder is not None else None
    return found if isinstance(found, dict) else {}


def _keep(key: str, value: object) -> None:
    """``value`` kept under ``key`` for the next process, with what other processes kept
    meanwhile. Only what compiled is kept: an expression with an error is compiled, and
    refused, again."""
    folder = kept.folder
    if folder is None:
        return
    _kept.cache_clear()
    try:
        write_json(folder / f"expressions-{code()}.json", {**_kept(folder), key: value})
    except OSError:  # a read-only data folder: compiled again next time
        pass
    _kept.cache_clear()


def in_dialect(text: str, dialect: str) -> str:
    """``text``, SQL in DuckDB's dialect, in ``dialect``'s: sqlglot is imported here, when a
    process writes for another engine, and not by every process that imports a module with SQL
    to transpile."""
    if dialect == "duckdb":
        return text
    import sqlglot

    return sqlglot.transpile(text, read="duckdb", write=dialect)[0]
