"""Importing contract files (§1): the one way data enters the database.

``import_file`` reads, validates and writes one file all-or-nothing. Validation collects
every bad row before anything is written; the write runs in one transaction. Re-importing
the same file changes nothing; a changed annual report becomes a new revision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from django.db import transaction
from django.utils import timezone

from qifu import analytics, bulk, db
from qifu.engine import reference
from qifu.engine.contract import KINDS, Kind
from qifu.engine.errors import InvalidFile, RowError
from qifu.engine.reading import read_table
from qifu.engine.validate import MONEY_DTYPE, Parsed, parse
from qifu.imports.models import ImportRun
from qifu.registry.models import Entity, Township
from qifu.reminders.models import ReminderRecord
from qifu.reports.models import AnnualReport, Shareholder
from qifu.sources.models import SocialRecord, TaxRecord

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class ImportResult:
    kind: str
    rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the import set off (a re-scored year)


def import_file(kind_name: str, path: str | Path, progress: Progress | None = None) -> ImportResult:
    """Import one file of ``kind_name``. Raises FileProblem or InvalidFile; then nothing is stored."""
    kind = KINDS[kind_name]
    path = Path(path)
    started = timezone.now()
    table = read_table(path)
    parsed = parse(table, kind)
    errors = parsed.errors + _reference_errors(kind, parsed)
    if errors:
        raise InvalidFile(errors, parsed.warnings)
    frame = _prepare(kind, parsed.frame)
    with transaction.atomic():
        result = _WRITERS[kind.name](kind, parsed, frame, progress)
        result.warnings = parsed.warnings
        ImportRun.objects.create(
            kind=kind.name,
            file_name=str(path),
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            encoding=table.encoding,
            rows=result.rows,
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
            started_at=started,
            finished_at=timezone.now(),
        )
    if (result.inserted or result.updated) and kind.name in analytics.TABLES:
        db.analyze(analytics.TABLES[kind.name])
        analytics.refresh(kind.name)
    if (result.inserted or result.updated) and kind.name in _AFTER:
        result.notes += _AFTER[kind.name](frame) or []
    return result


# --- references between files ---------------------------------------------------------


def _reference_errors(kind: Kind, parsed: Parsed) -> list[RowError]:
    frame = parsed.frame
    errors: list[RowError] = []
    if kind.name in TOWN_KINDS:
        towns = _town_lookup()
        for row, town in frame.select("__row", "town").drop_nulls().iter_rows():
            if town not in towns:
                errors.append(RowError(row, "town", town, "不是本辖区的镇街（请使用镇街全称，如 浒山街道）"))
    if kind.name == "labs":
        from qifu.labs.actions import catalogue_problems

        problems = catalogue_problems(frame.to_dicts())
        return errors + [RowError(row, name, value, why) for row, name, value, why in problems]
    if kind.name == "experts":
        return errors
    if kind.name == "achievements":
        from qifu.experts.models import Expert

        experts = set(Expert.objects.values_list("code", flat=True))
        for row, code in frame.select("__row", "expert_code").drop_nulls().iter_rows():
            if code not in experts:
                errors.append(RowError(row, "expert_code", code, "专家库中没有这个专家编号（请先导入专家库）"))
        return errors
    if kind.name == "registry":
        if "industry_code" in frame.columns:
            for row, code in frame.select("__row", "industry_code").drop_nulls().iter_rows():
                _, why = reference.normalise_industry(code)
                if why:
                    errors.append(RowError(row, "industry_code", code, why))
        return errors
    known = pl.Series(list(Entity.objects.values_list("uscc", flat=True)), dtype=pl.Utf8)
    unknown = frame.select("__row", "uscc").drop_nulls().filter(~pl.col("uscc").is_in(known.implode()))
    for row, code in unknown.iter_rows():
        errors.append(RowError(row, "uscc", code, "登记信息中没有这个主体（请先导入 registry 登记信息）"))
    return errors


TOWN_KINDS = ("registry", "parcels", "labs")  # files whose township is a reference to the county's list


def _town_lookup() -> dict[str, str]:
    towns = {t.name: t.code for t in Township.objects.all()}
    prefix = reference.county()["county"]
    return towns | {prefix + name: code for name, code in towns.items()}


def _prepare(kind: Kind, frame: pl.DataFrame) -> pl.DataFrame:
    """Contract columns -> database columns."""
    if kind.name in TOWN_KINDS and kind.name != "labs":
        towns = _town_lookup()
        frame = frame.with_columns(pl.col("town").replace_strict(towns, return_dtype=pl.Utf8).alias("town_id")).drop(
            "town"
        )
    if kind.name == "registry":
        if "industry_code" in frame.columns:
            frame = frame.with_columns(
                pl.col("industry_code").map_elements(
                    lambda c: reference.normalise_industry(c)[0], return_dtype=pl.Utf8
                )
            )
    # projects and the abnormal list: rows named by their writer
    return frame if kind.name in ("projects", "abnormal") else frame.drop("__row")


# --- writers ------------------------------------------------------------------------------


# a file naming at most this many entities (a day's filings, a few corrections) reads back only
# their stored rows, not every row of its years: the comparison is by key, which holds the entity
FEW_ENTITIES = 5000


def _of_few(model, frame: pl.DataFrame, key: list[str]) -> dict:
    """A filter to the entities ``frame`` names, when they are few and ``key`` holds the entity
    (a key without it, a certificate's number, may name a row stored under another entity)."""
    column = "uscc" if model is Entity else "entity_id"
    if column not in key:
        return {}
    codes = frame[column].unique()
    if codes.len() > FEW_ENTITIES or codes.null_count():  # a row of no entity (no such kind today): read all
        return {}
    return {f"{column}__in": codes.to_list()}


def _existing(model, columns: list[str], **filters) -> pl.DataFrame:
    """Rows already stored, as a frame with the same dtypes the parser produces."""
    rows = list(model.objects.filter(**filters).values_list(*columns))
    schema = {c: _dtype_of(model, c) for c in columns}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _dtype_of(model, column: str) -> pl.DataType:
    f = model._meta.get_field(column)
    internal = f.get_internal_type()
    if f.is_relation:
        return pl.Utf8
    return {
        "DecimalField": MONEY_DTYPE,
        "DateField": pl.Date,
        "DateTimeField": pl.Datetime("us", "UTC"),
        "BooleanField": pl.Boolean,
        "PositiveIntegerField": pl.Int64,
        "IntegerField": pl.Int64,
        "PositiveSmallIntegerField": pl.Int64,
        "BigAutoField": pl.Int64,
    }.get(internal, pl.Utf8)


def _changed(joined: pl.DataFrame, columns: list[str]) -> pl.Expr:
    exprs = [pl.col(c).ne_missing(pl.col(f"{c}__old")) for c in columns]
    return pl.any_horizontal(exprs) if exprs else pl.lit(False)


def _db_frame(frame: pl.DataFrame, model) -> pl.DataFrame:
    """Rename contract columns to model attnames (uscc -> entity_id) and align dtypes."""
    frame = frame.rename({"uscc": "entity_id"}) if model is not Entity and "uscc" in frame.columns else frame
    casts = []
    for c in frame.columns:
        name = "entity" if c == "entity_id" else c
        target = _dtype_of(model, name)
        if frame.schema[c] != target and target != pl.Utf8:
            casts.append(pl.col(c).cast(target))
    return frame.with_columns(casts) if casts else frame


def _column_names(model, frame: pl.DataFrame) -> pl.DataFrame:
    """Model attnames -> database column names."""
    mapping = {}
    for c in frame.columns:
        name = c[:-3] if c.endswith("_id") else c
        try:
            f = model._meta.get_field(name)
        except Exception:
            continue
        mapping[c] = f.column
    return frame.rename(mapping)


def _progress_cb(progress: Progress | None, phase: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        progress(phase, done[0], total)

    return step


def _upsert(model, key: list[str], kind: Kind, parsed: Parsed, frame: pl.DataFrame, progress, **filters) -> ImportResult:
    frame = _db_frame(frame, model)
    if model is not Entity:
        key = ["entity_id" if k == "uscc" else k for k in key]
    data_cols = [c for c in frame.columns if c not in key]
    existing = _existing(model, [("entity" if k == "entity_id" else k) for k in key] + data_cols,
                         **filters, **_of_few(model, frame, key))
    existing.columns = key + [f"{c}__old" for c in data_cols]
    joined = frame.join(existing.with_columns(pl.lit(True).alias("__found")), on=key, how="left", nulls_equal=True)
    new = joined.filter(pl.col("__found").is_null()).select(frame.columns)
    found = joined.filter(pl.col("__found"))
    changed = found.filter(_changed(found, data_cols)).select(frame.columns)
    now = timezone.now()
    step = _progress_cb(progress, "写入", new.height + changed.height)
    table = model._meta.db_table
    bulk.insert(table, _column_names(model, new.with_columns(pl.lit(now).alias("imported_at"))), step)
    bulk.update(
        table,
        _column_names(model, changed.with_columns(pl.lit(now).alias("imported_at"))),
        [model._meta.get_field("entity" if k == "entity_id" else k).column for k in key],
        step,
    )
    return ImportResult(kind.name, frame.height, new.height, changed.height, found.height - changed.height)


def _write_registry(kind, parsed, frame, progress):
    return _upsert(Entity, ["uscc"], kind, parsed, frame, progress)


def _write_shareholders(kind, parsed, frame, progress):
    years = frame["report_year"].unique().to_list()
    return _upsert(Shareholder, list(kind.key), kind, parsed, frame, progress, report_year__in=years)


def _write_tax(kind, parsed, frame, progress):
    return _upsert(TaxRecord, ["uscc", "year"], kind, parsed, frame, progress, year__in=frame["year"].unique().to_list())


def _write_social(kind, parsed, frame, progress):
    return _upsert(
        SocialRecord, ["uscc", "year"], kind, parsed, frame, progress, year__in=frame["year"].unique().to_list()
    )


def _write_reminders(kind, parsed, frame, progress):
    lo, hi = frame["sent_at"].min(), frame["sent_at"].max()
    return _upsert(ReminderRecord, list(kind.key), kind, parsed, frame, progress, sent_at__range=(lo, hi))


def _write_reports(kind, parsed, frame, progress):
    return _write_revisions(AnnualReport, "report_year", kind, frame, progress)


def _write_indicators(kind, parsed, frame, progress):
    from qifu.land.models import IndicatorRecord

    return _write_revisions(IndicatorRecord, "year", kind, frame, progress)


def _write_parcels(kind, parsed, frame, progress):
    from qifu.land.models import Parcel

    return _upsert(Parcel, ["parcel_id", "uscc"], kind, parsed, frame, progress)


def _write_revisions(model, year: str, kind, frame, progress):
    """A yearly snapshot per entity (annual reports, land indicators). New (uscc, year):
    revision 1. Changed content: revision n+1, the old one kept."""
    frame = _db_frame(frame, model)
    key = ["entity_id", year]
    present = [c for c in frame.columns if c not in key]
    all_fields = [f.name for f in kind.fields if f.name not in ("uscc", year)]
    years = frame[year].unique().to_list()
    existing = _existing(model, ["entity", year, "revision", *all_fields], **{f"{year}__in": years}, is_current=True,
                         **_of_few(model, frame, key))
    existing.columns = key + ["revision"] + [f"{c}__old" for c in all_fields]
    joined = frame.join(existing, on=key, how="left")
    new = joined.filter(pl.col("revision").is_null()).select(frame.columns)
    found = joined.filter(pl.col("revision").is_not_null())
    changed = found.filter(_changed(found, present))
    now = timezone.now()
    # A correction file may carry fewer columns than the report has: what it does not
    # mention is carried over from the current revision.
    carried = changed.select(
        *key,
        (pl.col("revision") + 1).alias("revision"),
        *[pl.col(c) if c in present else pl.col(f"{c}__old").alias(c) for c in all_fields],
    )
    table = model._meta.db_table
    step = _progress_cb(progress, "写入", new.height + 2 * carried.height)
    bulk.update(
        table,
        _column_names(model, changed.select(*key, "revision", pl.lit(False).alias("is_current"))),
        ["uscc", year, "revision"],
        step,
    )
    stamp = [pl.lit(now).alias("imported_at"), pl.lit(True).alias("is_current")]
    bulk.insert(
        table, _column_names(model, new.with_columns(pl.lit(1).alias("revision"), *stamp)), step
    )
    bulk.insert(table, _column_names(model, carried.with_columns(*stamp)), step)
    return ImportResult(kind.name, frame.height, new.height, carried.height, found.height - carried.height)


def _write_requests(kind, parsed, frame, progress):
    from qifu.service_requests.history import import_history

    return ImportResult(kind.name, frame.height, *import_history(frame, progress))


def _after_requests(frame):
    from qifu.service_requests.routing import refresh_model

    refresh_model()


def _after_land(frame):
    """A correction of land data re-scores each year it touches that has an evaluation not
    yet final (contract §1.9: each year's data is a snapshot; issue: 一企一单's corrections)."""
    from qifu.land import actions as land
    from qifu.land.models import Evaluation

    years = frame["year"].unique().to_list() if "year" in frame.columns else None
    pending = Evaluation.objects.exclude(status=Evaluation.Status.FINAL)
    if years is not None:
        pending = pending.filter(year__in=years)
    notes = []
    for year in sorted(set(pending.values_list("year", flat=True))):
        if land.do_rescore(year) is not None:
            notes.append(f"已按更正后的数据重新评分：{year} 年度亩均评价")
    return notes


def _write_trainings(kind, parsed, frame, progress):
    from qifu.policies.models import SkillCertificate

    return _upsert(SkillCertificate, ["certificate_no"], kind, parsed, frame, progress)


def _write_labs(kind, parsed, frame, progress):
    from qifu.labs.actions import import_catalogue

    new, changed, same = import_catalogue(frame.to_dicts(), _town_lookup())
    return ImportResult(kind.name, frame.height, new, changed, same)


def _write_experts(kind, parsed, frame, progress):
    from qifu.experts.actions import import_experts

    new, changed, same = import_experts(frame.to_dicts())
    return ImportResult(kind.name, frame.height, new, changed, same)


def _write_achievements(kind, parsed, frame, progress):
    from qifu.experts.actions import import_achievements

    new, changed, same = import_achievements(frame.to_dicts())
    return ImportResult(kind.name, frame.height, new, changed, same)


def _write_projects(kind, parsed, frame, progress):
    from qifu.projects.actions import import_rows

    new, changed, same, problems = import_rows(frame.to_dicts())
    if problems:
        raise InvalidFile([RowError(*p) for p in problems], parsed.warnings)
    return ImportResult(kind.name, frame.height, new, changed, same)


def _write_abnormal(kind, parsed, frame, progress):
    from qifu.abnormal.actions import import_listings

    new, changed, same, problems = import_listings(frame.to_dicts())
    if problems:
        raise InvalidFile([RowError(*p) for p in problems], parsed.warnings)
    return ImportResult(kind.name, frame.height, new, changed, same)


_AFTER = {"requests": _after_requests, "parcels": _after_land, "indicators": _after_land}

_WRITERS = {
    "registry": _write_registry,
    "reports": _write_reports,
    "shareholders": _write_shareholders,
    "tax": _write_tax,
    "social": _write_social,
    "reminders": _write_reminders,
    "requests": _write_requests,
    "parcels": _write_parcels,
    "indicators": _write_indicators,
    "trainings": _write_trainings,
    "labs": _write_labs,
    "experts": _write_experts,
    "achievements": _write_achievements,
    "projects": _write_projects,
    "abnormal": _write_abnormal,
}
