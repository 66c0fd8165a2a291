"""Annual-report quality rules: declarative YAML, compiled with sqlglot, run on three engines.

- ``model``: the rule schema (pydantic); a malformed rule file fails loudly on load.
- ``catalogue/``: one YAML file per rule, named after its id (``UM-01.yaml``).
- ``compiler``: rule -> sqlglot expression tree -> SQL per dialect, with explicit passes.
- ``context``: the wide per-report row that rules read (report, previous year, registry,
  tax, social security, shareholders, reminders, county aggregates), as portable SQL.
- ``duckdb_engine``, ``spark_engine``, ``record``: batch, national and single-report runs.
- ``findings``: Chinese messages and suggestions from engine hits.
"""
