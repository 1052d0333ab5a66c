"""schemathesis drives every endpoint from the OpenAPI schema: no input may cause a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from registry.api import create_app
from registry.config import Settings
from registry.store.store import Store

pytestmark = pytest.mark.chain

EXAMPLES_PER_OPERATION = 40


def test_no_input_causes_a_server_error(
    settings: Settings, store: Store, declared: dict[str, Any]
) -> None:
    # Driven by hand rather than through schemathesis' pytest plugin, whose fixture support
    # does not work with this pytest; the checks are the same: every operation, generated cases.
    app = create_app(settings.model_copy(update={"max_upload_mb": 1}), store=store)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
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
