"""POST /v1/keys, GET /v1/keys, DELETE /v1/keys/{name}: API keys (an admin key only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .errors import ApiError
from .keys import LIMIT_NAMES, KeyProblem, KeyStore
from .routing import Api
from .schema import RequestModel, ResponseModel

TAGS = ["API keys"]


class KeyLimits(RequestModel):
    """Overrides of [api.limits] for this key; 0 = no limit."""

    requests_per_minute: int | None = Field(None, ge=0)
    requests_per_day: int | None = Field(None, ge=0)
    tokens_per_minute: int | None = Field(None, ge=0)
    tokens_per_day: int | None = Field(None, ge=0)
    audio_seconds_per_hour: int | None = Field(None, ge=0)
    audio_seconds_per_day: int | None = Field(None, ge=0)


class KeyRequest(RequestModel):
    name: str = Field(description="1 to 64 letters, digits, '.', '_' or '-'", max_length=64)
    read_only: bool = Field(False, description="GET requests only")
    admin: bool = Field(False, description="May also manage keys")
    limits: KeyLimits | None = None

    model_config = {"json_schema_extra": {"examples": [
        {"name": "home-assistant"}, {"name": "dashboard", "read_only": True},
        {"name": "batch-job", "limits": {"requests_per_minute": 5}}]}}


class KeyInfo(ResponseModel):
    name: str
    role: Literal["admin", "standard", "read-only"]
    read_only: bool
    admin: bool
    created_at: str
    revoked_at: str | None
    limits: dict[str, int]


class CreatedKey(KeyInfo):
    key: str = Field(description="The secret: shown this once, store it now")

    model_config = {"json_schema_extra": {"examples": [
        {"name": "home-assistant", "role": "standard", "read_only": False, "admin": False,
         "created_at": "2026-11-30T10:00:00Z", "revoked_at": None, "limits": {},
         "key": "sipa_1a2b3c4d_Vb0x...secret"}]}}


class Revoked(ResponseModel):
    success: bool
    message: str


def install(api: Api, keys: KeyStore) -> None:
    @api.post("/v1/keys", summary="Create an API key (the secret is shown once)", tags=TAGS,
              body=KeyRequest, response=CreatedKey, status=201, admin=True, errors=[409])
    def create_key(body: KeyRequest) -> dict:
        limits = body.limits.model_dump(exclude_none=True) if body.limits else {}
        try:
            record, secret = keys.create(body.name, read_only=body.read_only, admin=body.admin,
                                         limits=limits)
        except KeyProblem as exc:
            raise ApiError(409 if "exists" in str(exc) else 400, str(exc)) from None
        return {**record.public(), "key": secret}

    @api.get("/v1/keys", summary="List API keys (never their secrets)", tags=TAGS,
             response=list[KeyInfo], admin=True)
    def list_keys() -> list:
        return [key.public() for key in keys.list()]

    @api.delete("/v1/keys/<name>", summary="Revoke an API key", tags=TAGS, response=Revoked,
                admin=True, errors=[404])
    def revoke_key(name: str) -> dict:
        try:
            keys.revoke(name)
        except KeyProblem as exc:
            raise ApiError(404, str(exc)) from None
        return {"success": True, "message": f"API key '{name}' revoked"}


assert set(KeyLimits.model_fields) == set(LIMIT_NAMES)
