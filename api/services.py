"""The long-lived objects a request uses, built once per app from settings."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import Flask, current_app
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.celery_app import create_celery
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.jobs.completion import CompletionWaiter
from orchestrator.jobs.livestate import LiveState
from orchestrator.jobs.submission import Submitter
from orchestrator.settings import Settings


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    live: LiveState
    celery: Celery
    submitter: Submitter
    completion: CompletionWaiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        live = LiveState.from_url(settings.resolved_redis_url)
        celery = create_celery(settings)
        submitter = Submitter(settings, sessions, live, celery)
        return cls(settings, sessions, live, celery, submitter, CompletionWaiter(live))

    def init_app(self, app: Flask) -> None:
        app.extensions["orchestrator"] = self


def services() -> Services:
    svc: Services = current_app.extensions["orchestrator"]
    return svc
