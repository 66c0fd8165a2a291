"""`qifu serve` itself (Granian, several worker processes) on a checked county: health, static
files from the package, the self-check API with a signed-in portal session, many requests at
once, and a clean stop. The browser tests run the application in-process instead, so that
their pages see the test database."""

import concurrent.futures
import http.client
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import free_port

KINDS = ("registry", "reports", "shareholders", "tax", "social", "requests")

SESSION = """
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "qifu.settings"
django.setup()
from django.contrib.sessions.backends.db import SessionStore
from qifu.reports.models import AnnualReport
prev = (AnnualReport.objects.filter(report_year=2024, is_current=True, entity__entity_type="enterprise",
                                    total_revenue__gte=100).order_by("entity_id").first())
store = SessionStore()
store["portal_uscc"] = prev.entity_id
store.create()
print(store.session_key, prev.total_revenue)
"""


SECRET = "serve-test-" + "k" * 50


def start(env: dict) -> tuple[subprocess.Popen, int]:
    """`qifu serve` on a free port, once it answers its health check."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "qifu", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    pytest.fail(f"qifu serve did not answer: {server.stdout.read()}")


@pytest.fixture
def served(tmp_path, small_county, process_env):
    env = dict(process_env, QIFU_SECRET_KEY=SECRET, QIFU_WORKERS="2", QIFU_THREADS="2")

    def qifu(*args):
        done = subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    for kind in KINDS:
        qifu("import", kind, small_county / f"{kind}.csv")
    qifu("check", "--year", "2025", "--out", tmp_path / "findings.csv")
    out = subprocess.run([sys.executable, "-c", SESSION], env=env, capture_output=True, text=True, check=True).stdout
    session_key, revenue = out.split()
    key = qifu("apikey", "测试设备").strip()
    server, port = start(env)
    yield port, session_key, float(revenue), key
    server.send_signal(signal.SIGTERM)
    try:
        assert server.wait(timeout=30) is not None
    finally:
        server.kill()


def _request(port, method, path, body=None, session_key=None):
    token = "t" * 32
    headers = {"Content-Type": "application/json", "X-CSRFToken": token, "Cookie": f"csrftoken={token}"}
    if session_key:
        headers["Cookie"] += f"; sessionid={session_key}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def test_serve_answers_the_self_check_from_several_workers(served):
    port, session_key, revenue, _ = served
    status, body = _request(port, "GET", "/static/qifu/vendor/chart-4.5.1.umd.min.js")
    assert status == 200 and b"Chart" in body  # from the package, no CDN
    assert _request(port, "POST", "/api/v1/selfcheck", {"figures": {"total_revenue": 1}})[0] == 401
    wan = round(revenue * 1.1, 2)
    status, body = _request(port, "POST", "/api/v1/selfcheck", {"figures": {"total_revenue": wan * 10000}}, session_key)
    assert status == 200, body
    problems = json.loads(body)["problems"]
    yuan = [p for p in problems if p["rule_id"] == "UM-01"]
    assert yuan and f"{wan:g}" in yuan[0]["suggestion"].replace(",", "")
    # fifty at once, over fifty connections: every one answered
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: _request(port, "POST", "/api/v1/selfcheck",
                                                   {"figures": {"total_revenue": wan}}, session_key), range(50)))
    assert [s for s, _ in results] == [200] * 50


def _get(port: int, path: str) -> tuple[int | str, str]:
    """One request on a connection of its own: (status or the error, the worker that answered)."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Qifu-Worker") or ""
    except OSError as e:  # a timeout is an OSError
        return repr(e), ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_every_fresh_start_answers_every_request_and_stops_on_sigterm(process_env):
    """Ten fresh starts of `qifu serve`, two workers each: fifty requests at once to the pages a
    first visitor opens, every one answered within 5 s by either worker, none with a 5xx, both
    workers answering after it; then SIGTERM ends the server and every worker within 10 s.
    (Workers used to be forked while a schedule thread ran, and some waited for ever on an
    import lock the thread had held.)"""
    env = dict(process_env, QIFU_SECRET_KEY=SECRET, QIFU_WORKERS="2", QIFU_THREADS="4")
    paths = ["/login/", "/portal/login/", "/healthz", "/api/v1/openapi.json", "/assistant/"]
    for attempt in range(10):
        server, port = start(env)
        try:
            workers: set[str] = set()
            deadline = time.time() + 60
            while len(workers) < 2 and time.time() < deadline:  # both workers loaded and answering
                workers.add(_get(port, "/healthz")[1])
            assert len(workers) == 2, f"start {attempt}: only {workers} answered"
            with concurrent.futures.ThreadPoolExecutor(50) as pool:
                answers = list(pool.map(lambda i, port=port: _get(port, paths[i % len(paths)]), range(50)))
            bad = [a for a in answers if not isinstance(a[0], int) or a[0] >= 500]
            assert not bad, f"start {attempt}: {len(bad)} of 50 unanswered or failed: {bad[:3]}"
            # and both workers still answer after the burst (which of them took the burst's ten
            # health checks is the kernel's choice: once in some sixty starts, one took all ten)
            after: set[str] = {w for _, w in answers if w}
            deadline = time.time() + 10
            while after != workers and time.time() < deadline:
                if worker := _get(port, "/healthz")[1]:
                    after.add(worker)
            assert after == workers, f"start {attempt}: only {after} of {workers} answer after the burst"
        finally:
            stopped_at = time.time()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            finally:
                server.kill()
        assert time.time() - stopped_at < 10
        left = [int(w) for w in workers if w and _alive(int(w))]
        assert not left, f"start {attempt}: workers {left} still running after SIGTERM"


