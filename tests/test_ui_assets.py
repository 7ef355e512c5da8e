"""The admin page's files parse (node --check), without a browser; skipped where Node.js is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "daemon" / "web"
NODE = shutil.which("node")


@pytest.mark.skipif(
    NODE is None, reason="Node.js is not installed: the syntax check of the page's modules is skipped"
)
@pytest.mark.parametrize("module", sorted(WEB.rglob("*.js")), ids=lambda p: p.name)
def test_every_module_parses(module: Path) -> None:
    result = subprocess.run(
        [NODE, "--check", "--input-type=module"], input=module.read_bytes(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stderr.decode()


def test_no_inline_script_or_style_or_handler() -> None:
    # The Content-Security-Policy allows neither; one would silently not run.
    for page in WEB.glob("*.html"):
        text = page.read_text()
        assert "<style" not in text and " style=" not in text, page
        assert "onclick=" not in text and "onload=" not in text, page
        for tag in text.split("<script")[1:]:
            assert 'src="' in tag.split(">")[0], page
