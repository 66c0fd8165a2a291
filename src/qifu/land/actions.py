"""Named actions of the land-efficiency evaluation: evaluate a year with a method, publish it
for the firms' confirmation (一企一单), take a firm's confirmation or objection (an enterprise
request to the department that owns the data), freeze the final result."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
from django.db import connection, transaction
from django.utils import timezone

from qifu import bulk, config
from qifu import text as texts
from qifu.engine.land import consequences as conseq
from qifu.engine.land import evaluate as engine
from qifu.engine.land import method as methods
from qifu.engine.requests.workflow import State
from qifu.land.models import Evaluation, Method, Remediation, Result


class LandError(ValueError):
    """Something a person can fix, said in Chinese."""


@dataclass
class EvaluationResult:
    evaluation: Evaluation
    table: pl.DataFrame
    method: methods.Method
    timings: dict[str, float] = field(default_factory=dict)


def do_save_method(m: methods.Method, text: str) -> Method:
    """The method as a stored version: the same content is the same row, a change a new one."""
    row, _ = Method.objects.get_or_create(version=m.version, defaults={"name": m.name[:200], "year": m.year,
                                                                        "text": text})
    return row


def fetch(year: int) -> dict[str, pa.Table]:
    """The current indicators of ``year`` and every parcel, as Arrow."""
    from qifu.land.queries import inputs_sql

    pg = connection.vendor == "postgresql"
    queries = inputs_sql(year, pg)
    if pg:  # ADBC straight into Arrow
        from qifu.analytics import sources

        return {name: _typed(name, t) for name, t in sources.run(queries).items()}
    out = {}
    with connection.cursor() as cur:  # rows into the known schema through Polars: no type guessing, no pandas
        for name, q in queries.items():
            cur.execute(q)
            schema = {f.name: _POLARS.get(f.type, pl.String) for f in engine.INPUTS[name]}
            frame = pl.DataFrame(cur.fetchall(), schema=schema, orient="row", strict=False).with_columns(
                pl.col(f.name).cast(pl.Boolean) for f in engine.INPUTS[name] if f.type == pa.bool_())
            out[name] = _typed(name, frame.to_arrow())
    return out


_POLARS = {pa.bool_(): pl.Int64, pa.int64(): pl.Int64, pa.float64(): pl.Float64}


def _typed(name: str, table: pa.Table) -> pa.Table:
    """The relation with the engine's types, whatever the database gave (SQLite has no booleans;
    an empty result has no types)."""
    schema = engine.INPUTS[name]
    if table.num_rows == 0:
        return schema.empty_table()
    columns = []
    for f in schema:
        col = table.column(f.name)
        if f.type == pa.bool_() and not pa.types.is_boolean(col.type):
            col = pa.compute.not_equal(col.cast(pa.int64()), 0)
        columns.append(col.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def run_engine(m: methods.Method, data: dict[str, pa.Table], engine_name: str) -> pa.Table:
    if engine_name == "duckdb":
        return engine.run_duckdb(m, data["indicators"], data["parcels"])
    if engine_name == "spark":
        import tempfile

        import pyarrow.parquet as pq

        from qifu.engine.land.spark import run_local

        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for name, table in data.items():
                paths[name] = str(Path(tmp) / f"{name}.parquet")
                pq.write_table(table, paths[name])
            return run_local(m, paths)
    raise LandError(f"引擎应为 duckdb 或 spark，而不是 {engine_name}")


def evaluate(year: int, method_path: str | Path, engine_name: str = "duckdb", out: Path | None = None,
             now: dt.datetime | None = None) -> EvaluationResult:
    """Score and class every firm of ``year`` by the method; store it as that year's
    evaluation (a draft until published) and write §2.3."""
    try:
        text = Path(method_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LandError(f"找不到方法文件：{method_path}") from None
    except UnicodeDecodeError:
        raise LandError(f"{Path(method_path).name}：应为 UTF-8 编码的 YAML") from None
    return evaluate_text(year, text, Path(method_path).name, engine_name, out, now)


def evaluate_text(year: int, text: str, source: str = "方法", engine_name: str = "duckdb", out: Path | None = None,
                  now: dt.datetime | None = None, carry_from: Evaluation | None = None) -> EvaluationResult:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    m = methods.parse(text, source)
    if m.year != year:
        raise LandError(f"方法文件是 {m.year} 年度的，不能评价 {year} 年度（--year 与方法的 year 应一致）")
    final = Evaluation.objects.filter(year=year, status=Evaluation.Status.FINAL).first()
    if final:
        raise LandError(f"{year} 年度的评价已于 {timezone.localtime(final.frozen_at):%Y-%m-%d} 定稿，不再重新评价")
    data = fetch(year)
    timings["fetch"] = time.perf_counter() - t
    t = time.perf_counter()
    table = pl.from_arrow(run_engine(m, data, engine_name))
    timings["engine"] = time.perf_counter() - t
    t = time.perf_counter()
    evaluation = _store(year, m, text, engine_name, table, now or timezone.now(), carry_from)
    timings["store"] = time.perf_counter() - t
    if out is not None:
        t = time.perf_counter()
        write(table, m, Path(out))
        timings["write"] = time.perf_counter() - t
    return EvaluationResult(evaluation, table, m, timings)


def do_rescore(year: int, now: dt.datetime | None = None) -> Evaluation | None:
    """After a correction of the year's data: the year again, by the method of its latest
    evaluation, in the same state (a published one stays published, its window unchanged).
    A firm's confirmation stands if its class and score are unchanged; its objection stays
    linked. Nothing to do for a year without an evaluation or a frozen one."""
    from qifu.land import queries

    last = queries.latest(year)
    if last is None or last.status == Evaluation.Status.FINAL:
        return None
    return evaluate_text(year, last.method.text, f"方法 {last.method.version}", last.engine, now=now,
                         carry_from=last).evaluation


def _store(year: int, m: methods.Method, text: str, engine_name: str, table: pl.DataFrame,
           now: dt.datetime, carry_from: Evaluation | None = None) -> Evaluation:
    names = m.indicators
    with transaction.atomic():
        method = do_save_method(m, text)
        evaluation = Evaluation.objects.create(year=year, method=method, engine=engine_name, created_at=now,
                                               firms=table.height)
        if carry_from is not None:
            evaluation.status, evaluation.published_at, evaluation.window_ends = (
                carry_from.status, carry_from.published_at, carry_from.window_ends)
            evaluation.save(update_fields=["status", "published_at", "window_ends"])
        if table.height:
            points = table.select(pl.struct([pl.col(f"points_{n}").alias(n) for n in names])
                                  .struct.json_encode().alias("points")) if names else pl.DataFrame(
                {"points": ["{}"] * table.height})
            rows = table.select(
                pl.lit(evaluation.id).alias("evaluation_id"), pl.col("uscc"), pl.col("group").fill_null(""),
                pl.col("area_mu"), pl.col("score"), pl.col("rank").cast(pl.Int64), pl.col("class").fill_null(""),
                pl.col("note").fill_null("").str.slice(0, 300),
            ).with_columns(points["points"])
            if carry_from is not None:
                rows = _carried(rows, carry_from)
            bulk.insert(Result._meta.db_table, rows)
    return evaluation


def _carried(rows: pl.DataFrame, previous: Evaluation) -> pl.DataFrame:
    """The firms' answers to the previous run: an objection stays linked; a confirmation stands
    while the firm's class and score are what it confirmed."""
    before = pl.DataFrame(list(Result.objects.filter(evaluation=previous).values_list(
        "entity_id", "klass", "score", "confirmed_at", "objection_id")),
        schema={"uscc": pl.String, "class_before": pl.String, "score_before": pl.Float64,
                "confirmed_at": pl.Datetime("us", "UTC"), "objection_id": pl.Int64}, orient="row")
    same = (pl.col("class") == pl.col("class_before")) & (
        (pl.col("score").fill_null(-1) - pl.col("score_before").fill_null(-1)).abs() < 1e-9)
    return (rows.join(before, on="uscc", how="left")
            .with_columns(pl.when(same).then(pl.col("confirmed_at")).otherwise(None).alias("confirmed_at"))
            .drop("class_before", "score_before"))


