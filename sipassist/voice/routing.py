"""The model's tool choice, for what the rules in intents.py do not recognise.

Two steps against one `Llama` whose few-shot prompt stays the same, so only the caller's
words are evaluated each turn (llama.cpp keeps the prompt's KV state):
1. One forward pass, then the tool whose name's first token scores highest (or "chat").
   About 100–250 ms warm on two cores; generating the choice as JSON took 0.4–1.9 s.
2. For a tool with parameters, its arguments as JSON, generated under a grammar made from the
   registry's parameter schema, so they always parse and carry the declared types.
A choice is dropped (the LLM answers instead) when the utterance cannot hold what the tool
needs: no number for CALC, no duration for SET_TIMER. The small model's wrong choices were
mostly knowledge questions sent to those two.
"""

from __future__ import annotations

import json
import re
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..tools.base import Tool
from ..tools.registry import ToolRegistry
from .intents import TOOL, Intent, has_number, parse_duration, place_timezone

log = logging.getLogger(__name__)

CHAT = "chat"
MAX_ARG_TOKENS = 48
# Tools with effects beyond the call (the caller leaves it, a text goes out) are taken only
# from the plain phrasings intents.py recognises, never from the small model's guess; leaving
# them out also keeps the prompt, and the routing measured with it, as it was.
RULES_ONLY = frozenset({"TRANSFER", "SEND_TEXT"})
# What an utterance must contain before a tool's choice is believed.
# Its sky-blue and tallest-mountain questions went to WEATHER (bench answers): a weather
# choice needs a word about the weather or what to wear for it.
_WEATHER_WORDS = re.compile(
    r"\b(weather|rain\w*|snow\w*|wind\w*|sun\w*|cloud\w*|storm\w*|hot|cold|warm\w*|cool|"
    r"chilly|freez\w*|degrees?|temperature|humid\w*|outside|out there|jacket|coat|"
    r"umbrella|forecast|fog\w*|ic[ey]|frost\w*|wet|dry)\b", re.IGNORECASE)
PLAUSIBLE: dict[str, Callable[[str], bool]] = {
    "CALC": has_number,
    "SET_TIMER": lambda text: parse_duration(text) is not None,
    "WEATHER": lambda text: _WEATHER_WORDS.search(text) is not None,
}

INSTRUCTIONS = ("You route a phone caller's request to one tool and give its arguments as "
                "JSON. Answer chat for anything the tools do not do.")
# (request, tool, arguments): examples in the prompt, only for tools the registry has.
EXAMPLES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("what time is it", "DATETIME", {"format": "time"}),
    ("who wrote Hamlet", CHAT, None),
    ("is it going to rain", "WEATHER", {}),
    ("what is the capital of Spain", CHAT, None),
    ("how many is 3 lots of 7", "CALC", {"expression": "3 * 7"}),
    ("why do cats purr", CHAT, None),
    ("wake me in a quarter of an hour", "SET_TIMER", {"duration": 900, "message": "Wake up."}),
    ("tell me a joke", CHAT, None),
    ("should I wear a jacket", "WEATHER", {}),
    ("what's the date", "DATETIME", {"format": "date"}),
    ("how far away is the sun", CHAT, None),
    ("what's 20 percent of 50", "CALC", {"expression": "20 / 100 * 50"}),
    ("good morning", CHAT, None),
    ("what hour is it in Tokyo", "DATETIME", {"format": "time", "timezone": "Asia/Tokyo"}),
    ("ping me in 5 minutes", "SET_TIMER", {"duration": 300}),
)


def spoken_parameters(tool: Tool) -> list:
    """The parameters a caller says; the call fills in the tool's caller_parameter itself."""
    filled = getattr(tool, "caller_parameter", None)
    return [p for p in tool.parameters if p.name != filled]


def arguments_schema(tool: Tool) -> dict[str, Any]:
    """The JSON schema of what a caller can give the tool, from its declared parameters."""
    parameters = spoken_parameters(tool)
    return {
        "type": "object",
        "properties": {p.name: {"type": p.type} for p in parameters},
        "required": [p.name for p in parameters if p.required],
        "additionalProperties": False,
    }


def grounded_arguments(tool: str, text: str) -> dict[str, Any]:
    """Arguments the rules read from the utterance more reliably than the small model does
    (it turned "two hours" into 1200 seconds); they replace the model's."""
    if tool == "SET_TIMER" and (duration := parse_duration(text)):
        return {"duration": duration}
    if tool == "DATETIME" and (zone := place_timezone(text)):
        return {"timezone": zone}
    return {}


