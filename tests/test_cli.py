"""The `qifu` command as a bureau's nightly script runs it: exit codes, stderr, error report."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ENT2, REGISTRY_HEADER, registry_rows, write


def qifu(*args, env: dict):
    return subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def cli_db(process_env):
    """The CLI runs in its own process, with a fresh database of its own (conftest.process_env)."""
    return process_env


def data_dir(env: dict) -> Path:
    return Path(env["QIFU_DATA_DIR"])


def test_import_success_on_a_fresh_database(tmp_path, cli_db):
    path = write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows())
    result = qifu("import", "registry", path, env=cli_db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "已导入 registry：3 行，新增 3，更新 0，未变化 0"


def test_a_command_leaves_its_writes_in_the_database_file_not_in_the_log(tmp_path, cli_db, small_county):
    """SQLite: a command copies its write-ahead log back into the database before it ends, also
    while another connection (a server) holds the database open, so the next writer does not
    pay for it; the last connection's closing removes the log."""
    import shutil
    import sqlite3

    if "QIFU_DATABASE_URL" in cli_db:
        pytest.skip("SQLite's write-ahead log; PostgreSQL checkpoints itself")
    path = write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows())
    assert qifu("import", "registry", path, env=cli_db).returncode == 0
    db = data_dir(cli_db) / "qifu.sqlite3"
    assert not Path(f"{db}-wal").exists()  # the last connection closed
    server = sqlite3.connect(db)  # a server's connection, between requests
    server.execute("SELECT count(*) FROM registry_entity").fetchone()
    assert qifu("import", "registry", small_county / "registry.csv", env=cli_db).returncode == 0
    alone = tmp_path / "alone.sqlite3"  # the database file without its log
    shutil.copy(db, alone)
    rows = sqlite3.connect(alone).execute("SELECT count(*) FROM registry_entity").fetchone()[0]
    assert rows == server.execute("SELECT count(*) FROM registry_entity").fetchone()[0] == 3 + 1500
    server.close()


def test_bad_rows_exit_non_zero_with_each_row_on_stderr_and_an_error_file(tmp_path, cli_db):
    rows = registry_rows()
    rows[1] = rows[1].replace(ENT2, ENT2[:17] + ("0" if ENT2[17] != "0" else "1"))
    rows[2] = rows[2].replace("坎墩街道", "火星镇")
    report = tmp_path / "errors.csv"
    result = qifu("import", "registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows), "--errors", report,
                  env=cli_db)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("第3行 字段 uscc（统一社会信用代码） 值“")
    assert lines[1] == "第4行 字段 town（所属镇街） 值“火星镇”：不是本辖区的镇街（请使用镇街全称，如 浒山街道）"
    assert lines[-1] == f"qifu: {tmp_path / 'r.csv'}: 2 处错误，未导入任何数据；错误报告：{report}"
    with report.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["field"], r["value"]) for r in rows][1] == ("4", "town", "火星镇")
    # nothing was stored: the same file, fixed, imports all three rows
    fixed = qifu("import", "registry", write(tmp_path / "ok.csv", REGISTRY_HEADER, registry_rows()), env=cli_db)
    assert "新增 3" in fixed.stdout


def test_unreadable_file_is_one_line(tmp_path, cli_db):
    (tmp_path / "zero.csv").write_bytes(b"")
    result = qifu("import", "tax", tmp_path / "zero.csv", env=cli_db)
    assert result.returncode == 1
    assert result.stderr.strip() == f"qifu: {tmp_path / 'zero.csv'}: 文件为空（0字节）；未导入任何数据"


def test_unknown_kind_is_a_usage_error(tmp_path, cli_db):
    result = qifu("import", "people", tmp_path / "x.csv", env=cli_db)
    assert result.returncode == 2


def test_synth_writes_contract_files(tmp_path, cli_db):
    result = qifu("synth", "--entities", "300", "--seed", "2", "--out", tmp_path / "c", env=cli_db)
    assert result.returncode == 0, result.stderr
    for name in ("registry", "reports", "shareholders", "tax", "social", "reminders", "behaviour", "injected_errors"):
        assert (tmp_path / "c" / f"{name}.csv").stat().st_size > 0


