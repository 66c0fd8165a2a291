"""Land-efficiency evaluation (亩均效益评价), the Django-free part: the method as data
(``method``), compiled to SQL once and run on DuckDB for a county or Spark for a province
(``evaluate``), and one firm's sheet in Python (``sheet``), which a test holds to the SQL.
Definitions: contract v1.1 §1.10; docs/land.md."""