def _turn(role: str, text: str) -> str:
    return f"<|im_start|>{role}\n{text}<|im_end|>\n"


def few_shot_prompt(tools: dict[str, Tool]) -> str:
    """The fixed part of the prompt: the tools, then examples for those tools only."""
    described = "\n".join(f"{name.lower()}: {tool.description}" for name, tool in tools.items())
    prompt = _turn("system", f"{INSTRUCTIONS}\n{described}\n{CHAT}: anything else")
    for request, tool, args in EXAMPLES:
        if tool != CHAT and tool not in tools:
            continue
        answer = CHAT if tool == CHAT else f"{tool.lower()} {json.dumps(args)}"
        prompt += _turn("user", request) + _turn("assistant", answer)
    return prompt


class ToolRouter:
    """Picks a tool (or chat) for an utterance with the local model; one call at a time.

    The prompt is made from the tools passed in; a daemon passes the same registry every
    time, so the prompt, and with it the cached KV state, stays the same.
    """

    def __init__(self, model_path: Path, threads: int = 2, context: int = 1024) -> None:
        from .llama_models import load_llama  # one model for every context

        self._llm = load_llama(model_path, n_ctx=context, n_threads=threads,
                               n_batch=64, flash_attn=True, verbose=False)
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    def warm_up(self, tools: ToolRegistry) -> None:
        """Evaluate the fixed prompt now, not during the first call."""
        self.route("hello", tools)

    def route(self, text: str, tools: ToolRegistry) -> Intent | None:
        """The tool call for `text`, or None when the LLM should answer it."""
        enabled = {t.name: t for t in tools.all() if t.enabled and t.name not in RULES_ONLY}
        labels = {name.lower(): name for name in enabled} | {CHAT: CHAT}
        prompt = few_shot_prompt(enabled) + _turn("user", text.strip()) + \
            "<|im_start|>assistant\n"
        with self._lock:
            label = self._choose(prompt, labels)
            name = labels[label]
            if name == CHAT:
                return None
            plausible = PLAUSIBLE.get(name)
            if plausible and not plausible(text):
                log.info("the model chose %s for %r, which holds nothing for it", name, text)
                return None
            args = self._arguments(prompt + label + " ", enabled[name])
        if args is None:
            return None
        return Intent(TOOL, name, {**args, **grounded_arguments(name, text)})

    def _choose(self, prompt: str, labels: dict[str, str]) -> str:
        tokens = self._llm.tokenize(prompt.encode(), add_bos=False, special=True)
        cached = self._llm.input_ids[:self._llm.n_tokens]
        keep = 0
        for mine, theirs in zip(tokens, cached):
            if mine != theirs:
                break
            keep += 1
        keep = min(keep, len(tokens) - 1)  # the last token is evaluated again for its logits
        self._llm.n_tokens = keep  # eval() drops the KV state past this point
        self._llm.eval(tokens[keep:])
        logits = self._last_logits()
        first = self._first_tokens(labels)
        return first[max(first, key=lambda token: logits[token])]

    def _first_tokens(self, labels: dict[str, str]) -> dict[int, str]:
        first: dict[int, str] = {}
        for label in labels:
            token = self._llm.tokenize(label.encode(), add_bos=False)[0]
            if token in first:
                raise ValueError(f"tool labels {first[token]!r} and {label!r} start alike")
            first[token] = label
        return first

    def _last_logits(self) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._llm.n_vocab(),))

    def _arguments(self, prompt: str, tool: Tool) -> dict[str, Any] | None:
        if not spoken_parameters(tool):
            return {}
        schema = json.dumps(arguments_schema(tool))
        grammar = self._grammars.get(schema)
        if grammar is None:
            from llama_cpp import LlamaGrammar

            grammar = self._grammars[schema] = LlamaGrammar.from_json_schema(schema,
                                                                             verbose=False)
        name = tool.name
        result = self._llm.create_completion(prompt, max_tokens=MAX_ARG_TOKENS, temperature=0,
                                             grammar=grammar)
        text = result["choices"][0]["text"]
        try:
            args = json.loads(text)
        except ValueError:
            log.info("the model's arguments for %s did not parse: %r", name, text)
            return None
        return args if isinstance(args, dict) else None
