"""Request and response schemas of the model endpoints (native /v1 and the OpenAI aliases).

Shapes only: what depends on the box (model names, its limits) is checked in model_service.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .schema import RequestModel, ResponseModel

Role = Literal["system", "user", "assistant"]


# -- LLM ----------------------------------------------------------------------------------------

class Message(RequestModel):
    role: Role
    content: str


class CompletionRequest(RequestModel):
    messages: list[Message] = Field(min_length=1, description="The conversation so far")
    model: str | None = Field(None, description="GET /v1/llms/models; the box's by default")
    max_tokens: int | None = Field(None, ge=1, description="At most [model_api] llm_max_tokens")
    temperature: float | None = Field(None, ge=0, le=2)

    model_config = {"json_schema_extra": {"examples": [
        {"messages": [{"role": "user", "content": "Hello, how are you?"}], "max_tokens": 60}]}}


class ChoiceMessage(ResponseModel):
    role: str
    content: str


class Choice(ResponseModel):
    finish_reason: str
    message: ChoiceMessage


class TokenUsage(ResponseModel):
    input_tokens: int
    output_tokens: int


class CompletionResult(ResponseModel):
    """Seed 001's run shape."""

    choices: list[Choice]
    created: int
    model: str
    usage: TokenUsage
    execution_time: float

    model_config = {"json_schema_extra": {"examples": [{
        "choices": [{"finish_reason": "stop", "message": {
            "role": "assistant", "content": "I'm doing well, thank you! How can I help?"}}],
        "created": 1672531200, "model": "qwen-0.5b",
        "usage": {"input_tokens": 10, "output_tokens": 12}, "execution_time": 1.234}]}}


class StreamEvent(ResponseModel):
    """`event: delta` {"content"} per piece; `event: done` {finish_reason, created, model,
    usage, execution_time}; `event: error` {detail, status} if it had to stop."""

    content: str | None = None
    finish_reason: str | None = None
    usage: TokenUsage | None = None


class ModelInfo(ResponseModel):
    id: str
    type: str


class ModelList(ResponseModel):
    models: list[ModelInfo]

    model_config = {"json_schema_extra": {"examples": [
        {"models": [{"id": "qwen-0.5b", "type": "llm", "context": 2048, "max_tokens": 512}]}]}}


# -- ASR ----------------------------------------------------------------------------------------

class TranscribeOptions(RequestModel):
    """Form fields (multipart) or query parameters (raw audio body)."""

    language: str | None = Field(None, description='"en" (the box\'s Whisper is set up for it)')
    prompt: str | None = Field(None, description="Words to expect (names, terms)")
    model: str | None = Field(None, description="GET /v1/asr/models")


class Segment(ResponseModel):
    start: float
    end: float
    text: str


class Transcript(ResponseModel):
    text: str
    language: str
    duration: float
    segments: list[Segment]
    execution_time: float

    model_config = {"json_schema_extra": {"examples": [{
        "text": "The meeting starts at ten.", "language": "en", "duration": 1.9,
        "segments": [{"start": 0.0, "end": 1.9, "text": "The meeting starts at ten."}],
        "execution_time": 0.21}]}}


# -- TTS ----------------------------------------------------------------------------------------

class SynthesizeRequest(RequestModel):
    text: str = Field(description="What to say (at most [model_api] tts_max_characters)")
    voice: str | None = Field(None, description="GET /v1/tts/models")
    speed: float | None = Field(None, ge=0.25, le=4.0, description="1 is normal")
    sample_rate: int | None = Field(None, ge=8000, le=48000,
                                    description="Hz; the voice's own by default")
    model: str | None = None

    model_config = {"json_schema_extra": {"examples": [
        {"text": "The meeting starts at ten.", "speed": 1.0, "sample_rate": 16000}]}}


# -- OpenAI's shapes ------------------------------------------------------------------------------

class OpenAIMessage(RequestModel):
    role: Role
    content: str | list[dict[str, Any]]
    name: str | None = None


class ChatRequest(RequestModel):
    """OpenAI's chat request; the fields after `stream_options` are taken and ignored."""

    model: str | None = None
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(None, ge=1, le=1)
    top_p: float | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    model_config = {"json_schema_extra": {"examples": [
        {"model": "qwen-0.5b", "messages": [{"role": "user", "content": "Hi"}]}]}}


class OpenAITranscribeForm(RequestModel):
    """OpenAI's form fields; others it may send (timestamp_granularities...) are ignored."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "verbose_json"] | None = None
    temperature: str | None = None

    model_config = ConfigDict(extra="ignore", frozen=True)


class Transcription(ResponseModel):
    text: str


class SpeechRequest(RequestModel):
    model: str = Field(description="tts-1 (OpenAI's names mean the box's voice) or piper")
    input: str
    voice: str | None = None
    response_format: str | None = Field(None, description='"wav" (default) or "pcm"')
    speed: float | None = Field(None, ge=0.25, le=4.0)
    instructions: str | None = None


class OpenAIModel(ResponseModel):
    id: str
    object: str
    created: int
    owned_by: str


class OpenAIModelList(ResponseModel):
    object: str
    data: list[OpenAIModel]
