"""TRANSFER and SEND_TEXT without a call: the directory's loose matching, the phrasings the
rules take, who may be texted, and the [directory] config."""

from __future__ import annotations

import pytest

from sipassist import config
from sipassist.config import ConfigError, DirectorySettings
from sipassist.tools.base import ToolResult
from sipassist.tools.directory import Directory
from sipassist.tools.registry import ToolRegistry
from sipassist.tools.send_text import SendTextTool
from sipassist.tools.transfer import TransferTool
from sipassist.voice.intents import recognise

DIRECTORY = Directory(DirectorySettings((("reception", "100"), ("front desk", "101"),
                                         ("sales", "sip:sales@pbx.lan"))))


@pytest.mark.parametrize(("said", "name"), [
    ("reception", "reception"), ("the reception please", "reception"), ("Reception.", "reception"),
    ("the front desk", "front desk"), ("someone at the front desk", "front desk"),
    ("reseption", "reception"), ("101", "front desk"), ("Sales!", "sales"),
])
def test_spoken_names_are_found_loosely(said, name):
    assert DIRECTORY.find(said).name == name


@pytest.mark.parametrize("said", ["", "the", "marketing", "1002", "desk"])
def test_what_is_not_in_the_directory_is_not_found(said):
    assert DIRECTORY.find(said) is None


@pytest.mark.parametrize(("text", "tool", "args"), [
    ("Put me through to reception.", "TRANSFER", {"to": "reception"}),
    ("put me to the reception.", "TRANSFER", {"to": "the reception"}),
    ("Could you transfer me to sales?", "TRANSFER", {"to": "sales"}),
    ("Can I speak to the front desk?", "TRANSFER", {"to": "the front desk"}),
    ("Send me a text saying hello.", "SEND_TEXT", {"text": "hello"}),
    ("Text me the weather.", "SEND_TEXT", {"about": "the weather"}),
    ("Send a text to reception saying I am running late.", "SEND_TEXT",
     {"to": "reception", "text": "I am running late"}),
    ("Send me a text saying bye.", "SEND_TEXT", {"text": "bye"}),
    ("Remind me in ten minutes to send a text to reception.", "SET_TIMER",
     {"duration": 600, "message": "This is your reminder to send a text to reception."}),
])
def test_plain_phrasings_are_recognised(text, tool, args):
    intent = recognise(text)
    assert intent is not None and (intent.tool, intent.args) == (tool, args)


@pytest.mark.parametrize("text", [
    "I'd like to talk to you about my order and when it will be delivered",
    "Send a text to reception.",  # what to say: left to the model
    "What does this text mean?",
    "Put me down for two.",
])
def test_other_phrasings_are_not_taken(text):
    intent = recognise(text)
    assert intent is None or intent.tool not in ("TRANSFER", "SEND_TEXT"), intent


def test_transfer_names_where_and_refuses_what_is_not_listed():
    tool = TransferTool(DIRECTORY, "pbx.lan")
    result = tool.execute({"to": "the front desk"})
    assert result.success and result.message == "Putting you through to front desk."
    assert result.data == {"name": "front desk", "transfer_to": "sip:101@pbx.lan"}
    result = tool.execute({"to": "sip:evil@attacker.example"})
    assert not result.success and "reception, front desk or sales" in result.message
    assert not TransferTool(Directory(DirectorySettings()), "pbx.lan").enabled


class Weather:
    name, description, parameters, enabled = "WEATHER", "", (), True

    def execute(self, params):
        return ToolResult(True, "It's 12 degrees and dry.")


def test_send_text_goes_only_to_the_caller_or_the_directory():
    sent = []
    tool = SendTextTool(DIRECTORY, lambda to, text: sent.append((to, text)),
                        ToolRegistry([Weather()]))
    assert tool.execute({"text": "hello", "caller": "1001"}).message == "I've sent you a text."
    assert tool.execute({"about": "the weather", "caller": "1001"}).success
    assert tool.execute({"to": "sales", "text": "hi"}).message == "I've sent sales a text."
    assert sent == [("1001", "hello"), ("1001", "It's 12 degrees and dry."),
                    ("sip:sales@pbx.lan", "hi")]
    # No call-back allowed on this line, an address not in the directory, nothing to say.
    for params in ({"text": "hello", "caller": ""}, {"text": "hi", "to": "sip:x@evil.example"},
                   {"text": "hi", "to": "+15551234567"}, {"caller": "1001"}):
        assert not tool.execute(params).success, params
    assert len(sent) == 3


def test_a_failed_send_is_told():
    def refuse(to, text):
        raise RuntimeError("no answer from the far end")

    result = SendTextTool(DIRECTORY, refuse, ToolRegistry([])).execute(
        {"text": "hi", "caller": "1001"})
    assert not result.success and result.message == "Sorry, I couldn't send the text."
    assert "no answer" in result.error


def test_directory_config():
    settings = config.parse({"directory": {"reception": "100", "front_desk": "sip:fd@pbx.lan"}})
    assert settings.directory.entries == (("reception", "100"), ("front desk", "sip:fd@pbx.lan"))
    with pytest.raises(ConfigError, match="directory.sales"):
        config.parse({"directory": {"sales": 200}})
    with pytest.raises(ConfigError, match="directory.bad"):
        config.parse({"directory": {"bad": "a b;c"}})
    with pytest.raises(ConfigError, match="calls.machine_detection_seconds"):
        config.parse({"calls": {"machine_detection_seconds": 0.5}})
