"""The portal API fuzzed from its own OpenAPI schema with schemathesis: no input gives a 500,
and every response matches the schema it declares. Runs in process through WSGI, signed in as
an enterprise of the checked synthetic county, with a CSRF token so that changes get through."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import schemathesis
from django.contrib.sessions.backends.db import SessionStore
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from qifu.checks.models import Finding
from qifu.registry.models import Entity

CSRF = "a" * 32  # a valid CSRF secret, sent as both cookie and header
ROOT = Path(__file__).resolve().parent.parent / "src" / "qifu"
EXAMPLES = int(os.environ.get("QIFU_FUZZ_EXAMPLES", "60"))  # per operation; more for a deeper run


@pytest.fixture
def api_schema(checked_county, db):
    """The schema, read through the WSGI application. Like Django's test client, keep the start
    and end of each request from closing the connection that holds the test transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from qifu.experts.models import Achievement, Expert
    from qifu.imports.actions import import_file
    from qifu.labs.models import Lab
    from qifu.wsgi import application

    if not Lab.objects.exists():  # the shared-lab catalogue, so that booking is reached too
        import_file("labs", checked_county["folder"] / "labs.csv")
    if not Expert.objects.exists():  # and the expert library, so that a new need is matched
        import_file("experts", checked_county["folder"] / "experts.csv")
    if not Achievement.objects.exists():  # and the results library, so that asking about one is reached
        import_file("achievements", checked_county["folder"] / "achievements.csv")
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def enterprise_cookies(checked_county, db):
    from qifu.policies import actions as policies
    from qifu.policies.models import Match

    if not Match.objects.exists():  # the example policies, so that confirming, applying and declining are reached
        policies.match_folder(ROOT / "data" / "policies", 2025, notify=False)
    open_findings = Finding.objects.filter(status="open", entity__entity_type="enterprise")
    uscc = (open_findings.filter(entity_id__in=Match.objects.values("entity_id")).values_list("entity_id", flat=True).first()
            or open_findings.values_list("entity_id", flat=True).first())
    from qifu.projects import actions as projects

    projects.do_register(Entity.objects.get(pk=uscc), "330282-FUZZ-0001", "模糊测试用建设项目", "industrial", "开发区", "",
                         [("一期", "1号厂房"), ("二期", "2号厂房")])  # so that raising a stuck step is reached
    store = SessionStore()
    store["portal_uscc"] = uscc
    store.create()
    return {"sessionid": store.session_key, "csrftoken": CSRF}


def test_api_has_no_server_errors_and_keeps_to_its_schema(api_schema, enterprise_cookies, monkeypatch):
    monkeypatch.setenv("QIFU_SMS_GATEWAY_TOKEN", "gw-fuzz")  # so that the fuzz reaches the hook itself
    # schemathesis's pytest plugin does not run under pytest 9; its Hypothesis strategies do.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 38
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            case.call_and_validate(
                cookies=enterprise_cookies, headers={"X-CSRFToken": CSRF, "Authorization": "Bearer gw-fuzz"},
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
            )

        fuzz()


