"""Property-based fuzzing of the whole public API from its OpenAPI document (schemathesis):
no answer is a 500, and every answer matches the documented schema. Bounded: a few examples
per operation (derandomized, so a failure reproduces)."""

from __future__ import annotations

import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from picture.devstack.stack import Stack

EXAMPLES_PER_OPERATION = 6
BUDGET_SECONDS = 90


def test_no_server_error_and_no_schema_violation(stack: Stack, token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    calls = 0
    deadline = time.monotonic() + BUDGET_SECONDS
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                base_url=stack.gateway_url,
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error, response_schema_conformance],
                timeout=30,
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
        assert time.monotonic() < deadline, f"fuzzing took longer than {BUDGET_SECONDS}s"
    assert operations >= 10
    assert calls >= 2 * operations
    assert not failures, "\n\n".join(failures)
