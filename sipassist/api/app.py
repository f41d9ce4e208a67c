"""The Bottle application: one module per resource, JSON errors everywhere."""

from __future__ import annotations

import bottle

from . import asr, auth, calls, errors, health, llms, metrics, openai_compat, schedule, speak
from . import tools, tts
from .services import Services


def build_app(services: Services) -> bottle.Bottle:
    app = bottle.Bottle()
    errors.install(app)
    auth.install(app, services.settings.api.token)
    health.install(app, services)
    calls.install(app, services)
    speak.install(app, services)
    tools.install(app, services)
    schedule.install(app, services)
    if services.models is not None:
        for module in (llms, asr, tts, openai_compat):
            module.install(app, services.models)
    if services.metrics is not None:
        metrics.install(app, services.metrics, services.settings.api.metrics_open)
    return app
