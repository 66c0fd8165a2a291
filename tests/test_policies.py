"""Policy funding in the product: `qifu policy match` through the contract, checked against the
contract files by a reference written here; re-matching that changes nothing; firms that stop
being eligible flagged; 免申即享 notices, confirmation and the first installment; applications
and their review; checks before paying; the ledger within its budget and once per installment,
also under concurrent requests; batches exported byte for byte again; the treasury's answer."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import subprocess
import sys
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import polars as pl
import pytest
from django.db.models import F
from django.utils import timezone

from qifu.checks.models import Finding
from qifu.imports.actions import import_file
from qifu.land import actions as land_actions
from qifu.policies import actions
from qifu.policies.models import Application, Match, MatchRun, Payment, PaymentBatch, Policy
from qifu.reminders.models import OutboxMessage
from qifu.sources.models import SocialRecord
from tests.factories import portal_client

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent / "src" / "qifu" / "data"
NOW = dt.datetime(2026, 9, 1, 10, 0, tzinfo=SH)


def qifu(env, *args, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *python, "-m", "qifu", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def imported(done: subprocess.CompletedProcess) -> set[str]:
    """The modules a command run with ``python=("-X", "importtime")`` imported."""
    return {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def num(v: str) -> Decimal | None:
    return Decimal(v) if v not in ("", None) else None


def reference(folder: Path, land_file: Path, year: int) -> dict[str, dict[str, Decimal]]:
    """Three example policies computed from the contract files alone, as a bureau's analyst
    would in a spreadsheet: the expected §2.4 rows."""
    registry = {r["uscc"]: r for r in read(folder / "registry.csv")}
    indicators = {r["uscc"]: r for r in read(folder / "indicators.csv") if int(r["year"]) == year}
    land = {r["uscc"]: r for r in read(land_file)}
    tax = {r["uscc"]: r for r in read(folder / "tax.csv") if int(r["year"]) == year}
    social = {r["uscc"]: r for r in read(folder / "social.csv") if int(r["year"]) == year}
    reports = {r["uscc"]: r for r in read(folder / "reports.csv") if int(r["report_year"]) == year}
    out: dict[str, dict[str, Decimal]] = {"CX-2025-01": {}, "CX-2025-04": {}, "CX-2025-05": {}}
    for uscc, g in registry.items():
        if g["status"] != "active":
            continue
        i, c = indicators.get(uscc), (land.get(uscc) or {}).get("class")
        if i and i["above_threshold"].lower() in ("true", "1", "是") and num(i["rd_spend"]) is not None \
                and num(i["rd_spend"]) >= 100 and c in ("A", "B"):
            out["CX-2025-01"][uscc] = min(num(i["rd_spend"]) * Decimal("0.05"), Decimal(50))
        s = social.get(uscc)
        if g["entity_type"] == "enterprise" and s and num(s["insured_count"]) is not None \
                and 1 <= num(s["insured_count"]) <= 100 and (num(s["arrears"]) or 0) == 0:
            out["CX-2025-04"][uscc] = num(s["insured_count"]) * Decimal("0.05")
        r, t = reports.get(uscc), tax.get(uscc)
        on_time = bool(r) and r["filed_at"][:10] <= f"{year + 1}-06-30"
        age = year - int(g["established_on"][:4])
        if g["entity_type"] == "enterprise" and age <= 3 and t and num(t["declared_sales"]) is not None \
                and num(t["declared_sales"]) >= 500 and on_time:
            out["CX-2025-05"][uscc] = Decimal(5)
    budgets = {"CX-2025-01": Decimal(2000), "CX-2025-04": Decimal(3000)}
    for pid, rows in out.items():
        rows.update({u: a.quantize(Decimal("0.000001"), ROUND_HALF_UP) for u, a in rows.items()})
        total = sum(rows.values(), Decimal(0))
        if pid in budgets and total > budgets[pid]:
            rows.update({u: (a * budgets[pid] / total).quantize(Decimal("0.0001"), ROUND_DOWN) for u, a in rows.items()})
    return out


STORED = r"""
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu.policies.models import Match
from qifu.policies.notices import reachable
from qifu.registry.models import Entity
from qifu.reminders.models import OutboxMessage
import polars as pl
entities = pl.DataFrame(list(Entity.objects.values("uscc", "town_id", "phone", "email")))
reached = set(reachable(entities)["uscc"])
town = dict(zip(entities["uscc"], entities["town_id"]))
wrong, told, auto = 0, set(), set()
for m in Match.objects.select_related("policy"):
    wrong += m.town_id != town[m.entity_id]
    if m.policy.mode == "automatic":
        auto.add(m.entity_id)
        wrong += (m.told_at is not None) != (m.entity_id in reached)
        if m.told_at:
            told.add(m.entity_id)
messages = set(OutboxMessage.objects.filter(purpose="policy").values_list("entity_id", flat=True))
print(wrong, len(auto), len(told), len(auto - reached), messages == told)
"""


DIGESTS = r"""
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
import polars as pl
from pathlib import Path
from qifu.engine.policies import match as engine
from qifu.engine.policies.policy import load
from qifu.policies.actions import _digest
p, _ = load(Path(os.environ["POLICY"]))
rows = {"uscc": ["91330282MA000AQY8J", "91330282MA000B2K5X"], "micro": [49600, 1200000],
        "reason": ["年末参保人数：13", "年末参保人数：240"]}
changed = [dict(rows, micro=[49600, 1200001]), dict(rows, reason=["年末参保人数：13", "年末参保人数：241"]),
           {k: v[:1] for k, v in rows.items()}]