def columns_out(m: methods.Method) -> list[str]:
    return engine.columns(m)


def write(table: pl.DataFrame, m: methods.Method, path: Path) -> None:
    """Contract §2.3: CSV, XLSX or JSON by the extension; scores and points to 6 decimals."""
    frame = table.select(engine.columns(m)).with_columns(
        pl.col("score").round(6), pl.col("area_mu").round(6), *(pl.col(f"points_{n}").round(6) for n in m.indicators))
    from qifu import spreadsheets  # openpyxl only when a file is written

    spreadsheets.write_frame(frame, path, sheet="亩均评价结果")


def window_days() -> int:
    return int(config.get("QIFU_LAND_WINDOW_DAYS", "7") or 7)


def do_publish(evaluation: Evaluation, now: dt.datetime | None = None) -> Evaluation:
    """Open the publication window: each firm sees its sheet and confirms or objects."""
    now = now or timezone.now()
    if evaluation.status != Evaluation.Status.DRAFT:
        raise LandError("只有草稿可以公示")
    evaluation.status = Evaluation.Status.PUBLISHED
    evaluation.published_at = now
    evaluation.window_ends = now + dt.timedelta(days=window_days())
    evaluation.save(update_fields=["status", "published_at", "window_ends"])
    return evaluation


def do_freeze(evaluation: Evaluation, user, now: dt.datetime | None = None) -> Evaluation:
    """The final result, once the window has closed and every objection is settled; then the
    low-efficiency rules flag the year's parcels."""
    now = now or timezone.now()
    if evaluation.status == Evaluation.Status.FINAL:
        raise LandError("已经定稿")
    if evaluation.status != Evaluation.Status.PUBLISHED:
        raise LandError("请先公示，公示期满后再定稿")
    if evaluation.window_ends and now < evaluation.window_ends:
        raise LandError(f"公示期到 {timezone.localtime(evaluation.window_ends):%Y-%m-%d %H:%M} 才结束")
    open_objections = Result.objects.filter(evaluation=evaluation, objection__isnull=False).exclude(
        objection__status=State.CLOSED).count()
    if open_objections:
        raise LandError(f"还有 {open_objections} 件异议未办结：办结（必要时更正数据、重新评分）后再定稿")
    with transaction.atomic():
        evaluation.status, evaluation.frozen_at, evaluation.frozen_by = Evaluation.Status.FINAL, now, user
        evaluation.save(update_fields=["status", "frozen_at", "frozen_by"])
        do_flag(evaluation, now=now)
    return evaluation


