"""ISCC declaration registry: generate, sign, declare, index and resolve ISCC codes."""

__version__ = "0.1.0"