def test_check_writes_findings_per_the_contract(tmp_path, cli_db, small_county):
    for kind in ("registry", "reports", "shareholders", "tax", "social", "reminders"):
        result = qifu("import", kind, small_county / f"{kind}.csv", env=cli_db)
        assert result.returncode == 0, result.stderr
    out = tmp_path / "findings.json"
    result = qifu("check", "--year", "2025", "--out", out, env=cli_db)
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data and set(data[0]) == {"uscc", "report_year", "rule_id", "severity", "fields", "message", "suggestion"}
    first = result.stdout.splitlines()[0]
    assert first.startswith("已校验 2025 年度年报 ") and f"问题 {len(data)} 个" in first
    # the analytical copy was written by the imports and is what the check read
    assert (data_dir(cli_db) / "analytics" / "reports.parquet").exists()


def test_check_refuses_an_unknown_output_format(tmp_path, cli_db):
    result = qifu("check", "--year", "2025", "--out", tmp_path / "f.txt", env=cli_db)
    assert result.returncode == 1
    assert result.stderr.strip() == f"qifu: 输出文件扩展名应为 .csv、.xlsx 或 .json：{tmp_path / 'f.txt'}"


def test_ask_prints_json_per_the_contract(tmp_path, cli_db):
    import json

    result = qifu("ask", "年报什么时候截止", "--json", env=cli_db)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"answer", "score", "sources", "handoff"} <= set(data)
    assert data["handoff"] is False and data["sources"][0]["id"] == "filing_window"
    assert result.stderr == ""


def test_remind_run_decides_sends_and_reports_per_the_contract(tmp_path, cli_db, small_county):
    import re

    cli_db["QIFU_SMS_BACKEND"] = "file"
    for kind in ("registry", "reports", "shareholders", "tax", "social", "reminders"):
        assert qifu("import", kind, small_county / f"{kind}.csv", env=cli_db).returncode == 0
    out = tmp_path / "sent.csv"
    first = qifu("remind", "run", "--date", "2027-05-15", "--out", out, env=cli_db)
    assert first.returncode == 0, first.stderr
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["uscc", "channel", "purpose", "recipient", "sent_at", "message"]
    texts = [r for r in rows if r["channel"] == "sms"]
    assert texts and all("年报不收费" in r["message"] and "退订" in r["message"] for r in texts)
    assert not any(re.search(r"https?://|www\.", r["message"]) for r in rows)
    assert all(r["sent_at"].startswith("2027-05-15T09:00") for r in texts)
    from qifu.reminders.channels import FileSmsChannel

    texts_sent = FileSmsChannel.delivered(data_dir(cli_db) / "sms")
    assert len(texts_sent) == len(texts)
    again = qifu("remind", "run", "--date", "2027-05-15", "--out", tmp_path / "again.csv", env=cli_db)
    assert again.returncode == 0
    assert FileSmsChannel.delivered(data_dir(cli_db) / "sms") == texts_sent  # the same day twice sends nothing new
    assert "holdout" in first.stdout
    # the text plan's first text (1 June) and the ladder's calls and visits after it go out: a
    # contact is counted once, so the season cap of 4 is not reached early
    for day in ("2027-06-01", "2027-06-10", "2027-06-17", "2027-06-25"):
        later = qifu("remind", "run", "--date", day, "--out", tmp_path / f"{day}.csv", env=cli_db)
        assert later.returncode == 0, later.stderr
        assert "已达本季上限 0" in later.stdout, later.stdout
    report = qifu("remind", "report", "--season", "2027", "--out", tmp_path / "r.json", "--simulate", "1500", env=cli_db)
    assert report.returncode == 0, report.stderr
    assert "本季采用：" in report.stdout and "上一季回测" in report.stdout
    assert "仿真对比" in report.stdout and "deaf：" in report.stdout and "tuning（调参所用）" in report.stdout


@pytest.mark.parametrize("args, reason", [
    (("remind", "run", "--date", "2027-13-01", "--out", "x.csv"), "日期应为 YYYY-MM-DD 格式的有效日期"),
    (("remind", "send", "--date", "tomorrow"), "日期应为 YYYY-MM-DD 格式的有效日期"),
    (("notify", "--year", "2025", "--date", "2027/5/1"), "日期应为 YYYY-MM-DD 格式的有效日期"),
    (("check", "--year", "25", "--out", "f.csv"), "年度应为四位年份"),
    (("import", "people", "x.csv"), "invalid choice"),
])
def test_bad_arguments_exit_non_zero_with_one_line(cli_db, args, reason):
    result = qifu(*args, env=cli_db)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and reason in result.stderr, result.stderr


