"""Assembly of the provider registry service (used by `council serve provider_registry`)."""

from __future__ import annotations

from council.platform.runtime import Runtime, ServiceSpec
from council.services.provider_registry import api, projections
from council.services.provider_registry.application import ProviderRegistry


def wire(runtime: Runtime) -> None:
    """Provider credentials are issued from the shared token store."""
    assert isinstance(runtime.app, ProviderRegistry)
    runtime.app.credentials = runtime.tokens


SPEC = ServiceSpec(
    name="provider_registry",
    application=ProviderRegistry,
    projections=projections.projections,
    routers=[api.router],
    max_body_bytes={api.imports.IMPORT_PATH: api.imports.MAX_IMPORT_BYTES},  # CSV up to 8 MiB
    public_prefixes=(api.oruk.PREFIX,),
    wire=wire,
)
