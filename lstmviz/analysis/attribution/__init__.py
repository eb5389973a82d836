"""Attribution through time and "why this prediction": which earlier characters, and which
units, made a value what it is (``attribute.py`` is the entry point)."""

from .attribute import DEFAULT_STEPS, DEFAULT_WINDOW, attribute
from .result import Attribution

__all__ = ["DEFAULT_STEPS", "DEFAULT_WINDOW", "Attribution", "attribute"]