def test_schema_describes_every_endpoint_with_its_auth(client, checked_county, db):
    doc = client.get("/api/v1/openapi.json").json()
    assert set(doc["paths"]) == {"/api/v1/me", "/api/v1/findings", "/api/v1/findings/{finding_id}/explanation",
                                 "/api/v1/selfcheck", "/api/assistant/ask", "/hooks/sms/inbound",
                                 "/api/v1/labs/instruments", "/api/v1/labs/instruments/{instrument_id}/slots",
                                 "/api/v1/labs/bookings", "/api/v1/labs/bookings/{booking_id}/cancel",
                                 "/api/v1/labs/voucher", "/api/v1/labs/waiting",
                                 "/api/v1/labs/waiting/{waiting_id}/withdraw", "/api/v1/labs/orders",
                                 "/api/v1/labs/orders/{order_id}/withdraw", "/api/v1/labs/orders/{order_id}/retest",
                                 "/api/v1/experts/needs", "/api/v1/projects",
                                 "/api/v1/projects/{code}/phases/{seq}/raise", "/api/v1/projects/{code}/items/{item_id}/document",
                                 "/api/v1/projects/{code}/defects/{defect_id}/fix", "/api/v1/experts/achievements",
                                 "/api/v1/experts/achievements/{code}/ask", "/api/v1/abnormal",
                                 "/api/v1/abnormal/{listing_id}/apply",
                                 "/api/v1/abnormal/{listing_id}/object", "/api/v1/inspections",
                                 "/api/v1/inspections/{sample_id}/correction",
                                 "/api/v1/inspections/{sample_id}/more-time", "/api/v1/policies",
                                 "/api/v1/policies/{match_id}/confirm", "/api/v1/policies/{match_id}/apply",
                                 "/api/v1/policies/{match_id}/withdraw", "/api/v1/policies/{match_id}/decline"}
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op.get("security") or path == "/api/assistant/ask", path
            assert "422" in op["responses"], path  # unreadable values, and a NUL anywhere (qifu.web.nul)
    docs = client.get("/api/v1/docs").content.decode()
    assert "cdn" not in docs.lower() and "/static/ninja/swagger-ui-bundle.js" in docs
    # the Swagger UI's files come from the installed package, through the site's static files
    bundle = client.get("/static/ninja/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUI" in b"".join(bundle.streaming_content)


def test_the_api_is_resolved_first_and_shadows_no_page():
    from django.urls import resolve

    booking = resolve("/api/v1/labs/bookings")
    assert booking.namespace == "api" and len(booking.tried) <= 20  # not after the 75 pages' patterns
    assert resolve("/").url_name == "home" and resolve("/entities/").url_name == "entities"
    assert resolve("/hooks/sms/inbound").namespace == "api"


def test_a_nul_anywhere_in_an_api_request_is_refused_before_the_database(enterprise_cookies, monkeypatch):
    """PostgreSQL can neither store nor compare text holding NUL; on it, each of these was a 500."""
    from django.test import Client

    from qifu.experts.models import Need
    from qifu.projects.models import Step
    from qifu.reminders.models import OptOut
    from qifu.service_requests.models import ServiceRequest

    monkeypatch.setenv("QIFU_SMS_GATEWAY_TOKEN", "gw-nul")
    c = Client()
    for name, value in enterprise_cookies.items():
        c.cookies[name] = value
    csrf = {"HTTP_X_CSRFTOKEN": CSRF}
    code = "330282-FUZZ-0001"
    counts = lambda: [m.objects.count() for m in (Need, Step, ServiceRequest, OptOut)]  # noqa: E731
    before = counts()
    cases = [  # (method, path, body, status, field)
        ("post", f"/api/v1/projects/{code}%00/phases/1/raise", {"text": "消防验收预约不上"}, 404, None),
        ("post", f"/api/v1/projects/{code}/phases/1/raise", {"text": "消防验收\x00预约不上"}, 422, ["body", "text"]),
        ("post", "/api/v1/experts/needs", {"title": "盐雾试验", "text": "需要做盐雾试验 48 小时", "tags": ["a\x00"]},
         422, ["body", "tags", 0]),
        ("post", "/api/v1/experts/needs", {"title": "盐雾试验", "text": "需要做盐雾试验 48 小时", "x\x00": 1}, 422,
         ["body", "x"]),
        ("get", "/api/v1/labs/instruments?q=%E7%9B%90%00", None, 422, ["query", "q"]),
        ("post", "/hooks/sms/inbound", {"mobile": "13800000000", "content": "TD\x00"}, 422, ["body", "content"]),
    ]
    for method, path, body, status, field in cases:
        if method == "get":
            r = c.get(path)
        else:
            r = c.post(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION="Bearer gw-nul",
                       **csrf)
        assert r.status_code == status, (path, r.content)
        if field:
            assert r.json()["detail"][0]["loc"] == field and "空字符" in r.json()["detail"][0]["msg"]
    assert counts() == before
    # a form body too (the SMS gateway may post one), and a NUL written as JSON's escape in plain text is no NUL
    r = c.post("/hooks/sms/inbound", {"mobile": "13800000000", "content": "TD\x00"}, HTTP_AUTHORIZATION="Bearer gw-nul")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["form", "content"]
    # a form sent where JSON is expected is refused, not a 500 (the scan for NUL parsed it first)
    r = c.post("/api/v1/experts/needs", {"title": "盐雾试验", "text": "需要做盐雾试验"}, **csrf)
    assert r.status_code == 400 and counts() == before
    r = c.post(f"/api/v1/projects/{code}/phases/1/raise", json.dumps({"text": "日志里写着 \\u0000 怎么办"}),
               content_type="application/json", **csrf)
    assert r.status_code == 201, r.content


EXTREMES = [1e308, -1e308, 5e-324, 1e14, -1e14, 99999999999999.99, 2**31, -(2**31), 2**63, 10**30, 0.1 + 0.2,
            "1e308", "-0", "+5", "1,234.5", "NaN", float("nan"), float("inf"), True, ""]


def test_selfcheck_answers_extreme_numbers_in_every_numeric_field_with_200_or_422(checked_county, enterprise_cookies):
    """1e308 in a money field used to answer 500 (OverflowError). Every numeric field has a range;
    a value outside it, or unreadable, is a 422 that names the field."""
    import json

    from django.test import Client

    from qifu.engine.contract import REPORTS, T
    from qifu.portal import forms

    client = Client()
    client.cookies["sessionid"] = enterprise_cookies["sessionid"]
    numeric = [n for n in forms.names_for("enterprise") if REPORTS.field(n).type in (T.MONEY, T.INT)]
    assert len(numeric) > 20
    outcomes = set()
    for name in numeric:
        for value in EXTREMES:
            r = client.post("/api/v1/selfcheck", json.dumps({"figures": {name: value}}), content_type="application/json")
            assert r.status_code in (200, 422), (name, value, r.status_code, r.content[:200])
            if r.status_code == 422:
                assert name in r.json()["errors"], (name, value)
            outcomes.add((r.status_code, repr(value)))
    assert (422, repr(1e308)) in outcomes and (200, repr(1e14 - 1 if False else 99999999999999.99)) in outcomes
    # the portal's own form, the same values
    for value in ("1e308", "1" + "0" * 400, "-1e308"):
        r = client.post("/portal/selfcheck/", {"total_revenue": value})
        assert r.status_code == 200 and "金额" in r.content.decode()
