"""Policy funding delivered without asking (惠企政策直达, 免申即享): policies as data over the
entity profile, compiled by the rule language's compiler to DuckDB, Spark and PostgreSQL."""
