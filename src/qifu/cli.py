"""The ``qifu`` command. Parses arguments, calls an action, prints; nothing more.

Every subcommand migrates the database first, so each works on a fresh one (contract §3).
Exit codes: 0 success, 1 bad input (a one-line reason on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qifu.settings")
    import django

    django.setup()
    from qifu import db

    db.ensure_ready()


def _date(value: str):
    """An argparse type: a calendar date, YYYY-MM-DD."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应为 YYYY-MM-DD 格式的有效日期，而不是 {value!r}") from None


def _year(value: str) -> int:
    if not value.isdigit() or not 1979 <= int(value) <= 2100:
        raise argparse.ArgumentTypeError(f"年度应为四位年份，如 2025，而不是 {value!r}")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"应为正整数，而不是 {value!r}")
    return int(value)


def _fail(message: str) -> int:
    print(f"qifu: {message}", file=sys.stderr)
    return 1


def _out_problem(path: Path) -> str | None:
    """Why a file out (contract §2) cannot be written there: its extension picks the format."""
    if path.suffix.lower() not in (".csv", ".xlsx", ".json"):
        return f"输出文件扩展名应为 .csv、.xlsx 或 .json：{path}"
    return None


def _print_timings(timings: dict[str, float]) -> None:
    print("耗时（秒）：" + "，".join(f"{k} {v:.2f}" for k, v in timings.items()), file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.engine.errors import FileProblem, InvalidFile
    from qifu.imports.actions import import_file
    from qifu.imports.report import write_error_report
    from qifu.progress import Bar

    with Bar(f"导入 {args.kind}") as bar:
        try:
            result = import_file(args.kind, args.file, progress=bar.update)
        except FileProblem as exc:
            return _fail(f"{args.file}: {exc}；未导入任何数据")
        except InvalidFile as exc:
            bar.close()
            for w in exc.warnings:
                print(f"警告：{w}", file=sys.stderr)
            kind = __import__("qifu.engine.contract", fromlist=["KINDS"]).KINDS[args.kind]
            for err in exc.errors[:200]:
                label = kind.field(err.field).label if err.field in kind.names else ""
                print(err.line(label), file=sys.stderr)
            if len(exc.errors) > 200:
                print(f"……另有 {len(exc.errors) - 200} 处错误，见错误报告", file=sys.stderr)
            report = write_error_report(args.kind, args.file, exc.errors, args.errors)
            return _fail(
                f"{args.file}: {len(exc.errors)} 处错误，未导入任何数据；错误报告：{report}"
            )
    for w in result.warnings:
        print(f"警告：{w}", file=sys.stderr)
    print(
        f"已导入 {args.kind}：{result.rows} 行，新增 {result.inserted}，"
        f"{'更正' if args.kind in ('reports', 'indicators') else '更新'} {result.updated}，未变化 {result.unchanged}"
    )
    for note in result.notes:
        print(note)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    if args.input or args.output:
        return _check_national(args)
    if args.out is None:
        return _fail("需要 --out 结果文件（或用 --engine spark --input 目录 --output 目录 校验数据文件夹）")
    _setup_django()
    from qifu.checks.actions import run_check

    if problem := _out_problem(args.out):
        return _fail(problem)
    if args.engine == "spark" and (problem := _spark_missing()):
        return _fail(problem)
    result = run_check(args.year, engine=args.engine, out=args.out, master=args.master)
    run = result.run
    if run.reports_checked == 0:
        print(f"警告：没有 {args.year} 年度的年报可校验", file=sys.stderr)
    print(
        f"已校验 {args.year} 年度年报 {run.reports_checked} 份（规则集 {run.ruleset_version}，引擎 {args.engine}）："
        f"问题 {run.findings} 个，新增 {run.new_findings}，已解决 {run.resolved}；结果已写入 {args.out}"
    )
    for rule_id, count in sorted(run.rule_counts.items()):
        print(f"  {rule_id}\t{count}")
    if args.verbose:
        _print_timings(result.timings)
    return 0


def _check_national(args: argparse.Namespace) -> int:
    """Data that does not fit one machine: the six relations as Parquet in --input, the findings
    written by Spark's executors to --output (partitioned by rule); no database."""
    if args.engine != "spark" or not (args.input and args.output):
        return _fail("校验数据文件夹需要同时给出 --engine spark、--input 目录和 --output 目录")
    if args.out is not None:
        return _fail("--out 用于本县数据库的校验；按文件夹校验时结果写入 --output")
    if problem := _spark_missing():
        return _fail(problem)
    from qifu.engine.rules import spark_engine
    from qifu.engine.rules.context import SOURCES
    from qifu.engine.rules.loader import load_rules

    if "://" not in args.input:
        missing = [f"{n}.parquet" for n in SOURCES if not (Path(args.input) / f"{n}.parquet").exists()]
        if missing:
            return _fail(f"{args.input} 中缺少：{'、'.join(missing)}")
    spark = spark_engine.session(args.master)
    spark_engine.write(spark, spark_engine.input_paths(args.input), args.year, load_rules(), args.output)
    counts = sorted((r["rule_id"], r["count"]) for r in spark.read.parquet(args.output).groupBy("rule_id").count().collect())
    print(f"已在 Spark（{spark.sparkContext.master}）上校验 {args.year} 年度：问题 {sum(n for _, n in counts)} 个，"
          f"已按规则分区写入 {args.output}")
    for rule_id, count in counts:
        print(f"  {rule_id}\t{count}")
    return 0


def _spark_missing() -> str | None:
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        return "--engine spark 需要 PySpark：pip install 'qifu[spark]'（另需 Java 17 运行环境）"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "--engine spark 需要 Java 运行环境（如 apt-get install openjdk-17-jre-headless）"
    return None


def cmd_ask(args: argparse.Namespace) -> int:
    _setup_django()
    import json

    from qifu.assistant.actions import ask

    answer, item = ask(args.question, channel="cli")
    if args.json:
        data = answer.as_json()
        data["handoff_id"] = item.id if item else None
        print(json.dumps(data, ensure_ascii=False))
    else:
        print(answer.answer)
    return 0


def cmd_remind(args: argparse.Namespace) -> int:
    _setup_django()

    from qifu.reminders.actions import run_day

    day = args.date
    r = run_day(day, out=args.out)
    print(
        f"{day} 未报送的应报主体 {r.due_unfiled} 户；今日提醒 {r.decided} 条（短信和邮件已发送 {r.sent['sent']}，"
        f"待重试 {r.sent['retry']}，失败 {r.sent['failed']}；电话和上门任务 {r.tasks}）；结果已写入 {args.out}"
    )
    print("计划：" + "，".join(f"{k} {v}" for k, v in r.groups.items()))
    if r.skipped:
        why = {"spacing": "间隔不足", "season_cap": "已达本季上限", "address_empty": "登记住所已查无此主体、不再上门"}
        print("跳过：" + "，".join(f"{why.get(k, k)} {v}" for k, v in r.skipped.items()))
    if args.verbose:
        print("用时：" + "，".join(f"{k} {v:.1f} 秒" for k, v in r.timings.items()), file=sys.stderr)
    return 0


def cmd_remind_report(args: argparse.Namespace) -> int:
    _setup_django()

    from qifu.reminders.report import season_report, write_report

    report = season_report(args.season, args.date, simulate=args.simulate)
    try:
        write_report(report, args.out)
    except ValueError as e:
        return _fail(str(e))
    for g in ("treated", "holdout"):
        r = report["groups"][g]
        rate = f"{100 * r['on_time_rate']:.1f}%" if r["on_time_rate"] is not None else "—"
        saved = f"{100 * r['saved_vs_blanket']:.0f}%" if r["saved_vs_blanket"] is not None else "—"
        print(f"{r['label']}：应报 {r['due']} 户，按时报送率 {rate}，提醒 {r['contacts']} 次，比原做法少 {saved}")
    if "effect" in report:
        e = report["effect"]
        print(f"按时报送率差 {100 * e['on_time_difference']:+.1f} 个百分点（95%区间 {100 * e['ci95'][0]:+.1f} 至 "
              f"{100 * e['ci95'][1]:+.1f}）；结果已写入 {args.out}")
    plan = report["plan"]
    if plan["source"]:
        print(f"本季采用：{plan['label']}。{plan['why']}")
    if "simulation" in report:
        from qifu.reminders.report import POLICY_LABELS

        print(f"仿真对比（合成县 {args.simulate} 户；提醒比原做法少 / 按时报送率比原做法高）：")
        rows = report["simulation"]["rows"]
        for model in dict.fromkeys(r["model"] for r in rows):
            cells = [f"{POLICY_LABELS[r['policy']]} {100 * r['fewer_than_blanket']:.0f}% / "
                     f"{100 * r['on_time_vs_blanket']:+.1f}" for r in rows if r["model"] == model and r["policy"] != "blanket"]
            print(f"  {model}{'（调参所用）' if model == 'tuning' else ''}：" + "；".join(cells))
    return 0


def cmd_remind_send(args: argparse.Namespace) -> int:
    _setup_django()
    import datetime as dt
    from zoneinfo import ZoneInfo

    from qifu.reminders.sender import send_due

    now = None
    if args.date:
        now = dt.datetime.combine(args.date, dt.time(9), tzinfo=ZoneInfo("Asia/Shanghai"))
    counts = send_due(now=now)
    print(f"已发送 {counts['sent']}，待重试 {counts['retry']}，失败 {counts['failed']}")
    return 0


def cmd_expert_account(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.experts.actions import ExpertActionError, do_open_account
    from qifu.experts.models import Expert

    expert = Expert.objects.filter(code=args.code.strip()).first()
    if expert is None:
        return _fail(f"专家库中没有编号为 {args.code} 的专家")
    try:
        user, password = do_open_account(expert, args.username)
    except ExpertActionError as e:
        return _fail(str(e))
    print(f"{user.username}：专家 {expert.name}（{expert.institution}）；初始密码 {password}（请登录后修改）")
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.accounts.actions import StaffError, assign_role

    try:
        user, password = assign_role(args.username, args.role, args.town, args.department)
    except StaffError as e:
        return _fail(str(e))
    role = user.staff_profile.get_role_display()
    town = (f"（{user.staff_profile.town.name}）" if user.staff_profile.town_id else
            f"（{user.staff_profile.department.name}）" if user.staff_profile.department_id else "")
    print(f"{user.username}：{role}{town}" + (f"；初始密码 {password}（请登录后修改）" if password else ""))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu import backup, config

    out = args.out or Path(config.get("QIFU_BACKUP_DIR") or config.data_dir() / "backups")
    try:
        made = backup.make(out)
    except backup.BackupError as e:
        return _fail(str(e))
    print(f"已备份到 {made.path}（{made.size / 1e6:.1f} MB）：{_held(made.rows, made.files)}")
    return 0


def _held(rows: dict[str, int], files: int) -> str:
    """What a backup holds, in words."""
    return (f"主体 {rows['registry_entity']} 户，年报 {rows['reports_annualreport']} 份，"
            f"企业诉求 {rows['service_requests_servicerequest']} 件，附件 {files} 个")


def cmd_restore(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu import backup

    try:
        done = backup.restore(args.file, force=args.force)
    except backup.BackupError as e:
        return _fail(str(e))
    m = done.manifest
    print(f"已从 {args.file.name}（{m['created_at']} 备份）恢复：{_held(done.rows, done.files)}"
          + (f"；原数据库另存为 {done.kept}" if done.kept else "")
          + "。请重新启动 qifu serve 和 qifu worker"
          + (f"。备份之后可能已发出的 {done.held} 条短信或邮件已设为“状态未知”，不会自动重发："
             f"请在后台管理的发件箱中核对后重发或作废" if done.held else ""))
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    _setup_django()

    from qifu.corrections.actions import notify

    r = notify(args.year, args.date)
    channels = "，".join(f"{k} {v}" for k, v in sorted(r.by_channel.items())) or "无"
    print(f"{args.year} 年度：新发更正通知 {r.notices} 份，涉及问题 {r.findings} 个（渠道：{channels}）。"
          f"短信和邮件由 qifu remind send 发出，电话任务见工作台。"
          + (f"另有 {r.deferred} 户因提醒间隔或本季上限暂缓，之后再发。" if r.deferred else ""))
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    _setup_django()
    import json

    from qifu.service_requests.routing import route

    if not args.text.strip():
        return _fail("请给出诉求文本")
    result = route(args.text)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"{result['category_name']}（{result['category']}）→ {result['department']}，把握 {result['score']:.0%}")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.service_requests.apikeys import do_issue_key

    try:
        record, key = do_issue_key(args.name)
    except ValueError as e:
        return _fail(str(e))
    print(key)
    print(f"已为“{record.name}”签发 Open311 接口密钥（只显示这一次，请妥善保存；前缀 {record.prefix}）", file=sys.stderr)
    return 0


def cmd_land_evaluate(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.engine.land.method import MethodError
    from qifu.land.actions import LandError, evaluate

    if problem := _out_problem(args.out):
        return _fail(problem)
    if args.engine == "spark" and (problem := _spark_missing()):
        return _fail(problem)
    try:
        r = evaluate(args.year, args.method, engine_name=args.engine, out=args.out)
    except (MethodError, LandError) as e:
        return _fail(str(e))
    t = r.table
    if t.height == 0:
        print(f"警告：没有 {args.year} 年度的亩均评价指标（qifu import indicators 导入）", file=sys.stderr)
    classes = "，".join(f"{k} {v}" for k, v in sorted(
        (c or "不定级", n) for c, n in t.group_by("class").len().iter_rows()))
    print(f"已按“{r.method.name}”（版本 {r.method.version}）评价 {args.year} 年度 {t.height} 户：{classes}；"
          f"结果已写入 {args.out}")
    if args.verbose:
        _print_timings(r.timings)
    return 0


def cmd_policy_match(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.engine.policies.policy import PolicyError
    from qifu.policies.actions import PolicyActionError, match_folder

    if problem := _out_problem(args.out):
        return _fail(problem)
    try:
        r = match_folder(args.policies, args.year, out=args.out, notify=not args.no_notify)
    except (PolicyError, PolicyActionError) as e:
        return _fail(str(e))
    for w in r.warnings:
        print(f"警告：{w}", file=sys.stderr)
    each = "，".join(f"{o.policy.id} {len(o)} 户 {o.total.normalize():f} 万元" for o in r.outcomes) or "没有该年度的政策"
    print(f"已匹配 {args.year} 年度 {len(r.outcomes)} 项政策：{each}；新增 {r.new}，变更 {r.changed}，"
          f"不再符合 {r.lapsed}，通知 {r.notified}；结果已写入 {args.out}")
    if args.verbose:
        _print_timings(r.timings)
    return 0


def cmd_policy_batch(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.policies.actions import PolicyActionError, do_create_batch, export_batch
    from qifu.policies.models import PaymentBatch

    if problem := _out_problem(args.out):
        return _fail(problem)
    if args.number:
        batch = PaymentBatch.objects.filter(number=args.number).first()
        if batch is None:
            return _fail(f"没有批次 {args.number}")
    else:
        try:
            batch = do_create_batch()
        except PolicyActionError as e:
            return _fail(str(e))
    export_batch(batch, args.out)
    print(f"批次 {batch.number}：{batch.lines} 笔，合计 {batch.total:f} 万元；已写入 {args.out}")
    return 0


def cmd_policy_receipt(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.policies.actions import PolicyActionError, do_reconcile, read_receipt

    try:
        r = do_reconcile(args.batch, read_receipt(args.file))
    except PolicyActionError as e:
        return _fail(str(e))
    print(f"批次 {args.batch} 已对账：到账 {r.paid} 笔，失败 {r.failed} 笔，无变化 {r.unchanged} 笔")
    return 0


def cmd_land_prices(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu import spreadsheets
    from qifu.land import queries
    from qifu.land.actions import LandError, consequences
    from qifu.land.models import Evaluation

    if problem := _out_problem(args.out):
        return _fail(problem)
    evaluation = queries.latest(args.year)
    if evaluation is None:
        return _fail(f"{args.year} 年度还没有亩均评价（先运行 qifu land evaluate）")
    if evaluation.status != Evaluation.Status.FINAL:
        return _fail(f"{args.year} 年度的评价尚未定稿（{evaluation.get_status_display()}），定稿后才能输出差别化价格清单")
    try:
        table = queries.prices(evaluation, consequences())
    except LandError as e:
        return _fail(str(e))
    spreadsheets.write_frame(table, args.out, sheet="差别化价格清单")
    print(f"已输出 {args.year} 年度差别化价格清单 {table.height} 户：加价合计 {table['surcharge'].sum():.2f} 万元，"
          f"奖励返还合计 {table['reward'].sum():.2f} 万元；{args.out}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from qifu.engine.synth import county
    from qifu.progress import Bar

    with Bar("生成模拟县域数据") as bar:
        summary = county.write(args.out, entities=args.entities, seed=args.seed, last_year=args.last_year,
                               progress=bar.update)
    print(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _setup_django()
    from qifu.web.server import serve

    serve(args.host, args.port, workers=args.workers)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from qifu import config

    config.limit_compute_threads("worker")  # before scikit-learn loads: it reads them once
    _setup_django()
    from qifu import worker

    worker.run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    os.environ["QIFU_DEMO"] = "1"  # before the settings load: the demo's own secret key, texts to files
    _setup_django()
    from qifu.demo import fill_behind, run_demo

    if args.fill:
        return fill_behind(entities=args.entities, seed=args.seed)
    return run_demo(entities=args.entities, seed=args.seed, host=args.host, port=args.port, serve_app=not args.no_serve)


def cmd_manage(args: argparse.Namespace) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["qifu manage", *args.rest])
    return 0


class Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr (exit 2), like every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}（qifu --help 查看用法）\n")


def build_parser() -> argparse.ArgumentParser:
    from qifu.engine.contract import KINDS

    p = Parser(prog="qifu", description="企服 qifu：县域企业服务平台")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("import", help="导入数据文件（契约 §1）")
    s.add_argument("kind", choices=list(KINDS))
    s.add_argument("file", type=Path)
    s.add_argument("--errors", type=Path, help="错误报告（CSV）写到这里；默认在数据目录 import-errors/ 下")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("check", help="按规则校验某一年度的年报（契约 §2.1）")
    s.add_argument("--year", type=_year, required=True)
    s.add_argument("--out", type=Path, help="结果文件：.csv、.xlsx 或 .json")
    s.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    s.add_argument("--input", help="（省级、全国）六类数据的 Parquet 所在目录，可为 hdfs:// 或 s3a:// 路径；需 --engine spark")
    s.add_argument("--output", help="（省级、全国）问题清单的 Parquet 输出目录，按规则分区，由 Spark 执行器写入")
    s.add_argument("--master", default="local[2]", help="--engine spark 的 Spark master（默认 local[2]；集群上用 spark-submit，见 docs/rules.md）")
    s.add_argument("--verbose", action="store_true", help="在标准错误输出各阶段耗时")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("remind", help="年报提醒")
    remind = s.add_subparsers(dest="remind_command", required=True)
    r = remind.add_parser("run", help="按某一天（--date）决定并发送当天的提醒（契约 §2.2）")
    r.add_argument("--date", required=True, type=_date, help="“今天”，YYYY-MM-DD；所有判断以此为准，不读系统时钟")
    r.add_argument("--out", type=Path, required=True, help="已发送提醒的清单：.csv 或 .json")
    r.add_argument("--verbose", action="store_true", help="在标准错误输出决定、入库、发送、写文件各自的用时")
    r.set_defaults(func=cmd_remind)
    r = remind.add_parser("report", help="对照组与处理组：按时报送率、按日报送率、各渠道提醒次数、比原做法少打扰多少")
    r.add_argument("--season", type=_year, required=True, help="申报季所在年份，如 2027（报送 2026 年度年报）")
    r.add_argument("--date", type=_date, help="统计到这一天（默认 6 月 30 日）")
    r.add_argument("--out", type=Path, required=True, help=".xlsx（含图表）或 .json")
    r.add_argument("--simulate", type=int, default=6000, metavar="N",
                   help="另在 N 户的合成县上按各行为模型仿真全部做法并排比较（默认 6000；0 不仿真）")
    r.set_defaults(func=cmd_remind_report)
    r = remind.add_parser("send", help="发送发件箱中到期的短信和邮件（失败的按退避重试）")
    r.add_argument("--date", type=_date, help="按这一天上午九点发送；默认现在")
    r.set_defaults(func=cmd_remind_send)

    s = sub.add_parser("notify", help="把新发现的年报问题按主体合并成更正通知，放入发件箱")
    s.add_argument("--year", type=_year, required=True)
    s.add_argument("--date", required=True, type=_date, help="通知日期，YYYY-MM-DD")
    s.set_defaults(func=cmd_notify)

    s = sub.add_parser("staff", help="新建工作人员账号或设置角色")
    s.add_argument("username")
    s.add_argument("--role", required=True, choices=["admin", "officer", "leader", "department"],
                   help="admin 局管理员；officer 镇街专管员（企服驿站）；leader 领导（只读）；department 承办部门人员")
    s.add_argument("--town", help="镇街专管员所属镇街（名称或代码）")
    s.add_argument("--department", help="承办部门人员所属部门（名称，如 税务局）")
    s.set_defaults(func=cmd_staff)

    s = sub.add_parser("expert-account", help="为专家开通登录账号（专家工作台）")
    s.add_argument("code", help="专家编号（专家库中的）")
    s.add_argument("--username", required=True)
    s.set_defaults(func=cmd_expert_account)

    s = sub.add_parser("backup", help="备份数据库和企业上传的附件（服务运行中也可以做）")
    s.add_argument("--out", type=Path, help="备份文件（.tar.gz）或目录；默认 QIFU_BACKUP_DIR，或数据目录下的 backups/")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="从 qifu backup 的备份恢复数据库和附件（先停止 qifu serve 和 qifu worker）")
    s.add_argument("file", type=Path, help="备份文件（.tar.gz）")
    s.add_argument("--force", action="store_true", help="当前数据库已有数据时仍然覆盖（覆盖前另存一份）")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("ask", help="向年报助手提问")
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="以 JSON 输出 answer、score、sources、handoff")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("route", help="企业诉求自动分类：类别与承办部门（契约 §3）")
    s.add_argument("text", help="诉求文本")
    s.add_argument("--json", action="store_true", help="以 JSON 输出 category、department、score")
    s.set_defaults(func=cmd_route)

    s = sub.add_parser("apikey", help="为合作方或驿站设备签发 Open311 接口密钥（只显示一次）")
    s.add_argument("name", help="合作方或设备名称")
    s.set_defaults(func=cmd_apikey)

    s = sub.add_parser("land", help="亩均效益评价")
    land = s.add_subparsers(dest="land_command", required=True)
    r = land.add_parser("evaluate", help="按评价方法给各企业打分、分类，保存为该年度的评价（契约 §2.3）")
    r.add_argument("--year", type=_year, required=True)
    r.add_argument("--method", type=Path, required=True, help="评价方法（YAML，契约 §1.10）")
    r.add_argument("--out", type=Path, required=True, help="结果文件：.csv、.xlsx 或 .json")
    r.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    r.add_argument("--verbose", action="store_true", help="在标准错误输出各阶段耗时")
    r.set_defaults(func=cmd_land_evaluate)
    r = land.add_parser("prices", help="输出定稿年度的差别化电价、奖励返还和城镇土地使用税减免清单（供电公司、税务局）")
    r.add_argument("--year", type=_year, required=True)
    r.add_argument("--out", type=Path, required=True, help="清单文件：.csv、.xlsx 或 .json")
    r.set_defaults(func=cmd_land_prices)

    s = sub.add_parser("policy", help="惠企政策直达（免申即享）")
    pol = s.add_subparsers(dest="policy_command", required=True)
    r = pol.add_parser("match", help="载入或更新政策，找出符合条件的企业和金额，保存并输出（契约 §2.4）")
    r.add_argument("--policies", type=Path, required=True, help="政策文件夹（每项政策一个 YAML，契约 §1.10）")
    r.add_argument("--year", type=_year, required=True, help="数据年度")
    r.add_argument("--out", type=Path, required=True, help="结果文件：.csv、.xlsx 或 .json")
    r.add_argument("--no-notify", action="store_true", help="只匹配，不给新符合条件的企业发通知")
    r.add_argument("--verbose", action="store_true", help="在标准错误输出各阶段耗时")
    r.set_defaults(func=cmd_policy_match)
    r = pol.add_parser("batch", help="把待拨付的款项编成拨付批次，输出给国库（同一批次重复输出得到同一文件）")
    r.add_argument("--out", type=Path, required=True, help="批次文件：.csv、.xlsx 或 .json")
    r.add_argument("--number", help="重新输出已有的批次（批次号），不新建")
    r.set_defaults(func=cmd_policy_batch)
    r = pol.add_parser("receipt", help="导入国库回执（到账或失败），对账")
    r.add_argument("--batch", required=True, help="批次号")
    r.add_argument("file", type=Path, help="回执文件：batch_no、payment_id、status（paid/failed）、paid_on、reason")
    r.set_defaults(func=cmd_policy_receipt)

    s = sub.add_parser("synth", help="生成模拟县域的契约文件")
    s.add_argument("--entities", type=_positive, default=240_000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--last-year", type=_year, default=2025, help="最近一个报告年度（默认 2025）")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("serve", help="启动网页应用与接口（定时任务由 qifu worker 执行）")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_positive, default=8000)
    s.add_argument("--workers", type=_positive, help="进程数（默认每核一个，或 QIFU_WORKERS）")
    s.add_argument("--no-schedule", action="store_true", help=argparse.SUPPRESS)  # before 2026-12: serve ran the schedule
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="定时任务进程：发送发件箱、申报季每天的提醒计划（与 qifu serve 并行运行）")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("demo", help="生成并导入一个模拟县域，然后启动网页")
    s.add_argument("--entities", type=_positive, default=240_000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_positive, default=8000)
    s.add_argument("--no-serve", action="store_true", help="只准备数据，不启动网页")
    s.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)  # the process run_demo starts beside its server
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("manage", help="Django 管理命令（如 createsuperuser）")
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_manage)
    return p


# A command other than the server is a batch: it loads Django, DuckDB, Polars and PyArrow (about
# 170,000 objects that live until it ends) and then allocates in bulk. With Python's default
# thresholds the cyclic collector walked them again and again (0.37 s of a 2.4 s policy match),
# and once more at interpreter shutdown (0.6 s after the command's work was done). Young objects
# are collected every 50,000 allocations instead of 700; what is left at the end is frozen, so the
# exit frees it by reference counts without a last walk. Only for the process's own command line
# (``argv`` None: the ``qifu`` script, ``python -m qifu``), never for a caller such as a test
# that goes on living; the server's workers keep the defaults and freeze what they preload
# (``web.server.preload``).
BATCH_GC_THRESHOLD = (50_000, 20, 20)
SERVERS = ("serve", "demo")


def _serves(args: argparse.Namespace) -> bool:
    """Whether the command serves pages: `qifu serve`, and `qifu demo` but for the process that
    fills its data (``--fill``) or a demo that only prepares them (``--no-serve``)."""
    return args.command in SERVERS and not (getattr(args, "fill", False) or getattr(args, "no_serve", False))


def _freeze_for_exit() -> None:
    import gc

    _close_databases()
    gc.freeze()


def _close_databases() -> None:
    """The command's database connections closed before what is left is frozen (a frozen
    connection is never closed), on SQLite with the write-ahead log copied back (``db.release``)."""
    from django.conf import settings

    if "django.db" not in sys.modules or not settings.configured:  # a command without Django (synth)
        return
    from qifu import db

    db.release()


def main(argv: list[str] | None = None) -> None:
    import gc

    from django.core.exceptions import ImproperlyConfigured
    from django.db import OperationalError

    from qifu.config import ConfigError
    from qifu.in_use import InUse

    args = build_parser().parse_args(argv)
    batch = argv is None and not _serves(args)
    if batch:
        gc.set_threshold(*BATCH_GC_THRESHOLD)
    try:
        code = args.func(args)
    except (ConfigError, ImproperlyConfigured, InUse) as e:
        code = _fail(str(e))
    except OSError as e:  # an output folder that cannot be written, a disk that is full
        code = _fail(f"{e.filename or ''}：{e.strerror or e}".lstrip("："))
    except OperationalError as e:  # a database server that cannot be reached, a file that is locked
        code = _fail(f"无法使用数据库：{(str(e).strip().splitlines() or [type(e).__name__])[0]}")
    except KeyboardInterrupt:
        code = 130
    if batch:
        _freeze_for_exit()
    sys.exit(code)