def test_the_georeport_client_reads_open311_in_json_and_xml_and_a_post_as_open311_11_sends_it(served, small_county):
    """The real client `georeport` 0.3.1 against `qifu serve` (every GET it has), and a POST
    exactly as `open311` 1.1 sends one (it cannot run on Python 3): api_key and jurisdiction
    in the query string, the fields form-encoded, the credit code as attribute[uscc]."""
    import urllib.parse
    import urllib.request

    import polars as pl
    from georeport import GeoReport

    port, _, _, key = served
    root = f"http://127.0.0.1:{port}/open311/v2"
    uscc = pl.read_csv(small_county / "registry.csv", infer_schema=False).filter(pl.col("status") == "active")["uscc"][0]
    body = urllib.parse.urlencode({"service_code": "utilities", "description": "园区本周停电三次，影响生产",
                                   "attribute[uscc]": uscc, "first_name": "三", "last_name": "张"}).encode()
    url = f"{root}/requests.xml?" + urllib.parse.urlencode({"jurisdiction_id": "", "api_key": key})
    with urllib.request.urlopen(urllib.request.Request(url, data=body)) as r:
        assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
        xml = r.read().decode()
    number = xml.split("<service_request_id>")[1].split("<")[0]
    for fmt in ("json", "xml"):
        client = GeoReport(root, jurisdiction="cixi.gov.cn", output_format=fmt)
        services = client.get_service_list()
        assert len(services) == 18 and services[2]["service_code"] == "tax"
        definition = client.get_service_definition("tax")
        assert "uscc" in str(definition["attributes"])
        found = client.get_service_requests(service_request_id=number)
        found = found if isinstance(found, list) else [found]
        assert found[0]["service_request_id"] == number and found[0]["status"] == "open"
        one = client.get_service_request(number)
        assert one["service_request_id"] == number and one["agency_responsible"] == "供电、供水、燃气、通信单位"
        assert client.get_service_requests(service_code="utilities,tax", status="open")
    import requests as http

    with pytest.raises(http.HTTPError):
        GeoReport(root, output_format="json").get_service_request("NO-SUCH")
    bad = urllib.request.Request(f"{root}/requests.json?api_key=wrong", data=body)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad)
    assert err.value.code == 403


def test_a_worker_keeps_what_it_preloaded_out_of_the_garbage_collectors_walk(process_env):
    """What a worker loads before its first request (jieba's dictionary, the indexes, Django)
    lives as long as it does; a full collection walking it would stall every request in flight."""
    probe = ("import gc, qifu.wsgi; "
             "print(gc.get_freeze_count(), len(gc.get_objects()))")
    env = dict(process_env, QIFU_SECRET_KEY=SECRET)
    frozen, tracked = map(int, subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                              check=True).stdout.split())
    assert frozen > 20 * tracked, (frozen, tracked)


def test_the_demo_serves_its_county_at_once_and_fills_the_rest_behind(process_env):
    """`qifu demo` answers once the county's files are in; a second process fills the other
    modules' data behind it and says so on every page, the worker starts once that is done, and a
    stop ends all three."""
    import re
    import threading
    from pathlib import Path

    port = free_port()
    env = dict(process_env, QIFU_DEMO_PASSWORD="demo-pass-123", QIFU_WORKERS="1", QIFU_THREADS="2")
    demo = subprocess.Popen([sys.executable, "-m", "qifu", "demo", "--entities", "300", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True).start()

    def said(text: str) -> int | None:
        return next((i for i, line in enumerate(list(lines)) if text in line), None)

    def wait_for(text: str, seconds: float) -> int:
        deadline = time.time() + seconds
        while said(text) is None:
            assert demo.poll() is None and time.time() < deadline, "".join(lines)
            time.sleep(0.2)
        return said(text)

    try:
        wait_for("企服 qifu 已启动", 240)
        status = None
        while status != 200:
            status, _ = _get(port, "/login/")
            assert demo.poll() is None and said("Traceback") is None, "".join(lines)
            time.sleep(0.2)
        ready = wait_for("演示数据已全部就绪", 240)
        worker = wait_for("定时任务已启动", 120)
        # served before the data were all in, the worker only after
        assert said("县域数据已导入") < said("企服 qifu 已启动") < ready < worker, "".join(lines)
        assert said("工作人员登录：用户名 demo  密码 demo-pass-123") < said("企服 qifu 已启动")
        assert said("年报抽查：") < ready and said("申报季演示（") < ready  # the filling process's steps
        assert not (Path(env["QIFU_DATA_DIR"]) / "run" / "demo-filling.json").exists()
        counted = subprocess.run([sys.executable, "-m", "qifu", "manage", "shell", "-c",
                                  "from qifu.inspections.models import Inspection; from qifu.land.models import Evaluation;"
                                  "print(Inspection.objects.count(), Evaluation.objects.count())"],
                                 env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()
        assert counted == ["2", "2"]  # the spot checks drawn, both years of land evaluated
        worker_pid = int(re.search(r"定时任务已启动（进程 (\d+)", lines[worker]).group(1))
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            demo.wait(timeout=60)
        finally:
            demo.kill()
    deadline = time.time() + 10
    while Path(f"/proc/{worker_pid}").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{worker_pid}").exists(), "the demo's worker outlived it"
