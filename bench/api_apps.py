"""The two APIs ``bench/api.py`` compares, served the same way so that only their safety
differs: ``guarded`` is the API as built; ``unguarded`` is the same app with its safety taken
off (no token check, no audit trail, no rate or waiter limits), the anchor, never served
anywhere else.

    gunicorn 'bench.api_apps:guarded()'      (settings from ORCH_* in the environment)
    gunicorn 'bench.api_apps:unguarded()'
"""

from __future__ import annotations

from flask import Flask

from api import create_app
from orchestrator.settings import Settings

SAFETY_MODULES = frozenset({"api.auth", "api.audit", "api.limits", "api.rate_limit"})


def unguarded_app(settings: Settings) -> Flask:
    app = create_app(settings)
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        for key, funcs in hooks.items():
            hooks[key] = [f for f in funcs if _module_of(f) not in SAFETY_MODULES]
    return app


def _module_of(func: object) -> str:
    owner = getattr(func, "__self__", None)  # bound methods: the module of their class
    return str(getattr(owner or func, "__module__", ""))


def guarded() -> Flask:
    return create_app(Settings())


def unguarded() -> Flask:
    return unguarded_app(Settings())
