"""Build hook: the models travel inside the wheel (docs/OPERATIONS.md, "Where the models live").

The repository keeps them in the top-level models/ folder (with MODELS.md, their provenance). A
regular (non-editable) build copies that folder to ``daemon/models/`` inside the built package, where
``daemon.ops.packaged.packaged_models_dir`` finds them through importlib.resources. An editable
install (scripts/run, scripts/test) copies nothing: the code then finds the checkout's models/.
Everything else is declared in setup.cfg.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
MODEL_FILES = ("*.tflite", "*.onnx", "LICENSE.*", "MODELS.md")


class BuildPyWithModels(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "daemon" / "models"
        target.mkdir(parents=True, exist_ok=True)
        for pattern in MODEL_FILES:
            for source in sorted((ROOT / "models").glob(pattern)):
                shutil.copy2(source, target / source.name)


setup(cmdclass={"build_py": BuildPyWithModels})
