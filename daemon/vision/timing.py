"""Timing a model's runs for metrics, without the vision code knowing about metrics.

``timed(model, "detect", "blazeface_short", observe)`` returns the model with ``detect`` timed: after
each call, ``observe("blazeface_short", seconds)`` is called from the thread that ran it (the worker's).
Every other attribute is the model's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

InferenceObserver = Callable[[str, float], None]
"""Told (model name, seconds) after every timed run; called from the thread that ran it."""


class Timed:
    def __init__(self, model: Any, method: str, label: str, observe: InferenceObserver) -> None:
        self._model = model
        self._run = getattr(model, method)
        self._method = method
        self._label = label
        self._observe = observe

    def __getattr__(self, attr: str) -> Any:
        if attr == self._method:
            return self._timed
        return getattr(self._model, attr)

    def _timed(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._run(*args, **kwargs)
        finally:
            self._observe(self._label, time.perf_counter() - started)


def timed(model: T, method: str, label: str, observe: InferenceObserver | None) -> T:
    """model with method timed under label; model itself when observe is None (typed as the model:
    every attribute but the timed method is the model's own)."""
    return model if observe is None else cast(T, Timed(model, method, label, observe))
