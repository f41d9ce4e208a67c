"""The Bottle application: one module per resource, JSON errors everywhere."""

from __future__ import annotations

import bottle

from . import auth, calls, errors, health, knowledge, schedule, speak, tools
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
    knowledge.install(app, services.knowledge)
    return app
