"""numpy, imported on first use: reading findings or scans needs no array code.

``np`` stands for the numpy module. Its first attribute access imports numpy
(~0.1 s); each attribute is then kept on the proxy itself, so later accesses
are plain attribute lookups. Type checkers see numpy (``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class LazyModule:
    """A stand-in for the module ``name`` that imports it when an attribute is read."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attr: str) -> Any:
        # Only called for attributes not yet kept here.
        if attr.startswith("__"):
            raise AttributeError(attr)
        module: ModuleType = importlib.import_module(self._lazy_name)
        value = getattr(module, attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name!r}>"


if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")

__all__ = ["LazyModule", "np"]