print(" ".join(_digest(engine.Outcome(p, pl.DataFrame(r, schema=engine.SCHEMA))) for r in [rows, *changed]))
"""


def test_an_outcome_has_the_same_digest_in_every_process_and_another_when_a_row_changes(process_env):
    env = dict(process_env, POLICY=str(ROOT / "policies" / "CX-2025-04.yaml"))
    runs = [subprocess.run([sys.executable, "-c", DIGESTS], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    first, second = (r.stdout.split() for r in runs)
    assert first == second and len(set(first)) == 4  # an amount, a reason or a row changed: another digest


def test_qifu_policy_match_finds_exactly_the_firms_and_amounts_of_the_contract_files(process_env, small_county, tmp_path):
    for kind in ("registry", "reports", "tax", "social", "parcels", "indicators"):
        done = qifu(process_env, "import", kind, str(small_county / f"{kind}.csv"))
        assert done.returncode == 0, done.stderr
    land = tmp_path / "land.csv"
    done = qifu(process_env, "land", "evaluate", "--year", "2025", "--method", str(ROOT / "land" / "method-example.yaml"),
                "--out", str(land))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "policies"
    folder.mkdir()
    for pid in ("CX-2025-01", "CX-2025-04", "CX-2025-05"):
        (folder / f"{pid}.yaml").write_text((ROOT / "policies" / f"{pid}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "matches.csv"
    done = qifu(process_env, "policy", "match", "--policies", str(folder), "--year", "2025", "--out", str(out),
                python=("-X", "importtime"))
    assert done.returncode == 0, done.stderr
    # over the analytical copies a run needs neither pyarrow nor NumPy (0.1 s of every run)
    assert "qifu.policies.actions" in imported(done) and not {"pyarrow", "numpy"} & imported(done)
    rows = read(out)
    assert list(rows[0]) == ["policy_id", "uscc", "amount", "reason"]
    got: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        got.setdefault(r["policy_id"], {})[r["uscc"]] = Decimal(r["amount"])
        assert r["reason"] and "：" in r["reason"]
    want = reference(small_county, land, 2025)
    assert all(want[p] for p in want), "the small county should have firms for every policy"
    for pid, expected in want.items():
        assert got.get(pid, {}) == expected, pid
    # stored with each firm's township, told where a text or an e-mail reaches the firm: one
    # message per firm (the run reads the registry's analytical copy for this, not the database)
    done = subprocess.run([sys.executable, "-c", STORED], env=process_env, capture_output=True, text=True, timeout=300)
    wrong, automatic, told, unreached, one_each = done.stdout.split()
    assert (wrong, one_each) == ("0", "True") and int(told) > 0 and int(automatic) == int(told) + int(unreached), done
    # matching again changes nothing and writes the same file
    again = tmp_path / "again.csv"
    done = qifu(process_env, "policy", "match", "--policies", str(folder), "--year", "2025", "--out", str(again),
                python=("-X", "importtime"))
    assert done.returncode == 0 and "新增 0，变更 0，不再符合 0，通知 0" in done.stdout, done.stdout + done.stderr
    assert not {"pyarrow", "numpy"} & imported(done)
    assert again.read_bytes() == out.read_bytes()
    # bad input: a clear one-line reason naming the file and the place, nothing stored
    (folder / "bad.yaml").write_text("id: X\ntitle: 坏\nyear: 2025\neligible: \"rd > 1\"\namount: \"1\"\n", encoding="utf-8")
    done = qifu(process_env, "policy", "match", "--policies", str(folder), "--year", "2025", "--out", str(out))
    assert done.returncode == 1 and "bad.yaml：eligible：不认识的字段：rd" in done.stderr


# --- in the database -----------------------------------------------------------------------------


@pytest.fixture
def county(checked_county, tmp_path):
    """The checked county with its land data evaluated for 2025, and the example policies."""
    folder = checked_county["folder"]
    import_file("parcels", folder / "parcels.csv")
    import_file("indicators", folder / "indicators.csv")
    land_actions.evaluate(2025, ROOT / "land" / "method-example.yaml")
    return checked_county


def policy_folder(tmp_path: Path, **texts: str) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    for name, text in texts.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def example(pid: str) -> str:
    return (ROOT / "policies" / f"{pid}.yaml").read_text(encoding="utf-8")


def test_matching_stores_tells_once_and_flags_firms_no_longer_eligible(county, tmp_path):
    folder = policy_folder(tmp_path, a=example("CX-2025-04"), b=example("CX-2025-03"))
    r = actions.match_folder(folder, 2025, out=tmp_path / "m.json", now=NOW)
    auto = Match.objects.filter(policy__code="CX-2025-04")
    assert r.new == auto.count() + Match.objects.filter(policy__code="CX-2025-03").count() > 0
    assert set(auto.values_list("status", flat=True)) == {"eligible"}
    # one message per firm found, by a 免申即享 policy (to confirm) or a 需申请 one (invited to apply)
    told = OutboxMessage.objects.filter(purpose="policy")
    assert told.count() == r.notified == told.values("entity_id").distinct().count() > 0
    assert set(told.values_list("entity_id", flat=True)) == set(
        Match.objects.filter(told_at__isnull=False).values_list("entity_id", flat=True))
    invited = Match.objects.filter(policy__code="CX-2025-03", told_at__isnull=False).exclude(
        entity_id__in=auto.values("entity_id")).first()
    confirm = auto.filter(told_at__isnull=False).exclude(
        entity_id__in=Match.objects.filter(policy__code="CX-2025-03").values("entity_id")).first()
    assert invited and confirm
    body = told.get(entity_id=invited.entity_id).body
    assert body.startswith(f"【企服】贵单位可申请“{invited.policy.title}”（CX-2025-03）") and "需提交申请" in body
    assert "无需申请" in told.get(entity_id=confirm.entity_id).body
    # again: nothing changes, nobody is told twice
    before = list(auto.order_by("id").values_list("id", "matched_at", "amount"))
    r2 = actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=1))
    assert (r2.new, r2.changed, r2.lapsed, r2.notified) == (0, 0, 0, 0)
    assert list(auto.order_by("id").values_list("id", "matched_at", "amount")) == before
    # a new match stores no history: the line of its making follows from the row
    m = auto.order_by("entity_id").first()
    first_version, other = m.version, auto.exclude(pk=m.pk).order_by("entity_id").first()
    made = {"at": timezone.localtime(NOW).isoformat(timespec="seconds"), "by": "系统",
            "note": f"按政策版本 {first_version} 匹配：符合条件，金额 {m.amount.normalize():f} 万元"}
    assert m.history == [] and m.events == [made]
    # arrears appear for one firm: it is flagged, not dropped, and its history now begins with
    # the line of its making
    SocialRecord.objects.filter(entity_id=m.entity_id, year=2025).update(arrears=Decimal("1.5"))
    r3 = actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=2))
    m.refresh_from_db()
    assert r3.lapsed == 1 and m.status == "lapsed" and "不再符合" in m.history[-1]["note"]
    assert m.lapsed_at == NOW + dt.timedelta(days=2) and m.matched_at == NOW
    assert m.history[0] == made and len(m.history) == 2
    assert Match.objects.filter(pk=m.pk).exists()
    # a changed policy is a new version; the matches say which one they were made with
    changed = example("CX-2025-04").replace("insured_count * 0.05", "insured_count * 0.06")
    (folder / "a.yaml").write_text(changed, encoding="utf-8")
    actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=3))
    p = Policy.objects.get(code="CX-2025-04")
    assert p.versions.count() == 2
    before = other.amount
    other.refresh_from_db()
    assert other.matched_at == NOW + dt.timedelta(days=3)
    assert other.version == p.version and other.amount == (Decimal("0.06") * Decimal(
        str(SocialRecord.objects.get(entity_id=other.entity_id, year=2025).insured_count))).quantize(Decimal("0.000001"))
    # its history keeps the version and amount it was made with, before the new ones
    assert [h["note"] for h in other.history] == [
        f"按政策版本 {first_version} 匹配：符合条件，金额 {before.normalize():f} 万元",
        f"按政策版本 {p.version} 重新匹配：金额 {before.normalize():f} → {other.amount.normalize():f} 万元"]
    assert other.history[0]["at"] == made["at"] and other.events == other.history


def test_the_matches_file_takes_its_place_only_once_the_matches_are_stored(county, tmp_path, monkeypatch):
    folder = policy_folder(tmp_path, a=example("CX-2025-04"))
    out = tmp_path / "out" / "m.csv"

    def broken(*args, **kwargs):
        raise RuntimeError("磁盘已满")

    monkeypatch.setattr(actions, "_insert_new", broken)
    with pytest.raises(RuntimeError, match="磁盘已满"):
        actions.match_folder(folder, 2025, out=out, now=NOW)
    assert not Match.objects.exists() and not OutboxMessage.objects.filter(purpose="policy").exists()
    assert list(out.parent.iterdir()) == []  # neither the file nor the one written beside it
    monkeypatch.undo()
    r = actions.match_folder(folder, 2025, out=out, now=NOW)
    assert list(out.parent.iterdir()) == [out] and len(read(out)) == Match.objects.count() == r.new > 0


def test_a_firm_is_told_once_per_run_of_every_new_automatic_match(county, tmp_path):
    from django.db import connection

    from qifu.policies import notices
    from qifu.registry.models import Entity

    folder = policy_folder(tmp_path, a=example("CX-2025-04"), b=example("CX-2025-07"))
    r = actions.match_folder(folder, 2025, now=NOW)
    pairs = {}
    for m in Match.objects.filter(policy__code__in=["CX-2025-04", "CX-2025-07"]).select_related("policy"):
        pairs.setdefault(m.entity_id, []).append(m)
    twice = sorted(u for u, ms in pairs.items() if len(ms) == 2)
    assert len(twice) >= 2 and len(pairs) > len(twice)
    told = OutboxMessage.objects.filter(purpose="policy")
    assert told.count() == r.notified == told.values("entity_id").distinct().count()
    assert set(told.values_list("entity_id", flat=True)) <= set(pairs)
    firm = next(u for u in twice if told.filter(entity_id=u).exists())
    ms = sorted(pairs[firm], key=lambda m: (-m.amount, m.policy.code))
    msg = told.get(entity_id=firm)
    assert msg.body == notices.body(ms[0].policy.title, ms[0].policy.code, ms[0].amount + ms[1].amount, n=2)
    assert "等 2 项政策" in msg.body and msg.reason == "符合政策 CX-2025-04、CX-2025-07（免申即享）"
    assert all(m.told_at is not None for m in Match.objects.filter(entity_id=firm))
    # a firm nobody can reach is not marked told, and is told of everything once it can be
    mute = next(u for u in twice if u != firm)
    OutboxMessage.objects.filter(entity_id=mute).delete()
    Match.objects.filter(entity_id=mute).update(told_at=None)
    phone, email = Entity.objects.filter(uscc=mute).values_list("phone", "email").get()
    Entity.objects.filter(uscc=mute).update(phone="", email="")
    Match.objects.filter(entity_id=mute, policy__code="CX-2025-07").delete()
    Policy.objects.filter(code="CX-2025-07").update(last_digest="")
    r2 = actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=1))
    assert r2.new == 1 and r2.notified == 0 and not told.filter(entity_id=mute).exists()
    assert not Match.objects.filter(entity_id=mute, told_at__isnull=False).exists()
    # staff see whom the system could not tell, to call them
    admin = staff(county, "admin")
    untold = Match.objects.filter(policy__code="CX-2025-07", status="eligible", told_at__isnull=True)
    assert 1 <= untold.count() < Match.objects.filter(policy__code="CX-2025-07").count()
    page = admin.get("/policies/CX-2025-07/").content.decode()
    assert f'尚未通知 {untold.count()}</a>' in page
    page = admin.get("/policies/CX-2025-07/?status=untold&format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(page.content))["政策匹配"]
    listed = {row[0] for row in list(sheet.iter_rows(values_only=True))[1:]}
    assert mute in listed and listed == set(untold.values_list("entity_id", flat=True))
    m = Match.objects.get(entity_id=mute, policy__code="CX-2025-07")
    page = admin.get(f"/policies/matches/{m.pk}/").content.decode()
    assert "尚未通知" in page and m.history == []
    made = f"系统 · 按政策版本 {m.version} 匹配：符合条件，金额 {m.amount.normalize():f} 万元"
    assert made in page  # the line of its making
    user = county["users"]["admin"]
    type(user).objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)  # as an administrator's account is
    assert made in staff(county, "admin").get(f"/admin/policies/match/{m.pk}/change/").content.decode()  # Django admin
    told_one = Match.objects.filter(policy__code="CX-2025-07", told_at__isnull=False).first()
    assert "已通过短信或邮件通知" in admin.get(f"/policies/matches/{told_one.pk}/").content.decode()
    Entity.objects.filter(uscc=mute).update(phone=phone, email=email)
    Match.objects.filter(entity_id=mute, policy__code="CX-2025-07").delete()
    Policy.objects.filter(code="CX-2025-07").update(last_digest="")
    r3 = actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=2))
    assert r3.new == 1 and r3.notified == 1 and told.get(entity_id=mute).body.count("等 2 项政策") == 1
    assert not Match.objects.filter(entity_id=mute, told_at__isnull=True).exists()
    # nothing new: nobody told again
    assert actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=3)).notified == 0
    assert told.count() == r.notified  # the mute firm's first message was taken away above
    # a county upgraded from one message per policy: what it was told of counts as told
    from importlib import import_module

    mark = import_module("qifu.policies.migrations.0002_told_and_fewer_indexes").MARK_TOLD
    old = Match.objects.filter(policy__code="CX-2025-04", entity_id=firm)
    Match.objects.filter(entity_id=firm).update(told_at=None)
    told.filter(entity_id=firm).update(key=f"policy:CX-2025-04:{firm}")
    with connection.cursor() as cur:
        cur.execute(mark)
    assert old.get().told_at is not None
    assert Match.objects.get(policy__code="CX-2025-07", entity_id=firm).told_at is None


def test_a_firm_nothing_reached_is_told_the_morning_after_it_gets_a_number_but_not_a_quiet_match(county, tmp_path):
    from qifu import worker
    from qifu.policies import notices
    from qifu.registry.models import Entity

    job = next(j for j in worker.JOBS if j.id == "policy_tell_reached")
    assert worker.handler(job) is notices.tell_reached
    folder = policy_folder(tmp_path, a=example("CX-2025-04"), b=example("CX-2025-07"))
    actions.match_folder(folder, 2025, now=NOW, notify=False)  # a quiet run: every new match waits
    assert Match.objects.filter(quiet=True).count() == Match.objects.count() > 0
    pairs: dict[str, int] = {}
    for uscc in Match.objects.values_list("entity_id", flat=True):
        pairs[uscc] = pairs.get(uscc, 0) + 1
    both = [u for u, n in pairs.items() if n == 2]
    mute = both[0]
    Entity.objects.filter(uscc=mute).update(phone="", email="")
    assert notices.tell_reached(NOW + dt.timedelta(hours=9)) == 0  # quiet matches wait for a run that notifies
    # as if matched by a run that notifies, which told every firm but the one nothing reached
    Match.objects.update(quiet=False)
    Match.objects.exclude(entity_id=mute).update(told_at=NOW)
    assert notices.tell_reached(NOW + dt.timedelta(hours=9)) == 0 and not OutboxMessage.objects.exists()
    # the registry gives it a mobile number: told the next morning, of both matches, once
    Entity.objects.filter(uscc=mute).update(phone="13905740031")
    morning = NOW + dt.timedelta(days=1, hours=9)
    assert notices.tell_reached(morning) == 1
    msg = OutboxMessage.objects.get(entity_id=mute)
    assert msg.recipient == "13905740031" and "等 2 项政策" in msg.body and msg.key.startswith("policy-reached:")
    assert not Match.objects.filter(entity_id=mute, told_at__isnull=True).exists()
    assert notices.tell_reached(morning + dt.timedelta(days=1)) == 0
    # and the next match run that finds something new tells it of nothing again
    Policy.objects.update(last_digest="")
    Match.objects.filter(policy__code="CX-2025-07").exclude(entity_id=mute).first().delete()
    assert actions.match_folder(folder, 2025, now=morning + dt.timedelta(hours=12)).notified == 1
    assert OutboxMessage.objects.filter(entity_id=mute).count() == 1


TELL_RACE = r"""
import os, threading, datetime as dt, time
from decimal import Decimal
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db
db.ensure_ready()
import polars as pl
from django.db import connection, transaction
from django.utils import timezone
from qifu.registry.models import Entity, Township
from qifu.policies.models import Match, Policy
from qifu.policies import notices
from qifu.reminders.models import OutboxMessage

town = Township.objects.first()
now = timezone.now()
policy = Policy.objects.create(code="T-TELL", title="并发通知", year=2025, mode="automatic", eligible="TRUE", amount="10",
                               version="v1", text="", updated_at=now)
for i in range(5):
    e = Entity.objects.create(uscc=f"91330282MB{i:08d}", name=f"企业{i}", entity_type="enterprise", town=town,
                              phone=f"139057400{i:02d}", established_on=dt.date(2020, 1, 1), status="active",
                              imported_at=now)
    Match.objects.create(policy=policy, entity=e, version="v1", amount=Decimal("10"), reason="测试", status="eligible",
                         eligible_on=now.date(), matched_at=now)
