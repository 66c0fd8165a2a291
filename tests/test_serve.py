"""`qifu serve` itself (Granian, several worker processes) on a checked county: health, static
files from the package, the self-check API with a signed-in portal session, many requests at
once, and a clean stop. The browser tests run the application in-process instead, so that
their pages see the test database."""

import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import free_port

KINDS = ("registry", "reports", "shareholders", "tax", "social")

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


@pytest.fixture
def served(tmp_path, small_county):
    if os.environ.get("QIFU_DATABASE_URL", "").startswith("postgres"):
        pytest.skip("the server process runs on its own embedded SQLite database here")
    env = dict(os.environ, QIFU_DATA_DIR=str(tmp_path / "var"), QIFU_SECRET_KEY="serve-test-" + "k" * 50,
               QIFU_WORKERS="2", QIFU_THREADS="2")
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def qifu(*args):
        done = subprocess.run([sys.executable, "-m", "qifu", *map(str, args)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    for kind in KINDS:
        qifu("import", kind, small_county / f"{kind}.csv")
    qifu("check", "--year", "2025", "--out", tmp_path / "findings.csv")
    out = subprocess.run([sys.executable, "-c", SESSION], env=env, capture_output=True, text=True, check=True).stdout
    session_key, revenue = out.split()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "qifu", "serve", "--port", str(port), "--no-schedule"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail(f"qifu serve did not answer: {server.stdout.read()}")
    yield port, session_key, float(revenue)
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
    port, session_key, revenue = served
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
