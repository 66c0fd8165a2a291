"""Open311 fuzzed from its own OpenAPI description with schemathesis: no input gives a 5xx,
and every answer keeps to the description (the spec's error bodies included)."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

EXAMPLES = int(os.environ.get("QIFU_FUZZ_EXAMPLES", "60"))


@pytest.fixture
def open311_schema(checked_county, db):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from qifu.imports.actions import import_file
    from qifu.wsgi import application

    import_file("requests", checked_county["folder"] / "requests.csv")
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/open311/v2/openapi.json", application)
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_open311_has_no_server_errors_and_keeps_to_its_description(open311_schema):
    from qifu.service_requests.apikeys import do_issue_key

    key = do_issue_key("fuzz")[1]
    operations = [r.ok() for r in open311_schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            if case.method == "POST" and case.query is not None and "api_key" in case.query:
                case.query["api_key"] = key  # half the keys valid, so that the fuzz reaches the handler
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance, status_code_conformance])

        fuzz()