reach = notices.reachable(pl.DataFrame(list(Entity.objects.values("uscc", "phone", "email"))))
none = pl.DataFrame(schema={"uscc": pl.String, "code": pl.String, "title": pl.String, "micro": pl.Int64,
                     "mode": pl.String})
told, release = threading.Event(), threading.Event()
out = {}

def morning():  # the worker's job, holding its transaction open until released
    try:
        with transaction.atomic():
            out["morning"] = notices.tell_reached(now)
            told.set()
            release.wait(10)
    finally:
        connection.close()

def run():  # a match run's telling at the same moment
    try:
        with transaction.atomic():
            out["run"] = notices.tell(["T-TELL"], now + dt.timedelta(seconds=5), none, reach)
    finally:
        connection.close()

a = threading.Thread(target=morning)
a.start()
told.wait(10)
b = threading.Thread(target=run)
b.start()
time.sleep(1.5)  # the run reaches the matches while the morning's job still holds them
release.set()
a.join(); b.join()
print(out["morning"], out["run"], OutboxMessage.objects.filter(purpose="policy").count())
"""


def test_a_match_run_and_the_morning_job_at_once_tell_a_firm_once(process_env):
    out = subprocess.run([sys.executable, "-c", TELL_RACE], env=process_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    # the morning's job told the five firms; the run, waiting for it, found them told
    assert out.stdout.split() == ["5", "0", "5"], out.stdout


AUTO = """id: T-AUTO
title: 测试奖励
year: 2025
mode: automatic
eligible: "entity_type = 'enterprise' AND status = 'active' AND filed_on_time"
amount: "10"
budget: {budget}
installments: [0.6, 0.4]
milestones: [项目验收]
"""


def test_a_firm_an_application_policy_finds_is_invited_to_apply_and_reminded_once(county, tmp_path):
    from qifu.policies import notices

    folder = policy_folder(tmp_path, a=example("CX-2025-04"), b=example("CX-2025-03"))
    actions.match_folder(folder, 2025, now=NOW)
    auto = set(Match.objects.filter(policy__code="CX-2025-04").values_list("entity_id", flat=True))
    invited = Match.objects.filter(policy__code="CX-2025-03", told_at__isnull=False).select_related("policy", "entity")
    only = [m for m in invited.order_by("entity_id") if m.entity_id not in auto]
    both = [m for m in invited.order_by("entity_id") if m.entity_id in auto]
    assert len(only) >= 2 and both
    told = OutboxMessage.objects.filter(purpose="policy", key__startswith="policy:")
    m = only[0]
    msg = told.get(entity_id=m.entity_id)
    assert msg.body == notices.TOLD.apply_one.format(title=m.policy.title, code="CX-2025-03",
                                                     amount=f"{m.amount.normalize():f}")
    assert msg.reason == "符合政策 CX-2025-03（需申请）" and "无需申请" not in msg.body
    # a firm both kinds find is told of both in one text: what to confirm and what to apply for
    b = both[0]
    other = Match.objects.get(entity_id=b.entity_id, policy__code="CX-2025-04")
    msg = told.get(entity_id=b.entity_id)
    assert "等 2 项政策条件" in msg.body and "其中 1 项需提交申请" in msg.body
    assert f"预计合计可得 {(b.amount + other.amount).normalize():f} 万元" in msg.body
    assert msg.reason == "符合政策 CX-2025-03、CX-2025-04（免申即享及需申请）"
    # two weeks on, whoever has neither applied nor declined is reminded once; not who applied or declined
    applied, declined = only[0], only[1]
    actions.do_apply(applied, "本企业研发中心已通过认定，申请奖励。", now=NOW + dt.timedelta(days=3))
    actions.do_decline(declined, "不需要", now=NOW + dt.timedelta(days=3))
    confirmed(other)
    later = NOW + dt.timedelta(days=notices.FOLLOW_UP_DAYS)
    assert notices.follow_up(later) > 0
    again = OutboxMessage.objects.filter(purpose="policy", key__startswith="policy-follow-up:")
    assert not again.filter(entity_id__in=[applied.entity_id, declined.entity_id]).exists()
    # the firm that confirmed its 免申即享 policy is reminded of the application only
    msg = again.get(entity_id=b.entity_id)
    assert msg.body == notices.REMINDED.apply_one.format(title=b.policy.title, code="CX-2025-03",
                                                         amount=f"{b.amount.normalize():f}")
    assert msg.reason == "符合政策 CX-2025-03（需申请，尚未申请）" and "放弃" in msg.body
    assert notices.follow_up(later + dt.timedelta(days=30)) == 0
    admin = staff(county, "admin")
    page = admin.get(f"/policies/matches/{b.pk}/").content.decode()
    assert "（邀请申请）" in page and "因尚未申请再次提醒" in page
    ignored = Match.objects.filter(policy__code="CX-2025-03", status="eligible", followed_up_at__isnull=False)
    assert f"提醒后仍未申请 {ignored.count()}</a>" in admin.get("/policies/CX-2025-03/").content.decode()


def test_application_matches_stored_before_invitations_wait_for_a_run_that_notifies(county, tmp_path):
    """Migration 0007: an older release never told the firms an application policy found; its
    untold matches wait (quiet) for the next match run that notifies, not the morning's job."""
    import importlib

    from django.db import connection

    from qifu.policies import notices

    folder = policy_folder(tmp_path, b=example("CX-2025-03"))
    actions.match_folder(folder, 2025, now=NOW, notify=False)
    app = Match.objects.filter(policy__code="CX-2025-03")
    Match.objects.update(quiet=False)  # as an older release stored them
    Match.objects.filter(pk=app.order_by("id").first().pk).update(status="applied")
    wait = importlib.import_module("qifu.policies.migrations.0007_application_matches_wait").WAIT
    with connection.cursor() as cur:
        cur.execute(wait)
    assert set(app.filter(quiet=True).values_list("status", flat=True)) == {"eligible"}
    assert app.filter(quiet=False).count() == 1
    assert notices.tell_reached(NOW + dt.timedelta(days=1)) == 0
    r = actions.match_folder(policy_folder(tmp_path, a=example("CX-2025-04"), b=example("CX-2025-03")), 2025,
                             now=NOW + dt.timedelta(days=2))
    assert r.notified > 0 and app.filter(status="eligible", told_at__isnull=False).exists()


def test_a_firm_that_has_not_confirmed_is_reminded_once_two_weeks_after_it_was_told(county, tmp_path):
    from qifu import worker
    from qifu.policies import notices

    folder = policy_folder(tmp_path, a=example("CX-2025-04"), b=example("CX-2025-07"))
    r = actions.match_folder(folder, 2025, now=NOW)
    told = Match.objects.filter(status="eligible", told_at__isnull=False)
    firms = sorted(set(told.values_list("entity_id", flat=True)))
    assert r.notified == len(firms) >= 3
    both = next(u for u in firms if told.filter(entity_id=u).count() == 2)
    held = next(u for u in firms if u != both)
    confirmed(Match.objects.select_related("entity").get(entity_id=both, policy__code="CX-2025-04"))
    Match.objects.filter(entity_id=held).update(status="held", hold_reason="测试")  # staff are on it
    job = next(j for j in worker.JOBS if j.id == "policy_follow_up")
    assert worker.handler(job) is notices.follow_up
    # not before two weeks
    assert notices.follow_up(NOW + dt.timedelta(days=notices.FOLLOW_UP_DAYS) - dt.timedelta(minutes=1)) == 0
    later = NOW + dt.timedelta(days=notices.FOLLOW_UP_DAYS)
    again = OutboxMessage.objects.filter(purpose="policy", key__startswith="policy-follow-up:")
    waiting = set(told.values_list("entity_id", flat=True))  # a firm never told (nobody can reach it) is staff's
    assert notices.follow_up(later) == len(waiting) == again.count()
    assert set(again.values_list("entity_id", flat=True)) == waiting and held not in waiting
    # the firm that confirmed one policy is reminded only of the other, by its amount
    m = Match.objects.select_related("policy").get(entity_id=both, status="eligible")
    assert m.policy.code == "CX-2025-07" and again.get(entity_id=both).body == notices.REMINDED.one.format(
        title=m.policy.title, code=m.policy.code, amount=f"{m.amount.normalize():f}")
    assert any("等 2 项政策" in b for b in again.values_list("body", flat=True))
    assert all("尚未确认" in b and "无需申请" in b for b in again.values_list("body", flat=True))
    assert not told.filter(followed_up_at__isnull=True).exists()
    assert not Match.objects.filter(told_at__isnull=True, followed_up_at__isnull=False).exists()
    # once only
    assert notices.follow_up(later + dt.timedelta(days=30)) == 0
    admin = staff(county, "admin")
    assert "再次提醒" in admin.get(f"/policies/matches/{m.pk}/").content.decode()
    # staff's list of those to call: reminded and still not confirmed
    ignored = Match.objects.filter(policy__code="CX-2025-07", status="eligible", followed_up_at__isnull=False)
    assert f"提醒后仍未确认 {ignored.count()}</a>" in admin.get("/policies/CX-2025-07/").content.decode()
    x = admin.get("/policies/CX-2025-07/?status=ignored&format=xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(x.content))["政策匹配"].iter_rows(min_row=2, values_only=True))
    assert {r[0] for r in rows} == set(ignored.values_list("entity_id", flat=True)) and all(r[9] for r in rows)
    confirmed(m)
    assert f"提醒后仍未确认 {ignored.count()}</a>" in admin.get("/policies/CX-2025-07/").content.decode()


def test_a_firm_declines_a_policy_hears_no_more_of_it_and_may_take_it_back(county, tmp_path):
    from qifu.policies import notices, queries

    folder = policy_folder(tmp_path, a=example("CX-2025-04"))
    actions.match_folder(folder, 2025, now=NOW)
    told = Match.objects.filter(status="eligible", told_at__isnull=False).select_related("entity").order_by("entity_id")
    m, other = told[0], told[1]
    Finding.objects.filter(entity_id=m.entity_id).update(status="resolved")
    client = portal_client(m.entity_id)
    assert "放弃这项政策" in client.get(f"/portal/policies/{m.pk}/").content.decode()
    r = client.post(f"/portal/policies/{m.pk}/act/", {"action": "decline", "reason": "暂不需要"}, follow=True)
    assert "请勾选" in r.content.decode() and Match.objects.get(pk=m.pk).status == "eligible"
    client.post(f"/portal/policies/{m.pk}/act/", {"action": "decline", "reason": "暂不需要", "sure": "1"})
    m.refresh_from_db()
    assert m.status == "declined" and m.history[-1]["by"] == "企业" and m.history[-1]["note"] == "企业放弃：暂不需要"
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert "已放弃" in page and "如改变主意" in page and "确认收款账户" in page and 'id="policy-decline"' not in page
    with pytest.raises(actions.PolicyActionError, match="不能放弃"):
        actions.do_decline(m)
    # a firm that says so on the telephone: staff record it, with how and why
    third = told[2]
    admin = staff(county, "admin")
    r = admin.post(f"/policies/matches/{third.pk}/act/", {"action": "decline", "note": ""}, follow=True)
    assert "请写明企业放弃的原因" in r.content.decode() and Match.objects.get(pk=third.pk).status == "eligible"
    admin.post(f"/policies/matches/{third.pk}/act/", {"action": "decline", "note": "企业来电表示已享受同类政策"})
    third.refresh_from_db()
    assert third.status == "declined" and third.history[-1]["by"] == "admin（代企业登记）"
    assert third.history[-1]["note"] == "企业放弃：企业来电表示已享受同类政策"
    # it is not reminded, the firm beside it is; it is owed nothing and counted as declined
    notices.follow_up(NOW + dt.timedelta(days=notices.FOLLOW_UP_DAYS))
    again = OutboxMessage.objects.filter(key__startswith="policy-follow-up:")
    assert again.filter(entity_id=other.entity_id).exists() and not again.filter(entity_id=m.entity_id).exists()
    row, = queries.overview(Match.objects.all())
    live = Match.objects.filter(policy__code="CX-2025-04").exclude(pk__in=[m.pk, third.pk])
    assert row["declined"] == 2 and row["matched"] == sum(x.amount for x in live)
    # no longer eligible: it stays declined, marked as gone, once; it cannot be taken back
    SocialRecord.objects.filter(entity_id=m.entity_id, year=2025).update(arrears=Decimal("1.5"))
    r1 = actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=1))
    SocialRecord.objects.filter(entity_id=other.entity_id, year=2025).update(insured_count=F("insured_count") + 1)
    actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=2))  # another change: a new digest
    m.refresh_from_db()
    assert r1.lapsed == 1 and m.status == "declined" and m.lapsed_at is not None
    assert [h["note"] for h in m.history[-2:]] == ["企业放弃：暂不需要", "重新匹配时不再符合条件（企业已放弃）"]
    with pytest.raises(actions.PolicyActionError, match="不再符合条件"):
        confirmed(m)
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert "按最新数据也已不再符合条件" in page and "确认收款账户" not in page
    # eligible again: still declined, and the firm may take it back by confirming its account
    SocialRecord.objects.filter(entity_id=m.entity_id, year=2025).update(arrears=0)
    r3 = actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=3))
    m.refresh_from_db()
    assert r3.again == 1 and m.status == "declined" and m.lapsed_at is None
    assert m.history[-1]["note"] == "再次符合条件（企业已放弃）"
    m = confirmed(m)
    assert m.status == "confirmed" and m.history[-1]["note"].startswith("企业撤回放弃，企业确认收款账户")
    assert Payment.objects.filter(match=m, seq=1).exists()
    # an application policy: declined, then applied for after all
    actions.match_folder(policy_folder(tmp_path, p=example("CX-2025-03")), 2025, now=NOW)
    a = Match.objects.filter(policy__code="CX-2025-03").first()
    actions.do_decline(a, now=NOW)
    assert Match.objects.get(pk=a.pk).history[-1]["note"] == "企业放弃"
    actions.do_apply(a, "研发中心认定材料见附件，请审核。", now=NOW)
    assert Match.objects.get(pk=a.pk).status == "applied"


