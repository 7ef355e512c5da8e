"""Loading TFLite models on the CPU.

ai-edge-litert is the maintained successor of tflite-runtime; either is accepted. An Interpreter is not
thread-safe: every worker thread builds its own (see daemon/vision/engine.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.errors import ModelError


def interpreter_class() -> type:
    """The Interpreter class of whichever TFLite runtime is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError(
                "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)"
            ) from None
    return Interpreter


def runtime_name() -> str:
    cls = interpreter_class()
    return cls.__module__.split(".")[0]


def load_interpreter(path: Path, num_threads: int = 1) -> Any:
    """An allocated Interpreter for the model at path, using num_threads CPU threads."""
    cls = interpreter_class()
    try:
        interpreter = cls(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load model {path}: {exc}") from exc
    return interpreter
