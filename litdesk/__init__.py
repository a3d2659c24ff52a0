"""litdesk: a native, offline desktop app to understand and compare ML models."""

__version__ = "0.1.0"