def test_a_match_confirmed_then_lapsed_and_eligible_again_is_declined_as_any_other(county, tmp_path):
    """A match whose account was confirmed but never paid (held, then no longer eligible, then
    eligible again) is eligible once more: declining it is a plain decline the firm may take
    back, not a give-up of money it never had."""
    folder = policy_folder(tmp_path, a=example("CX-2025-04"))
    actions.match_folder(folder, 2025, now=NOW)
    m = Match.objects.filter(status="eligible").select_related("entity").order_by("entity_id").first()
    Finding.objects.filter(entity_id=m.entity_id).update(status="resolved")
    Finding.objects.create(entity=m.entity, report_year=m.policy.year, rule_id="FM-01", rule_key="FM-01",
                           severity="high", fields="total_assets", message="测试", revision=1,
                           first_run_id=Finding.objects.first().first_run_id, last_run_id=Finding.objects.first().last_run_id)
    m = confirmed(m)
    m.refresh_from_db()
    assert m.status == "held" and m.confirmed_at is not None and not Payment.objects.filter(match=m).exists()
    SocialRecord.objects.filter(entity_id=m.entity_id, year=2025).update(arrears=Decimal("1.5"))
    actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=1))
    SocialRecord.objects.filter(entity_id=m.entity_id, year=2025).update(arrears=0)
    actions.match_folder(folder, 2025, now=NOW + dt.timedelta(days=2))
    m.refresh_from_db()
    assert m.status == "eligible" and m.confirmed_at is not None
    m = actions.do_decline(m, "暂不需要", now=NOW + dt.timedelta(days=3))
    assert m.history[-1]["note"] == "企业放弃：暂不需要"
    assert m.status == "declined" and m.gave_up_at is None and not m.gave_up_rest
    page = portal_client(m.entity_id).get(f"/portal/policies/{m.pk}/").content.decode()
    assert "如改变主意" in page and "已放弃其余资金" not in page
    confirmed(m)  # taken back
    m.refresh_from_db()
    assert m.status == "held" and "企业撤回放弃" in m.history[-2]["note"]


def test_the_migration_marks_the_matches_given_up_before_it_from_their_history(county, tmp_path):
    import importlib

    from django.apps import apps

    step = importlib.import_module("qifu.policies.migrations.0011_match_gave_up_at").given_up
    actions.match_folder(policy_folder(tmp_path, a=example("CX-2025-04")), 2025, now=NOW)
    gave, plain, eligible = Match.objects.order_by("entity_id")[:3]
    at = timezone.localtime(NOW + dt.timedelta(days=5)).isoformat(timespec="seconds")
    for m, note in ((gave, "企业放弃其余资金（已到账 6 万元不受影响）：项目终止"), (plain, "企业放弃：暂不需要")):
        m.status, m.confirmed_at = "declined", NOW
        m.add_history({"at": at, "by": "企业", "note": note})
        m.add_history({"at": at, "by": "系统", "note": "重新匹配时不再符合条件（企业已放弃）"})
        m.save()
    step(apps, None)
    assert dict(Match.objects.filter(pk__in=[gave.pk, plain.pk, eligible.pk]).values_list("pk", "gave_up_at")) == {
        gave.pk: NOW + dt.timedelta(days=5), plain.pk: None, eligible.pk: None}


def test_a_firm_gives_up_the_rest_of_a_policy_it_accepted_and_what_was_paid_stays_paid(county, tmp_path):
    from qifu.service_requests.models import Department

    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000)), 2025, now=NOW)
    Department.objects.update_or_create(name="科学技术局", defaults={"email": "keji@example.gov.cn"})
    Policy.objects.filter(code="T-AUTO").update(department="科学技术局")
    m, other = clean_matches(2)
    m, other = confirmed(m), confirmed(other)
    client = portal_client(m.entity_id)
    # the first installment is with the treasury: not now
    batch = actions.do_create_batch(now=NOW)
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert 'id="give-up-wait"' in page and 'id="policy-give-up"' not in page
    with pytest.raises(actions.PolicyActionError, match=f"第 1 期正在拨付中（批次 {batch.number}）"):
        actions.do_decline(m, "项目已终止", now=NOW)
    actions.do_reconcile(batch.number, [{"batch_no": batch.number, "payment_id": str(p.id), "status": "paid",
                                         "paid_on": "2026-09-05"} for p in batch.payments.all()])
    second = actions.do_reach_milestone(m, 2, "科技局", now=NOW)
    # paid 6, the second 4 released: the firm gives up the rest in the portal
    r = client.post(f"/portal/policies/{m.pk}/act/", {"action": "decline", "reason": "项目已终止"}, follow=True)
    assert "请勾选" in r.content.decode() and Match.objects.get(pk=m.pk).status == "confirmed"
    r = client.post(f"/portal/policies/{m.pk}/act/", {"action": "decline", "reason": "项目已终止", "sure": "1"}, follow=True)
    assert "已放弃这项政策的其余资金" in r.content.decode()
    m.refresh_from_db()
    assert m.status == "declined" and m.gave_up_rest and m.gave_up_at is not None
    assert m.history[-1]["note"] == "企业放弃其余资金（已到账 6 万元不受影响，取消已核准未拨付的 1 笔）：项目已终止"
    assert dict(Payment.objects.filter(match=m).values_list("seq", "status")) == {1: "paid", 2: "cancelled"}
    assert Payment.objects.get(pk=second.pk).history[-1]["note"] == "企业放弃其余资金，取消拨付"
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert "已放弃其余资金" in page and 'id="policy-confirm"' not in page and 'id="give-up"' not in page
    # final: not taken back by confirming again, nothing released or batched for it
    with pytest.raises(actions.PolicyActionError, match="不能撤回"):
        confirmed(m)
    assert actions.do_reach_milestone(m, 2, "科技局", now=NOW) is None
    assert Payment.objects.get(pk=second.pk).status == "cancelled"
    with pytest.raises(actions.PolicyActionError, match="不能放弃"):
        actions.do_decline(m, now=NOW)
    # the firm beside it says so on the telephone: staff record it, with how and why
    admin = staff(county, "admin")
    assert 'id="give-up"' in admin.get(f"/policies/matches/{other.pk}/").content.decode()
    admin.post(f"/policies/matches/{other.pk}/act/", {"action": "decline", "note": "企业来函，项目已终止"})
    other.refresh_from_db()
    assert other.status == "declined" and other.history[-1]["by"] == "admin（代企业登记）"
    assert other.history[-1]["note"] == "企业放弃其余资金（已到账 6 万元不受影响）：企业来函，项目已终止"
    assert "企业已放弃其余资金" in admin.get(f"/policies/matches/{m.pk}/").content.decode()
    # what the treasury paid counts; the cancelled installment no longer counts against the budget
    assert set(Payment.objects.exclude(status="cancelled").values_list("match_id", "status")) == {
        (m.pk, "paid"), (other.pk, "paid")}
    with pytest.raises(actions.PolicyActionError, match="没有待拨付的款项"):
        actions.do_create_batch(now=NOW)
    # the policy's department is told of each, once, by the match's number, not the firm's name
    told = OutboxMessage.objects.filter(key__startswith="policy-gave-up:")
    assert sorted(told.values_list("key", "recipient", "addressee")) == sorted(
        (f"policy-gave-up:{x.pk}:dep", "keji@example.gov.cn", "department") for x in (m, other))
    assert all(f"匹配编号 {x.pk}" in told.get(key=f"policy-gave-up:{x.pk}:dep").body and x.entity.name not in
               told.get(key=f"policy-gave-up:{x.pk}:dep").body for x in (m, other))
    # not a message to the firm: its page's record of contacts leaves it out
    assert "企业放弃其余资金" not in admin.get(f"/entities/{m.entity_id}/").content.decode()


def confirmed(m: Match) -> Match:
    return actions.do_confirm(m, "中国工商银行慈溪支行", "6222 0212 3456 7890 123", m.entity.name, now=NOW)


def clean_matches(n: int, budget: int = 100000) -> list[Match]:
    ms = list(Match.objects.filter(policy__code="T-AUTO").select_related("entity", "policy").order_by("entity_id"))
    Finding.objects.filter(entity_id__in=[m.entity_id for m in ms]).update(status="resolved")
    SocialRecord.objects.filter(entity_id__in=[m.entity_id for m in ms]).update(arrears=0)
    return ms[:n]


def test_confirmation_releases_the_first_installment_and_a_milestone_the_second(county, tmp_path):
    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000)), 2025, now=NOW)
    m, = clean_matches(1)
    m = confirmed(m)
    assert m.status == "confirmed" and m.masked_account == "6222***********0123" and "0212" not in m.history[-1]["note"]
    (p1,) = Payment.objects.filter(match=m)
    assert (p1.seq, p1.amount, p1.milestone, p1.status) == (1, Decimal("6"), "企业确认", "due")
    p2 = actions.do_reach_milestone(m, 2, "科技局", now=NOW)
    assert (p2.amount, p2.milestone) == (Decimal("4"), "项目验收")
    assert actions.do_reach_milestone(m, 2, "科技局", now=NOW) is None  # once only
    assert Payment.objects.filter(match=m).count() == 2
    with pytest.raises(actions.PolicyActionError, match="没有第 3 期"):
        actions.do_reach_milestone(m, 3, "科技局")


