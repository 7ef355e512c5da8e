"""scripts/convert_liveness_model.py is byte-reproducible: converting the .pth files of tests/data
gives exactly the shipped models (the sha256 of daemon/vision/models.py), twice.

Needs TensorFlow (the `convert` extra), which the test venv does not have, so it is skipped there.
Run it in the converter's venv (models/MODELS.md):
    .venv-convert/bin/python -m pytest tests/test_liveness_convert.py -q
It imports nothing of the daemon but the sha256 table, so the convert venv needs only its own packages.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "tests" / "data" / "minifasnet"

pytest.importorskip("tensorflow", reason="the converter needs TensorFlow (setup.cfg extra `convert`)")


def _shipped_hashes() -> dict[str, str]:
    # Read from the table's source, so this test needs no daemon dependency in the convert venv.
    text = (REPO / "daemon" / "vision" / "models.py").read_text()
    pairs = re.findall(r'"(liveness_minifasnet_\w+\.tflite)",\s*"([0-9a-f]{64})"', text)
    assert len(pairs) == 2
    return dict(pairs)


def _converter():
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(
        "convert_liveness_model", REPO / "scripts" / "convert_liveness_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conversion_reproduces_the_shipped_models_byte_for_byte(tmp_path):
    converter = _converter()
    expected = _shipped_hashes()
    for run in ("first", "second"):
        out = tmp_path / run
        out.mkdir()
        assert converter.main([str(SOURCE), "--models-dir", str(out), "--samples", str(SOURCE)]) == 0
        for name, digest in expected.items():
            assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, (run, name)
