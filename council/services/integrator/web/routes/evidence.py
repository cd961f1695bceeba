"""The evidence pack from the pages: the signed export bundle (`council audit export`) of every
event recorded up to the end of a chosen day, zipped for download. Unpacked, `council audit
verify --bundle <folder>` (or the standard tools its README names) checks it without us."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

from council.platform.audit.keys import load_signing_key
from council.services.integrator.adapters.evidence_bundle import ExportRefused, export_bundle
from council.services.integrator.projections.asof import as_of_moment
from council.services.integrator.web.pages import SignedIn, error_page, router
from council.services.integrator.web.render import SECURITY_HEADERS, server_ms
from council.services.integrator.web.views import runtime_of

routes = router()


@routes.get("/audit/evidence-pack")
def evidence_pack(request: Request, viewer: SignedIn) -> Response:
    day = request.query_params.get("until", "").strip()[:10]
    try:
        until = as_of_moment(day)
    except ValueError:
        return error_page(request, 400, "Choose the day the evidence pack runs to, as "
                                        "YYYY-MM-DD.")
    runtime = runtime_of(request)
    with tempfile.TemporaryDirectory(prefix="evidence-") as tmp:
        folder = Path(tmp) / f"evidence-pack-{day}"
        try:
            export_bundle(runtime.event_log, folder, load_signing_key(runtime.settings),
                          until=until)
        except ExportRefused as exc:
            return error_page(request, 409, f"No evidence pack was made: {exc}")
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return Response(packed.getvalue(), media_type="application/zip", headers={
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="evidence-pack-{day}.zip"',
        "Server-Timing": f'app;dur={server_ms(request):.1f};desc="evidence pack"'})
