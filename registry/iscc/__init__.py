"""ISCC generation: ISCC-CODEs of files, identical to iscc-sdk 0.9.7, on iscc-lib's algorithms."""

from registry.iscc.generate import IsccResult, detect, generate, text_of
from registry.iscc.mediatype import MediaKind

__all__ = ["IsccResult", "MediaKind", "detect", "generate", "text_of"]
