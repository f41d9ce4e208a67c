"""Settings: the shipped file parses to the defaults; mistakes name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipassist import config

SHIPPED = Path(__file__).parent.parent / "config" / "sipassist.toml"


def test_shipped_config_is_the_defaults(monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    assert config.load(SHIPPED) == config.parse({})


def test_every_default_in_the_shipped_file_is_documented():
    text = SHIPPED.read_text()
    for section in ("sip", "api", "audio", "paths", "queue", "models", "webhooks", "calls"):
        assert f"[{section}]" in text


@pytest.mark.parametrize(("toml", "words"), [
    ("[api]\nport = 'x'", ["api.port", "whole number"]),
    ("[api]\nport = 70000", ["api.port"]),
    ("[sip]\nlisten = 'nohost'", ["sip.listen", "host:port"]),
    ("[sip]\nuser = 'a b'", ["sip.user"]),
    ("[sip.registrar]\nusername = '1050'", ["sip.registrar.domain", "required"]),
    ("[sip.registrar]\ndomain = 'pbx'\npasswrd = 'x'", ["passwrd", "password"]),
    ("[queue]\nmax_concurrent = 0", ["queue.max_concurrent"]),
    ("[queue]\nmax_concurrent = 4", ["queue.max_concurrent", "1 to 3"]),
    ("[nonsense]\n", ["nonsense", "sections are"]),
    ("[api\n", ["not valid TOML"]),
    ("[audio]\njack_server = 'baresip'", ["audio.jack_server", "JACK client"]),
    ("[audio]\njack_server = 'bridge'", ["audio.jack_server"]),
])
def test_config_errors_name_the_key(tmp_path, toml, words):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    for word in words:
        assert word in str(error.value)
    assert str(path) in str(error.value)


def test_systemd_directories_override_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    settings = config.parse({})
    assert settings.paths.state_dir == tmp_path / "state"
    assert settings.calls_db == tmp_path / "state" / "calls.json"
    assert settings.baresip_dir == tmp_path / "run" / "baresip"


def test_dial_host_comes_from_registrar_unless_set():
    settings = config.parse({"sip": {"registrar": {"domain": "pbx.lan"}}})
    assert settings.sip.dial_host == "pbx.lan"
    settings = config.parse({"sip": {"dial_domain": "10.0.0.2:5062",
                                     "registrar": {"domain": "pbx.lan"}}})
    assert settings.sip.dial_host == "10.0.0.2:5062"


@pytest.mark.parametrize(("toml", "secret", "key"), [
    ("[api]\ntoken = 90817263544536271809", "90817263544536271809", "api.token"),
    ("[api]\ntoken = 'hunter2 hunter2!!'", "hunter2", "api.token"),
    ("[sip.registrar]\ndomain = 'pbx'\npassword = 31415926535", "31415926535",
     "sip.registrar.password"),
    ("[sip.registrar]\ndomain = 'pbx'\npassword = 'pass word;x'", "pass word",
     "sip.registrar.password"),
    ("[llm]\napi_key = ['sk-live-7f3a9c']", "sk-live-7f3a9c", "llm.api_key"),
    ("[llm]\napi_key = 271828182845", "271828182845", "llm.api_key"),
])
def test_config_errors_never_show_a_secret(tmp_path, toml, secret, key):
    """Config errors land in the journal: they name the key, never the secret's value."""
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    assert key in str(error.value)
    assert secret not in str(error.value), str(error.value)


def test_config_errors_still_show_ordinary_values(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[api]\nport = 'eighty'")
    with pytest.raises(config.ConfigError, match="eighty"):
        config.load(path)
