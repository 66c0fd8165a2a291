"""The `qifu` command as a bureau's nightly script runs it: exit codes, stderr, error report."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ENT2, REGISTRY_HEADER, registry_rows, write


def qifu(*args, data_dir: Path):
    env = dict(os.environ, QIFU_DATA_DIR=str(data_dir))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def cli_db(tmp_path):
    """The CLI runs in its own process; on SQLite it gets its own fresh database file."""
    if os.environ.get("QIFU_DATABASE_URL", "").startswith("postgres"):
        pytest.skip("the CLI process tests run against the embedded SQLite database")
    return tmp_path / "var"


def test_import_success_on_a_fresh_database(tmp_path, cli_db):
    path = write(tmp_path / "r.csv", REGISTRY_HEADER, registry_rows())
    result = qifu("import", "registry", path, data_dir=cli_db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "已导入 registry：3 行，新增 3，更新 0，未变化 0"


def test_bad_rows_exit_non_zero_with_each_row_on_stderr_and_an_error_file(tmp_path, cli_db):
    rows = registry_rows()
    rows[1] = rows[1].replace(ENT2, ENT2[:17] + ("0" if ENT2[17] != "0" else "1"))
    rows[2] = rows[2].replace("坎墩街道", "火星镇")
    report = tmp_path / "errors.csv"
    result = qifu("import", "registry", write(tmp_path / "r.csv", REGISTRY_HEADER, rows), "--errors", report,
                  data_dir=cli_db)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("第3行 字段 uscc（统一社会信用代码） 值“")
    assert lines[1] == "第4行 字段 town（所属镇街） 值“火星镇”：不是本辖区的镇街（请使用镇街全称，如 浒山街道）"
    assert lines[-1] == f"qifu: {tmp_path / 'r.csv'}: 2 处错误，未导入任何数据；错误报告：{report}"
    with report.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["field"], r["value"]) for r in rows][1] == ("4", "town", "火星镇")
    # nothing was stored: the same file, fixed, imports all three rows
    fixed = qifu("import", "registry", write(tmp_path / "ok.csv", REGISTRY_HEADER, registry_rows()), data_dir=cli_db)
    assert "新增 3" in fixed.stdout


def test_unreadable_file_is_one_line(tmp_path, cli_db):
    (tmp_path / "zero.csv").write_bytes(b"")
    result = qifu("import", "tax", tmp_path / "zero.csv", data_dir=cli_db)
    assert result.returncode == 1
    assert result.stderr.strip() == f"qifu: {tmp_path / 'zero.csv'}: 文件为空（0字节）；未导入任何数据"


def test_unknown_kind_is_a_usage_error(tmp_path, cli_db):
    result = qifu("import", "people", tmp_path / "x.csv", data_dir=cli_db)
    assert result.returncode == 2


def test_synth_writes_contract_files(tmp_path):
    result = qifu("synth", "--entities", "300", "--seed", "2", "--out", tmp_path / "c", data_dir=tmp_path / "var")
    assert result.returncode == 0, result.stderr
    for name in ("registry", "reports", "shareholders", "tax", "social", "reminders", "behaviour", "injected_errors"):
        assert (tmp_path / "c" / f"{name}.csv").stat().st_size > 0


def test_check_writes_findings_per_the_contract(tmp_path, cli_db, small_county):
    for kind in ("registry", "reports", "shareholders", "tax", "social", "reminders"):
        result = qifu("import", kind, small_county / f"{kind}.csv", data_dir=cli_db)
        assert result.returncode == 0, result.stderr
    out = tmp_path / "findings.json"
    result = qifu("check", "--year", "2025", "--out", out, data_dir=cli_db)
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data and set(data[0]) == {"uscc", "report_year", "rule_id", "severity", "fields", "message", "suggestion"}
    first = result.stdout.splitlines()[0]
    assert first.startswith("已校验 2025 年度年报 ") and f"问题 {len(data)} 个" in first
    # the analytical copy was written by the imports and is what the check read
    assert (cli_db / "analytics" / "reports.parquet").exists()


def test_check_refuses_an_unknown_output_format(tmp_path, cli_db):
    result = qifu("check", "--year", "2025", "--out", tmp_path / "f.txt", data_dir=cli_db)
    assert result.returncode == 1
    assert result.stderr.strip() == f"qifu: 输出文件扩展名应为 .csv、.xlsx 或 .json：{tmp_path / 'f.txt'}"


def test_ask_prints_json_per_the_contract(tmp_path, cli_db):
    import json

    result = qifu("ask", "年报什么时候截止", "--json", data_dir=cli_db)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"answer", "score", "sources", "handoff"} <= set(data)
    assert data["handoff"] is False and data["sources"][0]["id"] == "filing_window"
    assert result.stderr == ""


def test_remind_run_decides_sends_and_reports_per_the_contract(tmp_path, cli_db, small_county):
    import re

    env_extra = {"QIFU_SMS_BACKEND": "file"}
    for kind in ("registry", "reports", "shareholders", "tax", "social", "reminders"):
        assert qifu("import", kind, small_county / f"{kind}.csv", data_dir=cli_db).returncode == 0
    out = tmp_path / "sent.csv"
    os.environ.update(env_extra)
    try:
        first = qifu("remind", "run", "--date", "2027-05-15", "--out", out, data_dir=cli_db)
        assert first.returncode == 0, first.stderr
        with out.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and list(rows[0]) == ["uscc", "channel", "purpose", "recipient", "sent_at", "message"]
        texts = [r for r in rows if r["channel"] == "sms"]
        assert texts and all("年报不收费" in r["message"] and "退订" in r["message"] for r in texts)
        assert not any(re.search(r"https?://|www\.", r["message"]) for r in rows)
        assert all(r["sent_at"].startswith("2027-05-15T09:00") for r in texts)
        from qifu.reminders.channels import FileSmsChannel

        texts_sent = FileSmsChannel.delivered(cli_db / "sms")
        assert len(texts_sent) == len(texts)
        again = qifu("remind", "run", "--date", "2027-05-15", "--out", tmp_path / "again.csv", data_dir=cli_db)
        assert again.returncode == 0
        assert FileSmsChannel.delivered(cli_db / "sms") == texts_sent  # the same day twice sends nothing new
        assert "holdout" in first.stdout
        # the text plan's later contacts (1, 12 and 23 June) go out: a contact is counted once,
        # so the season cap of 4 is not reached early
        for day in ("2027-06-01", "2027-06-12", "2027-06-23"):
            later = qifu("remind", "run", "--date", day, "--out", tmp_path / f"{day}.csv", data_dir=cli_db)
            assert later.returncode == 0, later.stderr
            assert "season_cap 0" in later.stdout, later.stdout
    finally:
        for k in env_extra:
            os.environ.pop(k, None)
