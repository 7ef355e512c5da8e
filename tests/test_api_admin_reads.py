"""Admin reads for the web page and support: the effective config (secrets masked), the token list,
the doctor's checks — admin only."""

from __future__ import annotations

from conftest import AUTH, TEST_TOKEN

from daemon.api.config_api import MASK, masked
from daemon.services.tokens import ADMIN, TokenRegistry, TokenStore

READER = "reader-token-0123456789abcdef"
READ_AUTH = {"Authorization": f"Bearer {READER}"}


def test_masking_hides_secret_strings_only():
    data = {
        "mqtt": {"password": "hunter2", "password_file": "/etc/p", "port": 1883},
        "auth": {"privacy_without_token": True, "token_store": ""},
        "webhooks": [{"secret": "s"}],
    }
    assert masked(data) == {
        "mqtt": {"password": MASK, "password_file": "/etc/p", "port": 1883},
        "auth": {"privacy_without_token": True, "token_store": ""},
        "webhooks": [{"secret": MASK}],
    }


async def test_config_tokens_and_doctor_for_admin_only(make_client, config):
    TokenStore(config.token_store_path).add("admin", [ADMIN], token=TEST_TOKEN)
    registry = TokenRegistry.of([("tester", TEST_TOKEN, [ADMIN]), ("viewer", READER, ["read"])])
    client = await make_client(config, tokens=registry)
    body = await (await client.get("/api/config", headers=AUTH)).json()
    assert body["server"]["state_dir"] == str(config.state_path) and "library" in body
    tokens = await (await client.get("/api/admin/tokens", headers=AUTH)).json()
    assert [t["name"] for t in tokens["tokens"]] == ["admin"]
    assert set(tokens["tokens"][0]) == {"name", "scopes", "created", "weak"}  # never a hash or a token
    doctor = await (await client.get("/api/admin/doctor", headers=AUTH)).json()
    names = {c["name"] for c in doctor["checks"]}
    assert "config" in names and all(c["status"] in ("ok", "warn", "fail", "skip") for c in doctor["checks"])
    assert not any(c["name"] == "camera" and c["status"] == "fail" for c in doctor["checks"])
    for path in ("/api/config", "/api/admin/tokens", "/api/admin/doctor"):
        assert (await client.get(path, headers=READ_AUTH)).status == 403, path