def consequences() -> conseq.Consequences:
    """What the classes mean in this county (``QIFU_LAND_CONSEQUENCES``, else the shipped example)."""
    try:
        return conseq.load(config.get("QIFU_LAND_CONSEQUENCES", "") or None)
    except conseq.ConsequencesError as e:
        raise LandError(str(e)) from None


def do_flag(evaluation: Evaluation, rules: conseq.Consequences | None = None,
            now: dt.datetime | None = None) -> int:
    """A remediation case for every parcel the low-efficiency rules flag in a final
    evaluation's year, unless the parcel has an unfinished case already; and, for cases of
    earlier years, the tax per mu after. Returns the number of new cases."""
    from qifu.land import queries
    from qifu.service_requests.models import Department

    rules = rules or consequences()
    now = now or timezone.now()
    parcels = queries.flagged_parcels(evaluation, rules)
    labels = {f.id: f.label for f in rules.low_efficiency}
    flagged = parcels.filter(pl.col("flagged"))
    unfinished = set(Remediation.objects.exclude(status=Remediation.Status.DONE).values_list("parcel_id", flat=True))
    department = Department.objects.filter(name=REMEDIATION_DEPARTMENT).first()
    new = []
    for row in flagged.iter_rows(named=True):
        if row["parcel_id"] in unfinished:
            continue
        ids = [f for f in labels if row.get(f"flag_{f}")]
        new.append(Remediation(
            parcel_id=row["parcel_id"], entity_id=row["uscc"], town_id=row["town"], department=department,
            area_mu=row["parcel_area_mu"], flags=ids, reasons="；".join(labels[f] for f in ids)[:500],
            tax_per_mu_before=row["tax_per_mu"], flagged_year=evaluation.year,
            history=[_history_line(now, "系统", f"{evaluation.year} 年度亩均评价定稿后按规则认定")]))
        unfinished.add(row["parcel_id"])
    after = {r["parcel_id"]: r["tax_per_mu"] for r in parcels.iter_rows(named=True)}
    with transaction.atomic():
        Remediation.objects.bulk_create(new, ignore_conflicts=True)
        for case in Remediation.objects.filter(flagged_year__lt=evaluation.year, parcel_id__in=list(after)):
            if case.after_year is None or case.after_year <= evaluation.year:
                case.tax_per_mu_after, case.after_year = after[case.parcel_id], evaluation.year
                case.save(update_fields=["tax_per_mu_after", "after_year", "updated_at"])
    return len(new)


REMEDIATION_DEPARTMENT = "经济和信息化局"


def _history_line(now: dt.datetime, by: str, note: str) -> dict:
    """One line of a remediation case's history: when (local time, to the minute), who, what."""
    return {"at": f"{timezone.localtime(now):%Y-%m-%d %H:%M}", "by": by, "note": note}


