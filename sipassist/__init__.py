"""sipassist: a local voice assistant that is a SIP extension."""

__version__ = "0.1.0"