def test_a_setting_that_is_wrong_is_one_line_not_a_traceback(cli_db):
    result = qifu("serve", "--port", "8", env={**cli_db, "QIFU_SECRET_KEY": ""})
    assert result.returncode == 1
    assert result.stderr.strip().startswith("qifu: 未设置 QIFU_SECRET_KEY") and "Traceback" not in result.stderr


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path, cli_db):
    path = write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows())
    result = qifu("import", "registry", path, env={**cli_db, "QIFU_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("qifu: 无法使用数据库：") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_spark_without_pyspark_is_one_line(monkeypatch):
    import importlib.util

    from qifu import cli

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "pip install 'qifu[spark]'" in cli._spark_missing()


def test_impossible_values_import_and_each_is_reported_by_a_block_rule(tmp_path, cli_db):
    """Contract v1.1 §1: one negative total_assets must never cost the bureau the file."""
    import json

    from tests.factories import REPORTS_HEADER, report_rows

    assert qifu("import", "registry", write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows()), env=cli_db).returncode == 0
    rows = report_rows()
    rows[0] = rows[0].replace(",25,10,1500.5,", ",-25,10,-1500.5,")
    result = qifu("import", "reports", write(tmp_path / "rep.csv", REPORTS_HEADER, rows), env=cli_db)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "findings.json"
    assert qifu("check", "--year", "2025", "--out", out, env=cli_db).returncode == 0
    found = {(f["uscc"], f["rule_id"], f["fields"], f["severity"]) for f in json.loads(out.read_text(encoding="utf-8"))}
    from tests.factories import ENT1

    assert (ENT1, "FM-08", "total_assets", "block") in found
    assert (ENT1, "FM-08", "employees", "block") in found


def test_an_output_file_that_cannot_be_written_is_one_line(tmp_path, cli_db):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = qifu("check", "--year", "2025", "--out", blocker / "findings.csv", env=cli_db)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and "not-a-folder" in result.stderr


def test_synth_refuses_a_negative_size_in_one_line(tmp_path, cli_db):
    result = qifu("synth", "--entities", "-5", "--out", tmp_path / "c", env=cli_db)
    assert result.returncode == 2 and "应为正整数" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.django_db
def test_a_caller_of_main_keeps_its_garbage_collector_as_it_was(monkeypatch, tmp_path):
    """The command line tunes the collector for a batch and freezes what is left at its end
    (cli.BATCH_GC_THRESHOLD); a caller that goes on living, as a test or a script does, must not
    find its thresholds changed or its objects frozen for ever."""
    import gc

    from qifu import cli

    args = ["policy", "batch", "--number", "BF-无此批次", "--out", str(tmp_path / "b.csv")]
    calls = []  # counted, not done: it would keep this test process's objects for ever
    monkeypatch.setattr(cli, "_freeze_for_exit", lambda: calls.append("freeze"))
    before = gc.get_threshold()
    with pytest.raises(SystemExit) as ended:
        cli.main(args)
    assert ended.value.code == 1 and gc.get_threshold() == before and calls == []
    # the process's own command line (no argv) is the batch: tuned, and frozen at its end
    monkeypatch.setattr(sys, "argv", ["qifu", *args])
    try:
        with pytest.raises(SystemExit):
            cli.main()
        assert gc.get_threshold() == cli.BATCH_GC_THRESHOLD and calls == ["freeze"]
    finally:
        gc.set_threshold(*before)


def test_expert_account_opens_one_sign_in_for_a_known_expert(cli_db, small_county):
    assert qifu("import", "experts", small_county / "experts.csv", env=cli_db).returncode == 0
    code = next(csv.DictReader((small_county / "experts.csv").open(encoding="utf-8-sig")))["expert_code"]
    done = qifu("expert-account", code, "--username", "zhuanjia1", env=cli_db)
    assert done.returncode == 0 and "zhuanjia1：专家" in done.stdout and "初始密码" in done.stdout
    again = qifu("expert-account", code, "--username", "zhuanjia2", env=cli_db)
    assert again.returncode == 1 and "已有登录账号 zhuanjia1" in again.stderr
    unknown = qifu("expert-account", "NO-SUCH", "--username", "zhuanjia3", env=cli_db)
    assert unknown.returncode == 1 and "没有编号为 NO-SUCH 的专家" in unknown.stderr