def do_update_case(case: Remediation, user, *, plan: str | None = None, status: str | None = None,
                   department_id: int | None = None, milestone: tuple[str, dt.date | None] | None = None,
                   done_milestone: int | None = None, tax_per_mu_after: float | None = None, note: str = "",
                   now: dt.datetime | None = None) -> Remediation:
    """A change to a remediation case, kept in its history with who and when."""
    from qifu.service_requests.models import Department

    now = now or timezone.now()
    changes = []
    with transaction.atomic():
        case = Remediation.objects.select_for_update().get(pk=case.pk)
        if plan is not None and plan != case.plan:
            if plan not in Remediation.Plan.values:
                raise LandError("没有这种整治方式")
            case.plan = plan
            changes.append(f"整治方式：{case.get_plan_display()}")
        if status is not None and status != case.status:
            if status not in Remediation.Status.values:
                raise LandError("没有这个状态")
            if status == Remediation.Status.DONE and not case.plan:
                raise LandError("请先确定整治方式，再标记完成")
            case.status = status
            changes.append(f"状态：{case.get_status_display()}")
        if department_id is not None and department_id != case.department_id:
            case.department = Department.objects.filter(pk=department_id).first()
            if case.department is None:
                raise LandError("没有这个部门")
            changes.append(f"责任部门：{case.department.name}")
        if milestone is not None:
            label, due = milestone
            label = (label or "").strip()[:100]
            if not label:
                raise LandError("请填写节点名称")
            case.milestones = [*case.milestones, {"label": label, "due": due.isoformat() if due else None, "done": None}]
            changes.append(f"新增节点：{label}")
        if done_milestone is not None:
            if not 0 <= done_milestone < len(case.milestones):
                raise LandError("没有这个节点")
            m = dict(case.milestones[done_milestone])
            m["done"] = timezone.localdate(now).isoformat()
            case.milestones = [*case.milestones[:done_milestone], m, *case.milestones[done_milestone + 1:]]
            changes.append(f"完成节点：{m['label']}")
        if tax_per_mu_after is not None:
            if tax_per_mu_after < 0:
                raise LandError("亩均税收不能为负")
            case.tax_per_mu_after = tax_per_mu_after
            changes.append(f"整治后亩均税收：{tax_per_mu_after:g} 万元/亩")
        note = (note or "").strip()[:500]
        if not changes and not note:
            raise LandError("没有任何改动")
        by = (user.get_full_name() or user.username) if user is not None else "系统"
        case.history = [*case.history, _history_line(now, by, "；".join([*changes, note] if note else changes))]
        case.save()
    return case


# Which department owns which data: an objection to it goes there (domain/enterprise-services.md §C.6).
OWNERS = {
    "evaluated_tax": "税务局", "electricity": "供电、供水、燃气、通信单位", "area_mu": "自然资源和规划局",
    "value_added": "经济和信息化局", "main_revenue": "经济和信息化局", "rd_spend": "科学技术局",
    "energy_tce": "经济和信息化局", "emissions": "生态环境局", "avg_employees": "人力资源和社会保障局",
    "veto": "经济和信息化局", "exempt": "经济和信息化局",
}
ITEM_LABELS = {"evaluated_tax": "评价税收", "electricity": "用电量", "area_mu": "用地面积", "value_added": "工业增加值",
               "main_revenue": "主营业务收入", "rd_spend": "研发经费", "energy_tce": "综合能耗", "emissions": "排放量",
               "avg_employees": "年平均职工人数", "veto": "否决事项", "exempt": "不参评原因"}


def _open_result(result: Result, now: dt.datetime) -> None:
    ev = result.evaluation
    if ev.status != Evaluation.Status.PUBLISHED or (ev.window_ends and now > ev.window_ends):
        raise LandError("评价结果不在公示期内，不能确认或提出异议")
    if result.confirmed_at or result.objection_id:
        raise LandError("已经确认或提出过异议")


def do_confirm(result: Result, now: dt.datetime | None = None) -> Result:
    now = now or timezone.now()
    with transaction.atomic():
        result = Result.objects.select_for_update().select_related("evaluation").get(pk=result.pk)
        _open_result(result, now)
        result.confirmed_at = now
        result.save(update_fields=["confirmed_at"])
    return result


def do_object(result: Result, item: str, text: str, now: dt.datetime | None = None) -> Result:
    """An objection is an enterprise request (issue 13's queue), in the land category, to the
    department that owns the data item."""
    from qifu.service_requests import actions as requests
    from qifu.service_requests.models import Department

    now = now or timezone.now()
    if item not in OWNERS:
        raise LandError("请选择有异议的数据项")
    text = texts.written(text, "异议理由", LandError, "请写明异议的理由和您掌握的正确数据（至少4个字）")
    with transaction.atomic():
        result = Result.objects.select_for_update().select_related("evaluation", "entity").get(pk=result.pk)
        _open_result(result, now)
        try:
            body = requests.clean_text(f"【亩均评价异议】{result.evaluation.year}年度，数据项：{ITEM_LABELS[item]}。{text}")
        except requests.RequestError as e:
            raise LandError(str(e)) from None
        req = requests.do_submit_request(text=body, channel="portal", actor=requests.ENTERPRISE, entity=result.entity,
                                         category="land", department=Department.objects.filter(name=OWNERS[item]).first(),
                                         now=now)
        result.objection = req
        result.save(update_fields=["objection"])
    return result