def test_checks_before_paying_hold_the_match_with_the_reason(county, tmp_path):
    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000)), 2025, now=NOW)
    a, b = clean_matches(2)
    Finding.objects.create(entity=a.entity, report_year=2025, rule_id="FM-01", rule_key="FM-01", severity="high",
                           fields="total_assets", message="测试", revision=1,
                           first_run_id=Finding.objects.first().first_run_id, last_run_id=Finding.objects.first().last_run_id)
    SocialRecord.objects.update_or_create(entity=b.entity, year=2025, defaults={"arrears": Decimal("2"), "imported_at": NOW})
    for m, why in ((a, "1 个未处理的严重问题"), (b, "社保欠缴 2 万元")):
        m = confirmed(m)
        m.refresh_from_db()
        assert m.status == "held" and why in m.hold_reason
        assert not Payment.objects.filter(match=m).exists()
    with pytest.raises(actions.PolicyActionError):
        actions.do_create_batch()  # nothing payable: held matches are not batched
    p = actions.do_release_hold(a, "经信局王科长", "问题已线下核实，属实", now=NOW)
    assert p.amount == Decimal("6") and Match.objects.get(pk=a.pk).status == "confirmed"


def test_the_ledger_never_exceeds_the_budget(county, tmp_path):
    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=20)), 2025, now=NOW)
    ms = clean_matches(3)
    assert sum(Match.objects.filter(policy__code="T-AUTO").values_list("amount", flat=True)) <= 20  # scaled
    Match.objects.filter(pk__in=[m.pk for m in ms]).update(amount=10)  # as if matched before the budget was cut
    confirmed(ms[0])
    confirmed(ms[1])  # 6 + 6 of 20
    actions.do_reach_milestone(ms[0], 2, "x")
    actions.do_reach_milestone(ms[1], 2, "x")  # 4 + 4: exactly 20
    m = confirmed(ms[2])
    m.refresh_from_db()
    assert m.status == "held" and "预算不足" in m.hold_reason and m.confirmed_at is not None  # kept, not lost
    assert sum(Payment.objects.filter(policy__code="T-AUTO").values_list("amount", flat=True)) == 20


CONCURRENT = r"""
import os, sys, threading, datetime as dt
from decimal import Decimal
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from qifu import db
db.ensure_ready()
from django.db import connection
from django.utils import timezone
from qifu.registry.models import Entity, Township
from qifu.policies.models import Match, Payment, Policy
from qifu.policies import actions

town = Township.objects.first()
now = timezone.now()
policy = Policy.objects.create(code="T-RACE", title="并发测试", year=2025, mode="automatic", eligible="TRUE", amount="10",
                               budget=Decimal("50"), installments=["0.5", "0.5"], version="v1", text="", updated_at=now)
matches = []
for i in range(12):
    e = Entity.objects.create(uscc=f"91330282MA{i:08d}", name=f"企业{i}", entity_type="enterprise", town=town,
                              established_on=dt.date(2020, 1, 1), status="active", imported_at=now)
    matches.append(Match.objects.create(policy=policy, entity=e, version="v1", amount=Decimal("10"), reason="测试",
                                        status="confirmed", eligible_on=now.date(), matched_at=now,
                                        bank_account="62220212345678901", bank_name="银行", account_name=e.name))
outcomes = []
lock = threading.Lock()

def go(m, seq):
    try:
        p = actions.do_release(Match.objects.get(pk=m.pk), seq, override=True)
        r = "released" if p else "already"
    except actions.PolicyActionError:
        r = "refused"
    finally:
        connection.close()
    with lock:
        outcomes.append(r)

# every match's first installment (12 x 5 = 60 > budget 50), each asked for three times at once
threads = [threading.Thread(target=go, args=(m, 1)) for m in matches for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
total = sum(Payment.objects.filter(policy=policy).values_list("amount", flat=True))
per = Payment.objects.filter(policy=policy).values("match").distinct().count()
print(outcomes.count("released"), per, Payment.objects.filter(policy=policy).count(), total)
"""


def test_the_ledger_holds_under_concurrent_requests(process_env):
    out = subprocess.run([sys.executable, "-c", CONCURRENT], env=process_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    released, matches, rows, total = out.stdout.split()
    # ten of twelve fit the budget of 50; never twice for one installment, never beyond the budget
    assert (int(released), int(matches), int(rows), Decimal(total)) == (10, 10, 10, Decimal(50)), out.stdout


def test_batches_export_the_same_file_twice_and_the_treasury_answer_is_reconciled(county, tmp_path):
    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000)), 2025, now=NOW)
    ms = clean_matches(3)
    for m in ms:
        confirmed(m)
    batch = actions.do_create_batch(now=NOW)
    assert batch.number == "BF2026-0001" and batch.lines == 3 and batch.total == Decimal(18)
    with pytest.raises(actions.PolicyActionError, match="没有待拨付"):
        actions.do_create_batch(now=NOW)  # nothing is paid twice
    one, two = tmp_path / "b1.csv", tmp_path / "b2.csv"
    actions.export_batch(batch, one)
    actions.export_batch(PaymentBatch.objects.get(pk=batch.pk), two)
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()
    x1, x2 = tmp_path / "b1.xlsx", tmp_path / "b2.xlsx"
    actions.export_batch(batch, x1)
    Match.objects.filter(pk=ms[0].pk).update(bank_account="62220000000000000001")  # the firm changes its account
    import time

    time.sleep(1.1)  # a later second: the wall clock must not reach the file
    actions.export_batch(PaymentBatch.objects.get(pk=batch.pk), x2)
    assert x1.read_bytes() == x2.read_bytes()
    lines = pl.read_csv(one, infer_schema=False)
    assert lines["batch_no"].unique().to_list() == ["BF2026-0001"] and lines["amount"].to_list() == ["6.0000"] * 3
    ids = [int(x) for x in lines["payment_id"]]
    # a bad receipt changes nothing
    bad = [{"batch_no": "BF2026-0001", "payment_id": str(ids[0]), "status": "paid", "paid_on": "2026-09-03"},
           {"batch_no": "BF2026-0001", "payment_id": "999999", "status": "paid", "paid_on": "2026-09-03"}]
    with pytest.raises(actions.PolicyActionError, match="payment_id：999999"):
        actions.do_reconcile("BF2026-0001", bad)
    assert not Payment.objects.filter(status="paid").exists()
    receipt = tmp_path / "receipt.csv"
    pl.DataFrame({"batch_no": ["BF2026-0001"] * 3, "payment_id": [str(i) for i in ids],
                  "status": ["paid", "成功", "failed"], "paid_on": ["2026-09-03", "2026-09-03", ""],
                  "reason": ["", "", "账户已销户"]}).write_csv(receipt)
    from qifu.cli import main

    three = tmp_path / "b3.csv"
    with pytest.raises(SystemExit) as done:
        main(["policy", "batch", "--number", "BF2026-0001", "--out", str(three)])  # the command: the same file
    assert done.value.code == 0 and three.read_bytes() == one.read_bytes()
    with pytest.raises(SystemExit) as done:
        main(["policy", "receipt", "--batch", "BF2026-0001", str(receipt)])
    assert done.value.code == 0
    r = actions.do_reconcile("BF2026-0001", actions.read_receipt(receipt))
    assert (r.paid, r.failed, r.unchanged) == (0, 0, 3)
    assert Payment.objects.filter(status="paid").count() == 2 and Payment.objects.filter(status="failed").count() == 1
    failed = Payment.objects.get(status="failed")
    assert failed.failure == "账户已销户" and PaymentBatch.objects.get(pk=batch.pk).status == "reconciled"
    actions.do_retry(failed, "财政局")
    again = actions.do_create_batch(now=NOW)
    assert again.number == "BF2026-0002" and again.lines == 1
    # the first installment paid; the match is paid in full after the second
    m = Match.objects.get(pk=Payment.objects.filter(status="paid").first().match_id)
    p2 = actions.do_reach_milestone(m, 2, "科技局")
    b3 = actions.do_create_batch(now=NOW)
    actions.do_reconcile(b3.number, [{"batch_no": b3.number, "payment_id": str(p2.id), "status": "paid",
                                      "paid_on": "2026-10-01"}])
    assert Match.objects.get(pk=m.pk).status == "paid"


def test_an_application_policy_takes_an_application_with_attachments_and_a_reviewed_decision(county, tmp_path):
    actions.match_folder(policy_folder(tmp_path, p=example("CX-2025-03")), 2025, now=NOW)
    ms = list(Match.objects.filter(policy__code="CX-2025-03").select_related("entity", "policy"))
    assert len(ms) >= 2
    Finding.objects.filter(entity_id__in=[m.entity_id for m in ms]).update(status="resolved")
    SocialRecord.objects.filter(entity_id__in=[m.entity_id for m in ms]).update(arrears=0)
    a, b = ms[:2]
    with pytest.raises(actions.PolicyActionError, match="需要申请"):
        confirmed(a)
    app = actions.do_apply(a, "本公司研发中心2025年通过市级认定，研发投入见附件。", project="市级研发中心",
                           project_code="RD-2025-001", files=[("认定文件.pdf", "application/pdf", b"%PDF-1.4 test")],
                           bank=("农业银行", "62284801234567890", a.entity.name), now=NOW)
    assert app.files.count() == 1 and Match.objects.get(pk=a.pk).status == "applied"
    with pytest.raises(actions.PolicyActionError, match="审核意见"):
        actions.do_review(app, True, "", "科技局")
    app = actions.do_review(app, True, "认定文件齐全，同意", None, now=NOW)
    assert app.status == "approved" and Payment.objects.filter(match=a, seq=1).exists()
    app_b = actions.do_apply(b, "研发中心认定，材料见附件，请审核。", project_code="RD-2025-009", now=NOW)
    app_b = actions.do_review(app_b, False, "认定文件不全", None, now=NOW)
    assert Match.objects.get(pk=b.pk).status == "rejected" and app_b.review_reason == "认定文件不全"
    assert Application.objects.count() == 2
    # the same project claimed under a second policy is held for review, with the reason
    twin = example("CX-2025-03").replace("id: CX-2025-03", "id: CX-2025-03T").replace("title: 企业研发中心分级奖励",
                                                                                     "title: 研发机构升级奖励")
    actions.match_folder(policy_folder(tmp_path, p=example("CX-2025-03"), q=twin), 2025, now=NOW)
    a2 = Match.objects.get(policy__code="CX-2025-03T", entity=a.entity)
    app2 = actions.do_apply(a2, "同一研发中心再次申报升级奖励，请审核。", project_code="RD-2025-001",
                            bank=("农业银行", "62284801234567890", a.entity.name), now=NOW)
    actions.do_review(app2, True, "材料齐全", None, now=NOW)
    a2.refresh_from_db()
    assert a2.status == "held" and "项目 RD-2025-001 已在政策 CX-2025-03 申报" in a2.hold_reason
    assert not Payment.objects.filter(match=a2).exists()
    with pytest.raises(actions.PolicyActionError, match="银行账号"):
        actions.do_apply(Match.objects.get(policy__code="CX-2025-03T", entity=b.entity), "说明足够长的申请理由文字。",
                         bank=("银行", "12-34", "某公司"))


