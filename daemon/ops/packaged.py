"""Where an installed Facegate finds files that ship with it (the models).

A wheel carries the models as package data in ``daemon/models/`` (copied there by setup.py at build
time); a source checkout or an editable install has them in the repository's top-level ``models/``.
The installed copy wins when it exists, so ``pip install .`` into any virtualenv works from any
working directory. ``models.dir`` in the config (or FACEGATE_MODELS_DIR) overrides both.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"


def packaged_models_dir() -> Path:
    """The models shipped with this installation of the package."""
    installed = Path(str(resources.files("daemon"))) / "models"
    if installed.is_dir():
        return installed
    return CHECKOUT_MODELS_DIR
