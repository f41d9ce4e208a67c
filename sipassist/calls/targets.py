"""Turning a client's `extension` into the one SIP URI baresip may dial.

Nothing a client sends reaches baresip except a URI built here from strictly checked parts, so
newlines, spaces, `;` parameters or headers can never smuggle in a second command or option.
"""

from __future__ import annotations

import re

MAX_EXTENSION_LENGTH = 128

PHONE_NUMBER = re.compile(r"\+?[0-9*]{1,32}")
SIP_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
# The scheme is case-insensitive (RFC 3261 19.1.1); spelled out, as re.I would let in non-ASCII.
SIP_URI = re.compile(rf"[sS][iI][pP]:(?P<user>[A-Za-z0-9._+*-]{{1,64}})@(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?")


class TargetError(ValueError):
    """The extension cannot be dialed; the message is an API `detail`."""


def dial_uri(extension: str, dial_host: str) -> str:
    """The SIP URI for `extension`: a phone number, a SIP user, or a `sip:user@host[:port]` URI."""
    if len(extension) > MAX_EXTENSION_LENGTH:
        raise TargetError(f"extension is longer than {MAX_EXTENSION_LENGTH} characters")
    if extension.lower().startswith("sip:"):
        match = SIP_URI.fullmatch(extension)
        if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
            raise TargetError(
                "extension: a SIP URI must look like sip:user@host or sip:user@host:port, "
                "with no spaces, parameters or headers"
            )
        return "sip:" + extension[4:]
    if not (PHONE_NUMBER.fullmatch(extension) or SIP_USER.fullmatch(extension)):
        raise TargetError(
            "extension must be a phone number (digits, optional leading +), a SIP user "
            "(letters, digits, '.', '_', '-') or a sip:user@host URI"
        )
    if not dial_host:
        raise TargetError(
            f"extension {extension!r} needs a domain to dial: send a full sip:user@host URI, "
            "or set sip.dial_domain or [sip.registrar] in the daemon's config"
        )
    return f"sip:{extension}@{dial_host}"