# --- pages ------------------------------------------------------------------------------------------


def staff(county, name: str):
    from django.test import Client

    client = Client()
    client.force_login(county["users"][name])
    return client


def test_an_administrator_writes_a_policy_in_the_browser_tries_it_then_saves_and_matches_it(county):
    from qifu.registry.models import Entity

    admin, officer = staff(county, "admin"), staff(county, "officer")
    assert officer.get("/policies/new/").status_code == 403
    assert "id: CX-" in admin.get("/policies/new/").content.decode()
    text = example("CX-2025-04")
    # a mistake is named, and nothing is stored
    page = admin.post("/policies/new/", {"text": text.replace("insured_count BETWEEN", "insured BETWEEN"),
                                         "action": "trial"}).content.decode()
    assert 'id="policy-error"' in page and "eligible：" in page and "insured" in page
    # 试算: what it would match, nothing stored and nobody told
    page = admin.post("/policies/new/", {"text": text, "action": "trial", "notify": "on"})
    trial = page.context["trial"]
    assert trial.firms > 0 and trial.new == trial.firms and trial.gone == 0
    assert not Policy.objects.exists() and not Match.objects.exists() and not OutboxMessage.objects.exists()
    assert sum(n for _, n, _ in trial.by_town) == trial.firms and sum(m for _, _, m in trial.by_town) == trial.total
    top = trial.top[0]
    assert top[2] == max(m for _, _, m, _ in trial.top) and top[1] == Entity.objects.get(uscc=top[0]).name
    assert f'<b id="trial-firms">{trial.firms}</b>' in page.content.decode()
    # 保存并匹配: saved at once and matched by the worker, the page following it; what the trial
    # said is what is stored, and the firms are told
    page = admin.post("/policies/new/", {"text": text, "action": "save", "notify": "on"})
    run = MatchRun.objects.get()
    assert page.status_code == 302 and page["Location"] == f"/policies/runs/{run.pk}/"
    assert Policy.objects.filter(code="CX-2025-04").exists() and not Match.objects.exists()
    waiting = admin.get(f"/policies/runs/{run.pk}/").content.decode()
    assert 'http-equiv="refresh"' in waiting and '<li class="current">排队</li>' in waiting
    assert f"政策已保存为新版本（{run.version}，" in waiting
    assert "排队中，下面的名单尚未更新" in officer.get("/policies/CX-2025-04/").content.decode()
    assert officer.get(f"/policies/runs/{run.pk}/").status_code == 403
    assert actions.run_pending_matches() == 1 and actions.run_pending_matches() == 0
    done = admin.get(f"/policies/runs/{run.pk}/", follow=True)
    assert done.redirect_chain == [("/policies/CX-2025-04/", 302)]
    auto = Match.objects.filter(policy__code="CX-2025-04")
    assert f"已保存并匹配：符合 {auto.count()} 户" in done.content.decode() and "policy-run-state" not in done.content.decode()
    assert auto.count() == trial.firms and sum(m.amount for m in auto) == trial.total
    assert OutboxMessage.objects.filter(purpose="policy").exists()
    p = Policy.objects.get(code="CX-2025-04")
    assert p.versions.get().created_by == county["users"]["admin"].username
    assert 'id="policy-edit"' in admin.get("/policies/CX-2025-04/").content.decode()
    assert 'id="policy-edit"' not in officer.get("/policies/CX-2025-04/").content.decode()
    # a new policy may not take an existing one's code, nor an edit change it
    page = admin.post("/policies/new/", {"text": text, "action": "trial"}).content.decode()
    assert "已存在" in page
    page = admin.post("/policies/CX-2025-04/edit/", {"text": text.replace("CX-2025-04", "CX-2025-99"),
                                                     "action": "trial"}).content.decode()
    assert "不能修改政策编号" in page
    # a stricter condition: the trial names who would no longer be eligible and whose amount changes
    stricter = text.replace("BETWEEN 1 AND 100", "BETWEEN 5 AND 100").replace("* 0.05", "* 0.06")
    t = admin.post("/policies/CX-2025-04/edit/", {"text": stricter, "action": "trial"}).context["trial"]
    small = {m.entity_id for m in auto.select_related("entity") if SocialRecord.objects.get(
        entity_id=m.entity_id, year=2025).insured_count < 5}
    assert t.gone == len(small) > 0 and t.new == 0 and t.changed == t.firms == trial.firms - len(small)
    # every firm the trial finds, for the departments to go through, nothing stored (the export is audited)
    x = admin.post("/policies/CX-2025-04/edit/", {"text": stricter, "action": "export"})
    rows = list(openpyxl.load_workbook(io.BytesIO(x.content))["试算名单"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == t.firms and {r[5] for r in rows} == {"变化"} and not {r[0] for r in rows} & small
    first = auto.select_related("entity", "entity__town").get(entity_id=rows[0][0])
    assert rows[0][1:3] == (first.entity.name, first.entity.town.name) and rows[0][3] == float(first.amount * Decimal("1.2"))
    assert Policy.objects.get(code="CX-2025-04").version == p.version  # still nothing stored
    page = admin.post("/policies/CX-2025-04/edit/", {"text": stricter, "action": "save"})  # notify unticked
    assert page.status_code == 302 and actions.run_pending_matches() == 1
    p.refresh_from_db()
    assert p.versions.count() == 2 and "* 0.06" in p.text
    assert auto.filter(status="lapsed").count() == len(small)
    assert not OutboxMessage.objects.filter(purpose="policy").exclude(entity_id__in=auto.values("entity_id")).exists()
    page = admin.get("/policies/CX-2025-04/edit/").content.decode()
    assert "* 0.06" in page and page.count("政策文件导入") == 0 and "（当前）" in page


def test_the_portal_shows_a_firm_its_own_matches_and_takes_its_confirmation(county, tmp_path):
    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000), p=example("CX-2025-03")), 2025, now=NOW)
    a, b = clean_matches(2)
    client = portal_client(a.entity_id)
    home = client.get("/portal/").content.decode()
    assert "政策资金待领取" in home and "测试奖励" in home
    html = client.get("/portal/policies/").content.decode()
    assert "测试奖励" in html and a.reason in html
    assert client.get(f"/portal/policies/{b.pk}/").status_code == 404  # another firm's match
    page = client.get(f"/portal/policies/{a.pk}/").content.decode()
    assert "免申即享" in page and "确认收款账户" in page
    r = client.post(f"/portal/policies/{a.pk}/act/", {"action": "confirm", "bank_name": "农业银行慈溪支行",
                                                      "bank_account": "6228 4801 2345 6789 0", "account_name": a.entity.name})
    assert r.status_code == 302
    page = client.get(f"/portal/policies/{a.pk}/").content.decode()
    assert "6228*********7890" in page and "62284801234567890" not in page and "待拨付" in page
    bad = client.post(f"/portal/policies/{a.pk}/act/", {"action": "confirm", "bank_name": "x", "bank_account": "12ab",
                                                        "account_name": "x"}, follow=True)
    assert "银行账号应为 8 至 32 位数字" in bad.content.decode()
    bad = client.post(f"/portal/policies/{a.pk}/act/", {"action": "confirm", "bank_name": "农业\x01银行",
                                                                     "bank_account": "62284801234567890",
                                                                     "account_name": a.entity.name}, follow=True)
    assert bad.status_code == 200 and "开户银行含有无法保存的控制字符" in bad.content.decode()  # was a 500


