"""Shared fixtures: real models, real images, a real aiohttp server on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

# Asyncio debug mode: a blocking call in the event loop is reported (see DESIGN.md, Testing).
os.environ.setdefault("PYTHONASYNCIODEBUG", "1")

from daemon.config import PACKAGE_MODELS_DIR, Config, load_config, with_overrides

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
FACES = DATA / "faces"
NO_FACES = DATA / "no_faces"
FACE_IMAGES = sorted(p for p in FACES.iterdir() if p.suffix in {".jpg", ".png"})
NO_FACE_IMAGES = sorted(p for p in NO_FACES.iterdir() if p.suffix in {".jpg", ".png"})


def read_rgb(path: Path) -> np.ndarray:
    """A test image as RGB uint8 (alpha dropped), read with OpenCV directly."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="session")
def model_paths():
    from daemon.vision.engine import ModelPaths

    return ModelPaths.resolve(PACKAGE_MODELS_DIR, "int8")


@pytest.fixture(scope="session")
def engine(model_paths):
    """One VisionEngine for the whole session (tests using it run in one thread)."""
    from daemon.vision.engine import VisionEngine

    return VisionEngine(model_paths, num_threads=1)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Defaults with the state in a fresh temp dir."""
    base = load_config(None, environ={})
    # Suites send many expensive requests in a row; the tests of the limit set their own values.
    unlimited = {"expensive_per_minute": 1e9, "expensive_burst": 1_000_000}
    return with_overrides(base, server={"state_dir": str(tmp_path / "state")}, auth=unlimited)


TEST_TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


@pytest.fixture
def tokens():
    """One admin token, TEST_TOKEN, named "tester" (tests of scopes make their own registries)."""
    from daemon.services.tokens import ADMIN, TokenRegistry

    return TokenRegistry.of([("tester", TEST_TOKEN, [ADMIN])])


@pytest.fixture
async def make_client(aiohttp_client, model_paths, tokens):
    """Start a real app on 127.0.0.1 (models loaded) and return a test client for it.

    Requests need headers=AUTH (the token of the fixture `tokens`).
    """
    from daemon.app import build_app
    from daemon.appkeys import STATUS

    async def start(cfg: Config, tokens=tokens, **kwargs):
        app = build_app(cfg, model_paths, tokens, **kwargs)
        client = await aiohttp_client(app)
        await app[STATUS].wait_loaded()
        return client

    return start


def open_library(path: Path, **kwargs):
    """A FaceStore on ``path`` with the key ring next to it (``library.keys``, as in a state dir)."""
    from daemon.library.store import FaceStore, open_keys

    path = Path(path)
    return FaceStore(path, open_keys(path, path.parent / "library.keys"), **kwargs)
