"""schemathesis drives every endpoint from the OpenAPI schema: no input may cause a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.checks
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS

from registry.api import create_app
from registry.config import Settings
from registry.store.store import Store

pytestmark = pytest.mark.chain

EXAMPLES_PER_OPERATION = 40
# Server-sent events never end, so no generated call of them returns; tests/api/test_events.py
# tests the feed and its bad input under a real server instead.
ENDLESS = {"/v1/events"}


def _operations(schema: Any) -> list[Any]:
    return [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.path not in ENDLESS
    ]


def test_no_input_causes_a_server_error(
    settings: Settings, store: Store, declared: dict[str, Any]
) -> None:
    # Driven by hand rather than through schemathesis' pytest plugin, whose fixture support
    # does not work with this pytest; the checks are the same: every operation, generated cases.
    app = create_app(settings.model_copy(update={"max_upload_mb": 1}), store=store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = _operations(schema)
    assert len(operations) >= 10
    failures: list[str] = []
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call()
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        check()
    assert failures == []
    # The generator really reached the handlers: answers beyond schema rejections came back.
    assert len(statuses) >= 5 * len(operations)
    assert {200, 400, 404} <= set(statuses)


# Checks the service does not pass, each for a reason written in docs/api.md ("Schemathesis").
EXCEPTIONS = {
    # A pattern cannot say which ISCC headers exist or how long each kind's body is, that an
    # `expect` hash must be the document's, or that a file name must yield a Meta-Code title:
    # such schema-valid requests are answered 400 with the reason.
    "positive_data_acceptance",
}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_schemathesis_check_passes(
    settings: Settings, store: Store, declared: dict[str, Any], mode: GenerationMode
) -> None:
    """`--checks all`, apart from the documented EXCEPTIONS, positive and negative data."""
    app = create_app(settings.model_copy(update={"max_upload_mb": 1}), store=store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [c for c in CHECKS.get_all() if c.__name__ not in EXCEPTIONS]
    failures: dict[str, str] = {}
    for operation in _operations(schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION // 2,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call()
            try:
                case.validate_response(response, checks=checks)
            except Exception as exc:  # schemathesis raises a group of check failures
                failures.setdefault(f"{case.method} {case.path}", f"{exc}"[:600])

        try:
            check()
        except Unsatisfiable:
            # Nothing of this operation can be made invalid (no parameters, no body).
            assert (
                mode is GenerationMode.NEGATIVE
                and not operation.body
                and not list(operation.iter_parameters())
            ), operation.label
    assert failures == {}, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
