"""Errors in the pages and the APIs as people meet them: a friendly page for every error
status (never a raw JSON body), codes said in words, and decimals as plain numbers."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.integrator.web.render import describe
from tests.unit.test_web_pages import app, settings, sign_in, users  # noqa: F401 (fixtures)


@pytest.mark.parametrize(("path", "status", "said"), [
    ("/ui/needs/not-an-id", 404, "There is no need not-an-id:"),
    ("/ui/agreements/42", 404, "There is no agreement 42:"),
    ("/ui/providers/x-y", 404, "There is no provider x-y:"),
    ("/ui/no-such-page", 404, "There is no page at /ui/no-such-page"),
    ("/ui/needs/00000000-0000-0000-0000-000000000007", 404, "There is no need"),
])
def test_a_bad_address_answers_a_friendly_page(app: TestClient, path: str, status: int,  # noqa: F811
                                               said: str) -> None:
    sign_in(app, "priya")
    response = app.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert said in response.text
    assert "<h1>Not found</h1>" in response.text
    assert '"detail"' not in response.text


def test_a_stale_form_token_answers_a_friendly_page(app: TestClient) -> None:  # noqa: F811
    sign_in(app, "jo")
    response = app.post(f"/ui/needs/{UUID(int=1)}/options", data={"csrf_token": "stale"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "security token is missing or stale" in response.text


def test_codes_in_the_timeline_read_as_words() -> None:
    said = describe({"stage": "market_engagement", "option": "vcse_grant",
                     "category": "weight-management", "kind": "scope_change"})
    assert said == ("Kind: Scope change; Category: Weight management; Option: VCSE grant; "
                    "Stage: Market engagement")


class Rate(BaseModel):
    rate: Decimal
    note: str


def test_decimals_leave_the_apis_as_plain_numbers(settings: Settings) -> None:  # noqa: F811
    api = create_service_app(INTEGRATOR, settings)

    @api.get("/rate-for-test", response_model=Rate)
    def rate() -> Rate:  # what arithmetic on exact amounts can leave
        return Rate(rate=Decimal("1.90E+3"), note="1E+5 reads as written")

    with TestClient(api) as client:
        body = client.get("/rate-for-test").text
    assert '"rate":"1900"' in body
    assert "E+" not in body.replace("1E+5 reads", "")
