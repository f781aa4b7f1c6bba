"""ASGI entry point for uvicorn: ``missionlink.asgi:create_from_env``.

Wiring, like :mod:`missionlink.cli`: it builds the container and, unless a separate
``missionlink worker`` runs, the in-process worker the app runs in its lifespan."""

from __future__ import annotations

import os

from fastapi import FastAPI

from missionlink import bootstrap
from missionlink.api.app import create_app
from missionlink.config import Env, Settings
from missionlink.observability import metrics_listener
from missionlink.observability.logging import configure
from missionlink.observability.memory import (
    freeze_startup_objects,
    pin_mmap_threshold,
    widen_young_generation,
)


def create_from_env() -> FastAPI:
    pin_mmap_threshold()  # each `serve --workers N` process is a fresh interpreter
    widen_young_generation()
    settings = Settings()
    configure(json_logs=settings.env != Env.dev)
    # This process's own registry on an internal port (a port per process; see
    # observability/metrics_listener.py); /metrics on the public port stays too.
    metrics_listener.start_from_env(settings.api_metrics_port)
    container = bootstrap.build(settings)
    if os.environ.get("MISSIONLINK_SERVE_WORKER", "1") != "1":
        app = create_app(container)
    else:
        from missionlink.workers.runner import Worker  # only where the worker runs

        app = create_app(container, worker=Worker(container))
    freeze_startup_objects()
    return app
