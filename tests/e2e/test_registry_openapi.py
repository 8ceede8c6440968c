"""schemathesis against the live registry's OpenAPI: no 5xx, every answer as documented.

Valid and invalid requests (schemathesis' positive and negative modes) to every route, with a
token; each answer's status code, content type and body must be what `/openapi.json` says.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import API_TOKEN, System

pytestmark = pytest.mark.e2e

EXAMPLES = 250  # bounded: a few seconds on a busy machine

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]  # not negative_data_rejection: unknown query parameters are ignored, as most APIs do


def test_openapi_contract_holds(system: System) -> None:
    registry = system.service("registry", EVENT_CALLBACK_PREFIX="https://hooks.example.com")
    registry.start()
    schema = schemathesis.openapi.from_url(f"{registry.base_url}/openapi.json")
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=registry.base_url,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
            checks=CHECKS,
        )

    run()
    assert "Traceback" not in registry.log()
