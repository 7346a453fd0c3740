"""killswitch: the kill switch for AI-agent credentials."""

__version__ = "0.1.0"
