"""The provider registry's HTTP API, as the pages call it: onboarding is the registry's to do
(it owns providers' records), so the pages never write its store; they send the signed-in
person's session token, which the registry accepts like any token from the shared identity
store, and turn its refusals into messages on the form."""

from __future__ import annotations

from typing import Any

import httpx

from council.services.integrator.web.forms import FORM_LEVEL, friendly


class RegistryRefused(Exception):
    """The registry said no (4xx), or could not be reached; `errors` as a form shows them."""

    def __init__(self, status: int, errors: dict[str, str]) -> None:
        super().__init__(errors.get(FORM_LEVEL) or "; ".join(errors.values()))
        self.status = status
        self.errors = errors


def _errors(response: httpx.Response) -> dict[str, str]:
    """The registry's refusal (problem details, see council.platform.problems) as a form shows it:
    each field at fault under its name, anything else under FORM_LEVEL."""
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text}
    items = problem.get("errors") if isinstance(problem, dict) else None
    detail = problem.get("detail") if isinstance(problem, dict) else str(problem)
    if isinstance(items, list) and items:
        found: dict[str, str] = {}
        for item in items:
            loc = str(item.get("field", "")).split(".")
            if loc[:1] in (["body"], ["query"]):
                loc = loc[1:]
            message = str(item.get("message", "not valid"))
            kind = item.get("type")
            # The kinds whose friendly text needs the limit: the registry's message says it.
            plain = kind is None or kind in _NEEDS_LIMIT
            found.setdefault(".".join(loc) or FORM_LEVEL, message if plain else
                             friendly({"type": kind, "msg": message, "ctx": {}}))
        return found
    if response.status_code == 403:
        return {FORM_LEVEL: f"Your role may not do this: {detail}"}
    return {FORM_LEVEL: str(detail)}


_NEEDS_LIMIT = frozenset({"greater_than", "greater_than_equal", "less_than_equal"})


def call(base_url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None,
         *, idempotency_key: str | None = None, correlation_id: str | None = None,
         service: str = "provider registry") -> dict[str, Any]:
    """`service`'s published API (the registry's, or the outcomes service's for an
    agreement's outcome terms), as the signed-in person."""
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if correlation_id:
        headers["X-Correlation-ID"] = correlation_id
    try:
        response = httpx.request(method, f"{base_url}{path}", json=body, headers=headers,
                                 timeout=15)
    except httpx.HTTPError as exc:
        raise RegistryRefused(503, {FORM_LEVEL: f"The {service} at {base_url} is not "
                                                f"answering ({type(exc).__name__}); try again"}
                              ) from None
    if response.status_code >= 500:
        raise RegistryRefused(response.status_code, {
            FORM_LEVEL: f"The {service} failed ({response.status_code}); try again"})
    if response.status_code >= 400:
        raise RegistryRefused(response.status_code, _errors(response))
    found: dict[str, Any] = response.json()
    return found
