"""The three services' OpenAPI descriptions taken as a contract and checked by schemathesis,
in process (ASGI) on the embedded deployment: requests generated from each operation's
declared parameters and bodies (and, to see them refused as declared, ones that break
the declaration), sent with no token, a provider's credentials and an integrator
admin's, and then sequences of calls following the links schemathesis infers between
operations. No answer may be a 5xx, and every answer must be one the operation declares, with
the declared content type, headers and body (errors as problem details, see
council.platform.problems).

Run time is bounded by the examples per operation: COUNCIL_CONTRACT_EXAMPLES (default 6) and,
for the call sequences, COUNCIL_CONTRACT_SEQUENCES (default 10)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from council.platform.settings import Settings
from tests.unit.test_deliveries_api import World, build_world

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("COUNCIL_CONTRACT_EXAMPLES", "6"))
SEQUENCES = int(os.environ.get("COUNCIL_CONTRACT_SEQUENCES", "10"))
CHECKS: list[Callable[..., Any]] = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance,
]
SERVICES = ("provider_registry", "integrator", "outcomes")
IDENTITIES = ("no token", "provider", "admin")
QUICK = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                 phases=[Phase.explicit, Phase.generate],
                 suppress_health_check=list(HealthCheck))


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_: Any, value: Any) -> bytes:
    """A batch body as generated: text as it is, anything else as one JSON line."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else (json.dumps(value) + "\n").encode()


@schemathesis.serializer("text/csv")
def _csv(_: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The three services with providers, a commission and agreements (see
    tests.unit.test_deliveries_api.build_world), so reads find something and links lead
    somewhere."""
    settings_ = Settings(var_dir=tmp_path_factory.mktemp("contract"), relay_interval=0.01)
    with ExitStack() as stack:
        yield build_world(stack, settings_, 60.0)


def client_of(world: World, service: str) -> Any:
    return {"provider_registry": world.registry, "integrator": world.integrator,
            "outcomes": world.outcomes}[service]


def headers_of(world: World, identity: str) -> dict[str, str]:
    return {"no token": {}, "provider": world.auth["hillside"], "admin": world.admin}[identity]


def contract(world: World, service: str) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", client_of(world, service).app)


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_keeps_to_its_contract(world: World, service: str,
                                               identity: str) -> None:
    headers = headers_of(world, identity)
    failures: list[str] = []
    for result in contract(world, service).get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:  # what the contract allows, and what it does not

            @QUICK
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # nothing to break: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE
            except Exception as exc:  # every operation is tried; all failures are reported
                failures.append(f"{operation.label} ({mode.value}) as {identity}: "
                                f"{str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(("service", "identity"), [
    ("provider_registry", "admin"), ("integrator", "admin"), ("outcomes", "admin"),
    ("outcomes", "provider"),
])
def test_sequences_of_calls_keep_to_the_contract(world: World, service: str,
                                                 identity: str) -> None:
    """Calls chained by the links schemathesis infers (an id a POST answers used by the GETs
    and POSTs that take it)."""
    headers = headers_of(world, identity)
    machine = contract(world, service).as_state_machine()

    class Calls(machine):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Calls.run(settings=settings(max_examples=SEQUENCES, stateful_step_count=6, deadline=None,
                                database=None, derandomize=True,
                                suppress_health_check=list(HealthCheck)))
