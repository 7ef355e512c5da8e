"""Loading TFLite models on the CPU.

ai-edge-litert is the maintained successor of tflite-runtime; either is accepted. An Interpreter is not
thread-safe: every worker thread builds its own (see daemon/vision/engine.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from daemon.errors import ModelError


class Interpreter(Protocol):
    """What facegate uses of a TFLite Interpreter (neither runtime ships type information)."""

    def allocate_tensors(self) -> None: ...
    def get_input_details(self) -> list[dict[str, Any]]: ...
    def get_output_details(self) -> list[dict[str, Any]]: ...
    def set_tensor(self, tensor_index: int, value: np.ndarray) -> None: ...
    def invoke(self) -> None: ...
    def get_tensor(self, tensor_index: int) -> np.ndarray: ...


def interpreter_class() -> Callable[..., Interpreter]:
    """The Interpreter class of whichever TFLite runtime is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter as found
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter as found
        except ImportError:
            raise ModelError(
                "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)"
            ) from None
    cls: Callable[..., Interpreter] = found
    return cls


def runtime_name() -> str:
    cls = interpreter_class()
    return cls.__module__.split(".")[0]


def load_interpreter(path: Path, num_threads: int = 1) -> Interpreter:
    """An allocated Interpreter for the model at path, using num_threads CPU threads."""
    cls = interpreter_class()
    try:
        interpreter = cls(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load model {path}: {exc}") from exc
    return interpreter
