"""Requests the schemathesis run (tests/test_schemathesis.py) found answered 500, each answered now in
its family's error format. Kept as plain tests: they fail without the fix, whatever the fuzzer draws."""

from __future__ import annotations

import pytest
from conftest import AUTH

BOUNDARY = "fuzzboundary"


def form_with_raw_utf8_part_name() -> bytes:
    """A multipart body whose part header carries raw UTF-8 and a control character in the field name:
    aiohttp's part-header parser refuses it with InvalidHeader (not a ValueError)."""
    return (
        f"--{BOUNDARY}\r\n".encode()
        + 'Content-Disposition: form-data; name="\u00c2\x1d\u00cb"\r\n\r\nnull\r\n'.encode()
        + f"--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\nxx\r\n'
        + f"--{BOUNDARY}--\r\n".encode()
    )


@pytest.mark.parametrize(
    ("path", "error_key"),
    [
        ("/api/extract_feature", "message"),
        ("/api/compare_image_feature", "message"),
        ("/api/v1/blur-faces", "error"),
        ("/process", "error"),
        ("/detect", "error"),
        ("/api/v1/tasks/blur-video", "error"),
    ],
)
async def test_invalid_part_headers_are_a_400_not_a_500(
    make_client, config, path: str, error_key: str
) -> None:
    client = await make_client(config)
    response = await client.post(
        path,
        data=form_with_raw_utf8_part_name(),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    body = await response.json()
    assert response.status == 400, body
    assert "malformed multipart body" in body[error_key], body