def test_the_api_shows_a_firm_its_policies_and_takes_the_same_answers_as_the_portal(county, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000), p=example("CX-2025-03")), 2025, now=NOW)
    a, b = clean_matches(2)
    api = portal_client(a.entity_id)
    post = lambda path, body: api.post(f"/api/v1/policies/{path}", body, content_type="application/json")  # noqa: E731
    mine = {m["id"]: m for m in api.get("/api/v1/policies").json()}
    assert set(mine) == set(Match.objects.filter(entity_id=a.entity_id).values_list("pk", flat=True))
    got = mine[a.pk]
    assert (got["policy"], got["mode"], got["status"], got["amount"], got["actions"]) == (
        "T-AUTO", "automatic", "eligible", f"{a.amount.normalize():f}", ["confirm", "decline"])
    assert got["reason"] == a.reason and got["payments"] == [] and got["application"] is None
    # another firm's match is not found; a wrong account is refused with the portal's words
    assert post(f"{b.pk}/confirm", {"bank_name": "农业银行慈溪支行", "bank_account": "62284801234567890",
                                    "account_name": b.entity.name}).status_code == 404
    r = post(f"{a.pk}/confirm", {"bank_name": "农业银行", "bank_account": "12ab34", "account_name": "某某"})
    assert r.status_code == 400 and "银行账号应为 8 至 32 位数字" in r.json()["detail"]
    r = post(f"{a.pk}/confirm", {"bank_name": "农业银行慈溪支行", "bank_account": "6228 4801 2345 6789 0",
                                 "account_name": a.entity.name})
    got = r.json()
    assert r.status_code == 200 and got["status"] == "confirmed" and got["account"] == "6228*********7890"
    assert [(p["seq"], p["status"], p["milestone"]) for p in got["payments"]] == [(1, "due", "企业确认")]
    assert got["actions"] == ["confirm", "give_up"]
    # giving up the rest is final: it must be asked for in so many words
    r = post(f"{a.pk}/decline", {"reason": "项目终止"})
    assert r.status_code == 400 and "give_up_rest=true" in r.json()["detail"] and Match.objects.get(pk=a.pk).status == "confirmed"
    got = post(f"{a.pk}/decline", {"reason": "项目终止", "give_up_rest": True}).json()
    assert (got["status"], got["gave_up_rest"], got["actions"]) == ("declined", True, [])
    assert [p["status"] for p in got["payments"]] == ["cancelled"]
    # an application policy: applied with an attachment as a multipart form, withdrawn, declined
    app_match = Match.objects.filter(policy__code="CX-2025-03", entity_id=a.entity_id).first() or Match.objects.filter(
        policy__code="CX-2025-03").first()
    api = portal_client(app_match.entity_id)
    exe = SimpleUploadedFile("a.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    r = api.post(f"/api/v1/policies/{app_match.pk}/apply", {"statement": "研发中心认定材料见附件，请审核。", "files": [exe]})
    assert r.status_code == 400 and "不是图片或 PDF" in r.json()["detail"] and not Application.objects.exists()
    pdf = SimpleUploadedFile("认定文件.pdf", b"%PDF-1.4\n%test", content_type="application/pdf")
    r = api.post(f"/api/v1/policies/{app_match.pk}/apply", {"statement": "研发中心认定材料见附件，请审核。",
                                                           "project": "市级研发中心", "files": [pdf]})
    got = r.json()
    assert r.status_code == 200 and got["status"] == "applied" and got["application"]["status"] == "submitted"
    assert got["actions"] == ["withdraw"] and Application.objects.get(match=app_match).files.get().name == "认定文件.pdf"
    got = api.post(f"/api/v1/policies/{app_match.pk}/withdraw", {"reason": "材料传错了"},
                   content_type="application/json").json()
    assert (got["status"], got["application"]["status"], got["actions"]) == ("eligible", "withdrawn", ["apply", "decline"])
    got = api.post(f"/api/v1/policies/{app_match.pk}/decline", {}, content_type="application/json").json()
    assert (got["status"], got["gave_up_rest"], got["actions"]) == ("declined", False, ["apply"])
    assert Match.objects.get(pk=app_match.pk).history[-1]["note"] == "企业放弃"


def test_the_portal_takes_an_application_with_attachments(county, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    actions.match_folder(policy_folder(tmp_path, p=example("CX-2025-03")), 2025, now=NOW)
    m = Match.objects.filter(policy__code="CX-2025-03").first()
    client = portal_client(m.entity_id)
    assert "提交申请" in client.get(f"/portal/policies/{m.pk}/").content.decode()
    exe = SimpleUploadedFile("a.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    r = client.post(f"/portal/policies/{m.pk}/act/", {"action": "apply", "statement": "研发中心认定材料见附件，请审核。",
                                                      "files": [exe]}, follow=True)
    assert "不是图片或 PDF" in r.content.decode() and not Application.objects.exists()
    r = client.post(f"/portal/policies/{m.pk}/act/", {"action": "apply", "statement": "研发中心认定材料见附件，请审核。",
                                                      "project": "市级\x01研发中心"}, follow=True)
    assert "项目名称含有无法保存的控制字符" in r.content.decode() and not Application.objects.exists()  # was a 500
    pdf = SimpleUploadedFile("认定文件.pdf", b"%PDF-1.4\n%test", content_type="application/pdf")
    client.post(f"/portal/policies/{m.pk}/act/", {"action": "apply", "statement": "研发中心认定材料见附件，请审核。",
                                                  "project": "市级研发中心", "files": [pdf]})
    app = Application.objects.get(match=m)
    assert app.files.get().name == "认定文件.pdf" and Match.objects.get(pk=m.pk).status == "applied"
    # withdrawn before the review (the wrong file): open again, to apply anew; the queue no longer lists it
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert 'id="policy-withdraw"' in page and "提交申请</button>" not in page
    r = client.post(f"/portal/policies/{m.pk}/act/", {"action": "withdraw"}, follow=True)
    assert "确认撤回" in r.content.decode() and Application.objects.get(pk=app.pk).status == "submitted"
    client.post(f"/portal/policies/{m.pk}/act/", {"action": "withdraw", "sure": "1", "reason": "材料传错了"})
    m.refresh_from_db()
    assert m.status == "eligible" and m.history[-1]["note"] == "撤回申请：材料传错了"
    assert Application.objects.get(pk=app.pk).status == "withdrawn"
    queue = staff(county, "admin").get("/policies/applications/").content.decode()
    assert f'href="/policies/matches/{m.pk}/"' not in queue and "没有待审核的申请" in queue
    with pytest.raises(actions.PolicyActionError, match="尚未审核的申请"):
        actions.do_withdraw(m)
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert "提交申请</button>" in page and 'id="policy-decline"' in page and "已撤回" in page
    right = SimpleUploadedFile("认定文件（盖章）.pdf", b"%PDF-1.4\n%stamped", content_type="application/pdf")
    client.post(f"/portal/policies/{m.pk}/act/", {"action": "apply", "statement": "重新提交盖章的认定文件，请审核。",
                                                  "files": [right]})
    app = Application.objects.get(match=m)  # the same application, handed in again
    assert (app.status, app.statement, [f.name for f in app.files.all()]) == (
        "submitted", "重新提交盖章的认定文件，请审核。", ["认定文件（盖章）.pdf"])
    assert Match.objects.get(pk=m.pk).status == "applied"
    # the department sends it back for what is missing (退回补正): the firm is told, and hands it in again
    admin = staff(county, "admin")
    r = admin.post(f"/policies/matches/{m.pk}/act/", {"action": "return", "note": "缺少研发中心认定批文"}, follow=True)
    assert "已退回补正" in r.content.decode()
    app.refresh_from_db()
    m.refresh_from_db()
    assert (app.status, app.review_reason, m.status) == ("returned", "缺少研发中心认定批文", "eligible")
    told = OutboxMessage.objects.get(key__startswith=f"policy-returned:{app.pk}:")
    assert "需补正后重新提交：缺少研发中心认定批文" in told.body and told.entity_id == m.entity_id
    page = client.get(f"/portal/policies/{m.pk}/").content.decode()
    assert "补正后重新提交" in page and "主管部门退回补正：缺少研发中心认定批文" in page
    with pytest.raises(actions.PolicyActionError, match="已经审核或撤回"):
        actions.do_return(app, "再次退回补正", county["users"]["admin"])
    again = SimpleUploadedFile("认定批文.pdf", b"%PDF-1.4\n%approval", content_type="application/pdf")
    client.post(f"/portal/policies/{m.pk}/act/", {"action": "apply", "statement": "补充研发中心认定批文，请审核。",
                                                  "files": [again]})
    app.refresh_from_db()
    assert app.status == "submitted" and app.reviewed_at is None and [f.name for f in app.files.all()] == ["认定批文.pdf"]
    actions.do_review(app, True, "材料齐全", county["users"]["admin"], now=NOW + dt.timedelta(days=2))
    with pytest.raises(actions.PolicyActionError, match="尚未审核的申请"):
        actions.do_withdraw(m)  # decided: no longer withdrawn online


def test_staff_pages_by_role_with_charts_exports_and_an_audited_account(county, tmp_path, monkeypatch, data_dir):
    from qifu.accounts.models import AuditEvent
    from qifu.web import downloads, export_jobs
    from qifu.web.models import Export

    actions.match_folder(policy_folder(tmp_path, t=AUTO.format(budget=100000)), 2025, now=NOW)
    ms = clean_matches(40)
    for m in ms:
        confirmed(m)
    batch = actions.do_create_batch(now=NOW)
    actions.do_reconcile(batch.number, [{"batch_no": batch.number, "payment_id": str(p.id), "status": "paid",
                                         "paid_on": "2026-09-05"} for p in batch.payments.all()])
    admin, officer, leader = (staff(county, n) for n in ("admin", "officer", "leader"))
    html = admin.get("/policies/").content.decode()
    assert "测试奖励" in html and 'id="chart-paid-towns"' in html and "chart-data" in html and batch.number in html
    own = county["own_town"]
    mine = Match.objects.filter(policy__code="T-AUTO", entity__town=own)
    theirs = Match.objects.filter(policy__code="T-AUTO").exclude(entity__town=own).first()
    page = officer.get("/policies/T-AUTO/?status=").content.decode()
    assert theirs.entity.name not in page
    assert officer.get(f"/policies/matches/{theirs.pk}/").status_code == 404
    if mine.exists():
        assert officer.get(f"/policies/matches/{mine.first().pk}/").status_code == 200
    assert officer.get(f"/policies/batches/{batch.number}.xlsx").status_code == 403  # payments are the bureau's
    assert leader.post(f"/policies/matches/{ms[0].pk}/act/", {"action": "milestone", "seq": "2"}).status_code == 403
    x = admin.get("/policies/?format=xlsx")
    assert x["Content-Type"].startswith("application/vnd.openxmlformats")
    assert AuditEvent.objects.filter(action="export", detail__contains="惠企政策兑现统计").exists()
    # a policy's match list as a workbook and as CSV: the same rows, the officer's township only
    for client, who in ((admin, Match.objects.filter(policy__code="T-AUTO")), (officer, mine)):
        book = openpyxl.load_workbook(io.BytesIO(client.get("/policies/T-AUTO/?format=xlsx").content))["政策匹配"]
        rows = [["" if v is None else v.isoformat(sep="T") if isinstance(v, dt.datetime) else v.isoformat()
                 if isinstance(v, dt.date) else str(v) for v in row] for row in book.iter_rows(values_only=True)]
        got = client.get("/policies/T-AUTO/?format=csv")
        assert got["Content-Type"].startswith("text/csv")
        text = b"".join(got.streaming_content).decode("utf-8")
        assert text.startswith("\ufeff统一社会信用代码,")
        csv_rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
        assert csv_rows[0] == rows[0] and len(csv_rows) == len(rows) == who.count() + 1
        assert sorted(r[:3] + r[4:6] for r in csv_rows[1:]) == sorted(r[:3] + r[4:6] for r in rows[1:])
        assert sorted(float(r[3]) for r in csv_rows[1:]) == sorted(float(r[3]) for r in rows[1:])
        assert {r[0] for r in csv_rows[1:]} == set(who.values_list("entity_id", flat=True))
    assert AuditEvent.objects.filter(action="export", detail=f"政策 T-AUTO 匹配名单 {mine.count()} 行（CSV）").exists()
    # a long list's workbook is made in the background, as the direct download would be
    monkeypatch.setattr(downloads, "LONG_LIST", 0)
    page = admin.get("/policies/T-AUTO/").content.decode()
    assert 'id="export-background"' in page and 'value="/policies/T-AUTO/?status=&amp;format=xlsx"' in page
    admin.post("/exports/new/", {"path": "/policies/T-AUTO/?status=&format=xlsx", "rows": "5"})
    assert export_jobs.run_pending() == 1
    export = Export.objects.get(label="政策 T-AUTO 匹配名单（Excel）")
    assert export.status == "done" and export.rows_done == Match.objects.filter(policy__code="T-AUTO").count()
    f = admin.get(f"/policies/batches/{batch.number}.xlsx")
    assert f.status_code == 200
    m = Match.objects.get(pk=ms[0].pk)
    page = admin.get(f"/policies/matches/{m.pk}/").content.decode()
    assert m.masked_account in page and m.bank_account not in page
    page = admin.get(f"/policies/matches/{m.pk}/?reveal=account").content.decode()
    assert m.bank_account in page and AuditEvent.objects.filter(action="view_account", uscc=m.entity_id).exists()
    r = admin.post(f"/policies/matches/{m.pk}/act/", {"action": "milestone", "seq": "2"})
    assert r.status_code == 302 and Payment.objects.filter(match=m, seq=2).exists()
    entity = admin.get(f"/entities/{m.entity_id}/").content.decode()
    assert 'id="policies"' in entity and "测试奖励" in entity
    home = admin.get("/").content.decode()
    assert 'id="policies-panel"' in home and "chart-policy-towns" in home


def test_the_assistant_learns_the_loaded_policies(county, tmp_path):
    from qifu.assistant import actions as assistant

    answer, _ = assistant.ask("我们公司能享受哪些补贴")
    assert answer.entry_id == "policy_direct" and not answer.handoff
    actions.match_folder(policy_folder(tmp_path, a=example("CX-2025-01"), b=example("CX-2025-08")), 2025, now=NOW)
    answer, _ = assistant.ask("规上工业企业研发投入后补助的条件是什么")
    assert answer.entry_id == "policy-CX-2025-01" and "研发经费" in answer.answer and "免申即享" in answer.answer
    answer, _ = assistant.ask("农民专业合作社有什么扶持")
    assert answer.entry_id == "policy-CX-2025-08"


def test_skill_subsidies_from_imported_certificates_are_paid_once_per_person(county, tmp_path):
    from qifu.engine.errors import InvalidFile
    from qifu.policies.models import SkillCertificate

    folder = county["folder"]
    rows = read(folder / "trainings.csv")
    assert rows and len({r["id_number"] for r in rows}) > 10
    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[:3] + [{**rows[3], "id_number": rows[3]["id_number"][:17] + ("0" if rows[3]["id_number"][-1] != "0" else "1")}])
    with pytest.raises(InvalidFile) as e:
        import_file("trainings", bad)
    assert [(x.row, x.field) for x in e.value.errors] == [(5, "id_number")] and "校验位" in e.value.errors[0].reason
    assert not SkillCertificate.objects.exists()  # all or nothing
    import_file("trainings", folder / "trainings.csv")
    text = example("CX-2025-11").replace("budget: 500", "budget: 100000")
    r = actions.match_folder(policy_folder(tmp_path, s=text), 2025, out=tmp_path / "s.csv", now=NOW)
    o, = r.outcomes
    # the reference: one subsidy per person, occupation and level, by level, for 2025's certificates
    amounts = {"5": Decimal("0.1"), "4": Decimal("0.15"), "3": Decimal("0.2"), "2": Decimal("0.3"), "1": Decimal("0.4")}
    want, seen = {}, set()
    for c in sorted(rows, key=lambda c: (c["issued_on"], c["certificate_no"])):
        key = (c["id_number"], c["occupation"], c["level"])
        if c["issued_on"].startswith("2025") and key not in seen:
            seen.add(key)
            want[c["uscc"]] = want.get(c["uscc"], Decimal(0)) + amounts[c["level"]]
    assert {u: a for u, a, _, _ in o.rows} == want
    twice = [c for c in rows if c["issued_on"].startswith("2025") and sum(
        1 for d in rows if (d["id_number"], d["occupation"], d["level"]) == (c["id_number"], c["occupation"], c["level"])) > 1]
    m = Match.objects.filter(policy__code="CX-2025-11", entity_id__in=[c["uscc"] for c in twice] or ["-"]).first() \
        or Match.objects.filter(policy__code="CX-2025-11").first()
    Finding.objects.filter(entity_id=m.entity_id).update(status="resolved")
    SocialRecord.objects.filter(entity_id=m.entity_id).update(arrears=0)
    confirmed(m)
    lines = list(Payment.objects.filter(match=m).order_by("seq"))
    assert sum(p.amount for p in lines) == m.amount and all(p.certificate_id for p in lines)
    assert len({p.person_key for p in lines}) == len(lines) == SkillCertificate.objects.filter(match=m).count()
    page = staff(county, "admin").get(f"/policies/matches/{m.pk}/").content.decode()
    c = SkillCertificate.objects.filter(match=m).first()
    assert c.masked_id in page and c.id_number not in page and c.person_name not in page
    page = staff(county, "admin").get(f"/policies/matches/{m.pk}/?reveal=people").content.decode()
    from qifu.accounts.models import AuditEvent

    assert c.id_number in page and AuditEvent.objects.filter(action="view_person", uscc=m.entity_id).exists()
    # a second policy (another year's, say) cannot pay the same person, occupation and level again
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(match=m, policy=m.policy, seq=99, amount=1, milestone="x", released_at=NOW,
                               person_key=lines[0].person_key)
    # given up before it was paid: the lines let go of their certificates and people, which another
    # policy may then pay; each line still names its certificate
    actions.do_decline(m, "企业不再申领", now=NOW)
    after = list(Payment.objects.filter(match=m).order_by("seq"))
    assert all((p.status, p.certificate_id, p.person_key) == ("cancelled", None, "") for p in after)
    assert [p.milestone for p in after] == [p.milestone for p in lines]
    Payment.objects.create(match=m, policy=m.policy, seq=99, amount=1, milestone="x", released_at=NOW,
                           person_key=lines[0].person_key, certificate=lines[0].certificate)


