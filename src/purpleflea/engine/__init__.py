"""Pure engines over the event stream: cascade scoring and alerts (and the heatmap model).

``CascadeEngine``/``CascadeConfig`` here are the compiled engine when ``scripts/build_native.py``
has built it from the current ``cascade.py`` (same code, about twice as fast), else the pure
Python one in :mod:`purpleflea.engine.cascade`. ``PURPLEFLEA_PURE_ENGINE=1`` forces the pure one;
``NATIVE`` says which is in use. Import them from here, not from the module, to get the fast one.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from purpleflea.engine import cascade as _pure


def _native() -> ModuleType | None:
    """The compiled engine if it exists and was built from this very ``cascade.py``."""
    if os.environ.get("PURPLEFLEA_PURE_ENGINE", "") not in ("", "0"):
        return None
    try:
        module = importlib.import_module("purpleflea.engine._cascade_native")
    except ImportError:
        return None
    digest = hashlib.sha256(Path(_pure.__file__).read_bytes()).hexdigest()
    # A build from an older cascade.py would silently run old code: the pure engine instead.
    return module if getattr(module, "NATIVE_SOURCE_SHA256", None) == digest else None


_module = _native()
NATIVE = _module is not None
if TYPE_CHECKING:  # the compiled classes have the pure ones' exact interface
    from purpleflea.engine.cascade import CascadeConfig, CascadeEngine
else:
    CascadeConfig = (_module or _pure).CascadeConfig
    CascadeEngine = (_module or _pure).CascadeEngine

__all__ = ["NATIVE", "CascadeConfig", "CascadeEngine"]
