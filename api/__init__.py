"""The HTTP API: a Flask app factory and its blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api import (
    audit,
    auth,
    docs,
    domains,
    fleet,
    health,
    hypervisors,
    jobs,
    limits,
    meta,
    problems,
    storage,
)
from api.services import Services
from orchestrator.settings import Settings


def create_app(
    settings: Settings | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    settings = settings or Settings()
    app = Flask(__name__, static_folder=None)  # no files to serve, so no /static route
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        API_TOKENS=settings.api_tokens,
    )
    if test_config:
        app.config.update(test_config)
    Services.from_settings(settings).init_app(app)
    auth.init_app(app)  # the first hook: those after it know the caller
    limits.init_app(app, settings)  # after auth: limits key on the verified caller
    problems.init_app(app)
    for module in (jobs, hypervisors, health, meta, storage, domains, fleet, audit, docs):
        app.register_blueprint(module.bp)
    return app
