"""One of several HTTP processes of a service (`council serve --http-workers N`): uvicorn
calls `http_worker_app` in each. The service is named by COUNCIL_SERVE_SERVICE; its background
work is left to the process that started uvicorn."""

from __future__ import annotations

import os

from fastapi import FastAPI

from council.platform.logs import configure_logging
from council.platform.runtime import ELSEWHERE, create_service_app
from council.platform.settings import Settings
from council.platform.workers import tune_gc
from council.tools.console import service_spec


def http_worker_app() -> FastAPI:
    service = os.environ["COUNCIL_SERVE_SERVICE"]
    settings = Settings()
    configure_logging(service, settings.log_level, settings.log_format)
    tune_gc()
    return create_service_app(service_spec(service), settings, workers=ELSEWHERE)
