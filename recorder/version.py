"""The version of recorder."""

__version__ = "0.1.0"
