"""baresip's config and accounts files, generated from settings into the runtime directory."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..config import JACK_BARESIP_CLIENT, AudioSettings, SipSettings

MODULE_PATH = "/usr/lib/baresip/modules"
CTRL_HOST = "127.0.0.1"  # ctrl_tcp has no authentication: loopback only


def main_user(sip: SipSettings) -> str:
    """The user part of the box's own account (its line when no agent has others)."""
    return (sip.registrar.username or sip.user) if sip.registrar else sip.user


def line_aor(sip: SipSettings, user: str) -> str:
    """The address of record of the account for `user`: on the registrar's domain, or here."""
    if sip.registrar:
        return f"sip:{user}@{sip.registrar.domain}"
    host = sip.interface or (sip.listen_host if sip.listen_host != "0.0.0.0" else "localhost")
    return f"sip:{user}@{host}:{sip.listen_port}"


def account_line(sip: SipSettings, user: str | None = None) -> str:
    """A UA line: direct SIP (no registration) or registered with digest credentials.

    baresip 1.0 answers 404 to an INVITE whose user no account has, so each agent's line is
    an account of its own (`user`), registered with the box's credentials when there is a
    registrar; CALL_INCOMING's `accountaor` then names the line called (measured).
    """
    reg = sip.registrar
    if reg:
        aor = line_aor(sip, user or main_user(sip))
        params = [f"regint={reg.register_interval}"]
        if reg.username:
            params.append(f"auth_user={reg.username}")
        if reg.password:
            params.append(f"auth_pass={reg.password}")
    else:
        aor = line_aor(sip, user or sip.user)
        params = ["regint=0"]
    params.append("answermode=manual")
    display = f'"{sip.display_name}" ' if sip.display_name else ""
    return f"{display}<{aor}>;" + ";".join(params)


def config_text(sip: SipSettings, audio: AudioSettings, max_calls: int = 4) -> str:
    lines = [
        f"sip_listen {sip.listen}",
        f"rtp_ports {sip.rtp_ports}",
        "audio_source jack,default",
        "audio_player jack,default",
        # baresip's jack module only takes float samples; it resamples G.711/G.722 itself.
        "ausrc_format float",
        "auplay_format float",
        f"ausrc_srate {audio.sample_rate}",
        f"auplay_srate {audio.sample_rate}",
        "ausrc_channels 1",
        "auplay_channels 1",
        # The daemon's bridge connects the per-call ports itself.
        "jack_connect_ports no",
        f"jack_client_name {JACK_BARESIP_CLIENT}",
        # Frames held before the caller's audio plays out: every turn waits for them. 5
        # (100 ms) was the far end's share of a turn's 200-290 ms "audio"; 2 (40 ms) is
        # plenty on a LAN (bench call: 266-286 -> 150-189 ms; bench asr --live lost no more).
        "jitter_buffer_delay 2-10",
        "audio_buffer 20-160",
        f"module_path {MODULE_PATH}",
        # baresip resamples a call whose codec rate differs from JACK's, and Debian's
        # baresip 1.0 (libre/rem) does 8 <-> 16 kHz with a filter made for 48 kHz: at 16 kHz
        # it cuts at ~1.3 kHz, and a G.711 caller's 1-4 kHz band arrives 10-45 dB down
        # (bench asr --live). So the codec that needs no resampling comes first (the order
        # of our offer), and at 8 kHz G.722 is not offered at all.
        *(["module g722.so", "module g711.so"] if audio.sample_rate >= 16000
          else ["module g711.so"]),
        "module jack.so",
        "module ctrl_tcp.so",
        "module_tmp account.so",
        "module_app menu.so",
        # No running "[0:00:01] audio=..." status line on stdout: it would flood the journal.
        "statmode_default off",
        f"ctrl_tcp_listen {CTRL_HOST}:{sip.ctrl_port}",
        # More calls than this at once get "486 Max Calls" from baresip itself, at once.
        f"call_max_calls {max_calls}",
    ]
    if sip.interface:
        lines.append(f"net_interface {sip.interface}")
    if sip.dns_server:
        lines.append(f"dns_server {sip.dns_server}")
    return "\n".join(lines) + "\n"


def write_config(directory: Path, sip: SipSettings, audio: AudioSettings,
                 max_calls: int = 4, lines: Iterable[str] = ()) -> None:
    """Write config and accounts (the box's, then one per agent line)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config").write_text(config_text(sip, audio, max_calls))
    write_accounts(directory, sip, lines)


def write_accounts(directory: Path, sip: SipSettings, lines: Iterable[str] = ()) -> None:
    """Accounts may hold a password, so only the owner reads the file."""
    accounts = directory / "accounts"
    fd = os.open(accounts, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(account_line(sip) + "\n")
        for line in sorted(lines):
            handle.write(account_line(sip, line) + "\n")


def argv(directory: Path, sip_trace: bool = False) -> list[str]:
    """`sip_trace` (-s) prints every SIP message: the only way baresip 1.0 tells where an
    INVITE came from (see sip_trace.py)."""
    return ["baresip", *(["-s"] if sip_trace else []), "-f", str(directory)]
