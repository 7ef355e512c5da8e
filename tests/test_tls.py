"""HTTPS end to end: `facegate cert` makes a pair, the daemon's listener serves it on 127.0.0.1, and a
real TLS client that trusts only that certificate verifies it (host name included)."""

from __future__ import annotations

import logging
import os
import ssl

import aiohttp
import pytest
from aiohttp import web
from conftest import AUTH

from daemon.app import build_app
from daemon.appkeys import STATUS
from daemon.cli import main
from daemon.config import with_overrides
from daemon.errors import ConfigError
from daemon.ops.tls import listener_tls


@pytest.fixture
def pair(tmp_path, capsys):
    cert, key = tmp_path / "tls" / "device.crt", tmp_path / "tls" / "device.key"
    code = main(
        ["cert", "--state-dir", str(tmp_path), "--cert", str(cert), "--key", str(key), "--name", "door.lan"]
    )
    assert code == 0
    assert "door.lan" in capsys.readouterr().out
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    return cert, key


async def test_https_end_to_end_with_the_self_signed_pair(config, model_paths, tokens, pair):
    cert, key = pair
    cfg = with_overrides(config, tls={"cert_file": str(cert), "key_file": str(key)}, server={"port": 0})
    context = listener_tls(cfg)
    assert context is not None
    app = build_app(cfg, model_paths, tokens)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = runner.addresses[0][1]
        await app[STATUS].wait_loaded()
        trusting = ssl.create_default_context(cafile=str(cert))  # verifies chain and host name
        async with aiohttp.ClientSession() as session:
            for host in ("localhost", "127.0.0.1"):
                async with session.get(f"https://{host}:{port}/health", ssl=trusting, headers=AUTH) as r:
                    assert r.status == 200 and (await r.json())["status"] == "ok"
                    assert r.url.scheme == "https"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):  # default trust store: unknown CA
                await session.get(f"https://localhost:{port}/health")
            with pytest.raises(aiohttp.ClientError):  # plain HTTP on the TLS port gets no answer
                await session.get(f"http://127.0.0.1:{port}/health")
    finally:
        await runner.cleanup()


def test_key_readable_by_others_is_refused(config, pair):
    cert, key = pair
    os.chmod(key, 0o644)
    cfg = with_overrides(config, tls={"cert_file": str(cert), "key_file": str(key)})
    with pytest.raises(ConfigError, match="others may read it"):
        listener_tls(cfg)


def test_plain_http_on_non_loopback_warns_or_is_refused(config, caplog):
    caplog.set_level(logging.WARNING)
    assert listener_tls(with_overrides(config, server={"host": "0.0.0.0"})) is None
    assert "INSECURE" in caplog.text and "plain HTTP on 0.0.0.0" in caplog.text
    caplog.clear()
    assert (
        listener_tls(with_overrides(config, server={"host": "127.0.0.1"}, tls={"plain_http": "refuse"}))
        is None
    )
    assert "INSECURE" not in caplog.text  # loopback is fine
    with pytest.raises(ConfigError, match=r"refusing to start: plain HTTP on 0\.0\.0\.0"):
        listener_tls(with_overrides(config, server={"host": "0.0.0.0"}, tls={"plain_http": "refuse"}))


def test_facegate_run_refuses_plain_http_when_configured(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACEGATE_TLS_PLAIN_HTTP", "refuse")
    monkeypatch.setenv("FACEGATE_LOGGING_JOURNALD", "never")
    monkeypatch.setattr("daemon.ops.logs.setup_logging", lambda *a: None)  # keep pytest's log handlers
    code = main(["run", "--host", "0.0.0.0", "--port", "0", "--state-dir", str(tmp_path / "state")])
    assert code == 2
    assert "plain HTTP on 0.0.0.0" in capsys.readouterr().err


def test_half_a_pair_is_a_config_error(config):
    with pytest.raises(ConfigError, match="both cert_file and key_file"):
        with_overrides(config, tls={"cert_file": "/x.crt"})
