"""The application: one module per resource, each declaring its routes on one `Api`."""

from __future__ import annotations

from . import (agent_calls, agents, asr, call_control, calls, health, key_routes, knowledge,
               llms, metrics, openai_compat, openapi, schedule, speak, texts, threads, tools,
               tts, webhooks)
from .gate import Gate
from .keys import KeyStore
from .routing import Api
from ..config import Settings
from .services import Services


def empty_api(settings: Settings) -> Api:
    """An Api with the configured body limits and the bounds the request models check."""
    return Api(json_limit=settings.api.max_json_bytes,
               upload_limit=settings.api.max_upload_bytes,
               context={"max_ring_timeout": settings.calls.max_ring_timeout,
                        "max_choice_timeout": settings.listening.max_choice_timeout})


def build_api(services: Services) -> Api:
    """Every route, declared once (the gate and the OpenAPI document read the same list)."""
    settings = services.settings
    api = empty_api(settings)
    health.install(api, services)
    calls.install(api, services)
    call_control.install(api, services)
    speak.install(api, services)
    tools.install(api, services)
    schedule.install(api, services)
    webhooks.install(api, services)
    knowledge.install(api, services)
    agents.install(api, services)
    texts.install(api, services)
    threads.install(api, services)
    agent_calls.install(api, services)
    key_routes.install(api, keys_of(services))
    if services.models is not None:
        for module in (llms, asr, tts, openai_compat):
            module.install(api, services.models)
    if services.metrics is not None:
        metrics.install(api, services.metrics, settings.api.metrics_open)
    openapi.install(api)
    return api


def keys_of(services: Services) -> KeyStore:
    return services.keys or KeyStore(services.settings.paths.state_dir)


def build_app(services: Services) -> Gate:
    """The WSGI application the server runs: the routes behind the gate."""
    return Gate(build_api(services), services.settings.api, keys_of(services))