def test_a_department_sees_and_reviews_the_applications_of_its_own_policies(county, tmp_path):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from qifu.accounts.models import StaffProfile
    from qifu.service_requests.models import Department

    actions.match_folder(policy_folder(tmp_path, p=example("CX-2025-03"), t=example("CX-2025-04")), 2025, now=NOW)
    m = Match.objects.filter(policy__code="CX-2025-03").first()
    actions.do_apply(m, "研发中心认定材料见附件，请审核。", now=NOW)
    clients = {}
    for name, dep in (("keji", "科学技术局"), ("renshe", "人力资源和社会保障局")):
        user = get_user_model().objects.create_user(name, password="x")
        StaffProfile.objects.create(user=user, role="department", department=Department.objects.get_or_create(name=dep)[0])
        clients[name] = Client()
        clients[name].force_login(user)
    own = clients["keji"].get(f"/policies/matches/{m.pk}/")
    assert own.status_code == 200 and "研发中心认定材料" in own.content.decode()
    assert clients["renshe"].get(f"/policies/matches/{m.pk}/").status_code == 404
    overview = clients["keji"].get("/policies/").content.decode()
    assert "企业研发中心分级奖励" in overview and "小微企业稳岗补贴" not in overview
    r = clients["renshe"].post(f"/policies/matches/{m.pk}/act/", {"action": "approve", "note": "同意"})
    assert r.status_code == 404 and Application.objects.get(match=m).status == "submitted"
    from qifu.registry.models import Entity

    Entity.objects.filter(pk=m.entity_id).update(phone="13905740031", email="")
    clients["keji"].post(f"/policies/matches/{m.pk}/act/", {"action": "approve", "note": "认定文件齐全，同意"})
    app = Application.objects.get(match=m)
    assert app.status == "approved" and app.review_reason == "认定文件齐全，同意"
    told = OutboxMessage.objects.get(key=f"policy-decision:{app.pk}")  # the portal promised to tell it
    assert told.recipient == "13905740031" and "已审核通过" in told.body and m.policy.title in told.body


def test_applications_wait_in_a_queue_oldest_first_for_the_department_that_reviews_them(county, tmp_path):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from qifu.accounts.models import AuditEvent, StaffProfile
    from qifu.service_requests.models import Department

    actions.match_folder(policy_folder(tmp_path, p=example("CX-2025-03")), 2025, now=NOW)
    first, second, third = Match.objects.filter(policy__code="CX-2025-03").select_related("entity").order_by("entity_id")[:3]
    Department.objects.update_or_create(name="科学技术局", defaults={"email": "keji@example.gov.cn"})
    for days, m in ((5, second), (3, first), (1, third)):  # submitted 5, 3 and 1 days ago
        actions.do_apply(m, "研发中心认定材料见附件，请审核。", project=f"项目{m.entity_id[-4:]}",
                         now=timezone.now() - dt.timedelta(days=days))
    # the department is told of each, by the address it configured, naming no firm
    told = OutboxMessage.objects.filter(key__startswith="policy-application:")
    assert told.count() == 3 and set(told.values_list("recipient", flat=True)) == {"keji@example.gov.cn"}
    assert all("有新的政策申请待审核" in b and first.entity.name not in b for b in told.values_list("body", flat=True))
    clients = {}
    for name, dep in (("keji", "科学技术局"), ("renshe", "人力资源和社会保障局")):
        user = get_user_model().objects.create_user(name, password="x")
        StaffProfile.objects.create(user=user, role="department", department=Department.objects.get_or_create(name=dep)[0])
        clients[name] = Client()
        clients[name].force_login(user)
    keji = clients["keji"]
    assert "3</b> 份待审核" in keji.get("/policies/").content.decode()
    assert ">3 份申请待审核</a>" in keji.get("/").content.decode()  # the home dashboard too
    assert "份申请待审核" not in clients["renshe"].get("/").content.decode()
    page = keji.get("/policies/applications/").content.decode()
    rows = page.split('id="policy-applications"')[1]
    assert rows.index(second.entity.name) < rows.index(first.entity.name) < rows.index(third.entity.name)
    assert "5 天" in rows and rows.count(">审核</a>") == 3
    # another department sees none of them
    other = clients["renshe"].get("/policies/applications/").content.decode()
    assert second.entity.name not in other and "没有待审核的申请" in other
    # reviewed: it leaves the queue, and is listed under its decision
    from qifu.registry.models import Entity

    Entity.objects.filter(pk=second.entity_id).update(phone="", email="boss@example.cn")
    keji.post(f"/policies/matches/{second.pk}/act/", {"action": "reject", "note": "认定文件不全"})
    told = OutboxMessage.objects.get(key=f"policy-decision:{second.application.pk}")
    assert told.channel == "email" and "审核未通过：认定文件不全" in told.body and "企业诉求" in told.body
    rows = keji.get("/policies/applications/").content.decode().split('id="policy-applications"')[1]
    assert second.entity.name not in rows and first.entity.name in rows
    rejected = keji.get("/policies/applications/?status=rejected").content.decode()
    assert second.entity.name in rejected and "认定文件不全" in rejected
    # the queue as a workbook, audited
    x = keji.get("/policies/applications/?status=submitted&format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(x.content))["政策申请"]
    got = [(r[4], r[1], r[9]) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert got == [(first.entity_id, 3, 0), (third.entity_id, 1, 0)]
    assert AuditEvent.objects.filter(action="export", detail="政策申请名单 2 行").exists()


def test_a_policy_saved_in_the_browser_is_matched_by_the_worker_which_shows_its_phase_and_why_it_stopped(county, monkeypatch):
    admin = staff(county, "admin")
    user = county["users"]["admin"]
    run = actions.do_write_policy(example("CX-2025-04"), None, user, notify=False)
    assert (run.status, run.policy.code, run.by) == ("queued", "CX-2025-04", user)
    # each phase is written as it begins, outside the transaction that stores the matches
    seen = []
    real = actions.match_policies

    def watched(*args, **kw):
        shown = kw["progress"]
        kw["progress"] = lambda phase: (shown(phase), seen.append(MatchRun.objects.get(pk=run.pk).phase))
        return real(*args, **kw)

    monkeypatch.setattr(actions, "match_policies", watched)
    assert actions.run_pending_matches() == 1
    assert seen == list(actions.PHASES)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.phase) == ("done", 1, "") and "通知 0 户" in run.summary
    assert not OutboxMessage.objects.filter(purpose="policy").exists()
    # a match that goes wrong says so on the page, the policy kept; the worker goes on
    again = actions.do_write_policy(example("CX-2025-04").replace("* 0.05", "* 0.06"), "CX-2025-04", user)

    def broken(*args, **kw):
        kw["progress"](actions.PHASES[0])
        kw["progress"](actions.PHASES[1])
        raise RuntimeError("disk full")

    monkeypatch.setattr(actions, "match_policies", broken)
    assert actions.run_pending_matches() == 1
    page = admin.get(f"/policies/runs/{again.pk}/").content.decode()
    assert 'id="policy-run-error"' in page and "政策已保存" in page and 'http-equiv="refresh"' not in page
    assert '<li class="failed">计算</li>' in page and '<li class="done">读取数据</li>' in page
    assert "* 0.06" in Policy.objects.get(code="CX-2025-04").text
    assert "匹配未完成：" in admin.get("/policies/CX-2025-04/").content.decode()
    # a run left 匹配中 by a worker that stopped is taken up again when the next one starts
    MatchRun.objects.filter(pk=again.pk).update(status="running", attempts=1)
    monkeypatch.setattr(actions, "match_policies", real)
    monkeypatch.setattr(actions.QUEUE, "recovered", False)
    assert actions.run_pending_matches() == 1
    again.refresh_from_db()
    assert (again.status, again.attempts) == ("done", 2)
    # queued for over a minute: the page says the worker seems not to be running
    late = actions.do_write_policy(example("CX-2025-04"), "CX-2025-04", user,
                                   now=timezone.now() - dt.timedelta(minutes=2))
    page = admin.get(f"/policies/runs/{late.pk}/").content.decode()
    assert 'id="policy-run-late"' in page
    # its text was saved before: no new version is claimed, only the match made again
    assert f"与已保存的版本 {late.version} 相同，未另存新版本" in page and "保存为新版本" not in page
