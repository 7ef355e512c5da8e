"""The hashed token store, `facegate token`, the plain-file migration and the start-up refusals."""

from __future__ import annotations

import json
import os
import stat

import pytest

from daemon.cli import main
from daemon.errors import ConfigError
from daemon.services.tokens import (
    ADMIN,
    LIBRARY,
    READ,
    TokenError,
    TokenStore,
    load_for_serving,
    weakness,
)

MIGRATED = ["library", "recognize", "privacy", "stream", "read"]


def test_cli_add_list_revoke_keeps_only_hashes(tmp_path, capsys):
    state = tmp_path / "state"
    assert main(["token", "--state-dir", str(state), "add", "door1", "--scope", "recognize,read"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("fgt_") and len(token) > 40
    store_file = state / "tokens.json"
    assert stat.S_IMODE(store_file.stat().st_mode) == 0o600
    assert token not in store_file.read_text()
    entry = TokenStore(store_file).load().lookup(token)
    assert entry is not None and entry.name == "door1" and entry.scopes == {"recognize", "read"}

    assert main(["token", "--state-dir", str(state), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["scopes"]) for r in rows] == [("door1", ["read", "recognize"])]
    assert token not in json.dumps(rows)

    assert main(["token", "--state-dir", str(state), "add", "door1", "--scope", "read"]) == 2  # duplicate
    assert "exists" in capsys.readouterr().err
    assert main(["token", "--state-dir", str(state), "add", "x", "--scope", "root"]) == 2
    assert "unknown scope" in capsys.readouterr().err

    assert main(["token", "--state-dir", str(state), "revoke", "door1"]) == 0
    assert TokenStore(store_file).load().lookup(token) is None
    assert main(["token", "--state-dir", str(state), "revoke", "door1"]) == 2


def test_plain_file_is_migrated_hashed_and_removed(tmp_path):
    plain, store = tmp_path / "tokens", tmp_path / "tokens.json"
    plain.write_text("# old\nalice:Qm9vb2stcmFuZG9tLXRva2VuLTEyMw\nXy7_Pq2-Lm9Nb4Vc8Zd1\n")
    os.chmod(plain, 0o600)
    registry = load_for_serving(store, plain, MIGRATED, "0.0.0.0")
    assert not plain.exists()
    alice = registry.lookup("Qm9vb2stcmFuZG9tLXRva2VuLTEyMw")
    assert alice is not None and alice.name == "alice" and alice.scopes == set(MIGRATED)
    assert ADMIN not in alice.granted
    assert registry.lookup("Xy7_Pq2-Lm9Nb4Vc8Zd1").name == "token2"
    assert "Qm9vb2st" not in store.read_text()
    # a second start (the plain file is gone, or could not be removed): the same tokens, no duplicates
    plain.write_text("alice:Qm9vb2stcmFuZG9tLXRva2VuLTEyMw\n")
    os.chmod(plain, 0o600)
    assert len(load_for_serving(store, plain, MIGRATED, "0.0.0.0")) == 2


def test_token_file_readable_by_others_is_refused(tmp_path):
    plain, store = tmp_path / "tokens", tmp_path / "tokens.json"
    plain.write_text("alice:Qm9vb2stcmFuZG9tLXRva2VuLTEyMw\n")
    os.chmod(plain, 0o644)
    with pytest.raises(ConfigError, match="mode 0644: others may read it"):
        load_for_serving(store, plain, MIGRATED, "127.0.0.1")
    assert plain.exists() and not store.exists()
    TokenStore(store).add("bob", [READ])
    os.chmod(store, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_for_serving(store, tmp_path / "none", MIGRATED, "127.0.0.1")


@pytest.mark.parametrize(
    "token",
    [
        "change-me-to-a-long-random-token",
        "CHANGEME-please-0123456789",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "your-token-here-123456",
    ],
)
def test_example_and_weak_tokens_refused_on_non_loopback_only(tmp_path, token, caplog):
    assert weakness(token) is not None
    for host, refused in [("0.0.0.0", True), ("192.168.1.20", True), ("127.0.0.1", False)]:
        plain, store = tmp_path / host / "tokens", tmp_path / host / "tokens.json"
        plain.parent.mkdir()
        plain.write_text(f"door:{token}\n")
        os.chmod(plain, 0o600)
        if refused:
            with pytest.raises(ConfigError, match="token 'door' is weak"):
                load_for_serving(store, plain, MIGRATED, host)
        else:
            assert load_for_serving(store, plain, MIGRATED, host).lookup(token) is not None
            assert "weak" in caplog.text


def test_short_tokens_are_refused_everywhere_and_random_ones_pass(tmp_path):
    plain = tmp_path / "tokens"
    plain.write_text("short\n")
    os.chmod(plain, 0o600)
    with pytest.raises(ConfigError, match="too short"):
        load_for_serving(tmp_path / "tokens.json", plain, MIGRATED, "127.0.0.1")
    assert weakness("fgt_3mQ9xLr0p_Zk2VbN8aYc1TfE") is None
    with pytest.raises(TokenError, match="weak"):
        TokenStore(tmp_path / "s.json").add("x", [READ], token="change-me-to-a-long-random-token")


def test_first_start_on_loopback_makes_an_admin_token(tmp_path):
    store = tmp_path / "state" / "tokens.json"
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0 without a token store"):
        load_for_serving(store, tmp_path / "state" / "tokens", MIGRATED, "0.0.0.0")
    registry = load_for_serving(store, tmp_path / "state" / "tokens", MIGRATED, "127.0.0.1")
    token = (tmp_path / "state" / "admin-token").read_text().strip()
    assert stat.S_IMODE((tmp_path / "state" / "admin-token").stat().st_mode) == 0o600
    admin = registry.lookup(token)
    assert admin is not None and admin.name == "admin" and admin.scopes == {ADMIN}
    again = load_for_serving(store, tmp_path / "state" / "tokens", MIGRATED, "0.0.0.0")  # now it exists
    assert again.lookup(token) is not None and len(again) == 1


def test_scopes_imply(tmp_path):
    store = TokenStore(tmp_path / "t.json")
    token = store.add("lib", [LIBRARY])
    entry = store.load().lookup(token)
    assert entry.granted == {LIBRARY, READ}


def test_migrated_names_stay_unique_and_valid(tmp_path):
    store = TokenStore(tmp_path / "tokens.json")
    store.add("admin", [ADMIN])
    plain = tmp_path / "tokens"
    plain.write_text("admin:Zr8-Yq7_Xp6-Wo5_Vn4\nmy door:Ab1-Cd2_Ef3-Gh4_Ij5\n")
    os.chmod(plain, 0o600)
    registry = load_for_serving(store.path, plain, MIGRATED, "127.0.0.1")
    names = sorted(e.name for e in registry.entries)
    assert len(names) == 3 and len(set(names)) == 3
    assert registry.lookup("Zr8-Yq7_Xp6-Wo5_Vn4").name.startswith("admin-")
    assert registry.lookup("Zr8-Yq7_Xp6-Wo5_Vn4").scopes == set(MIGRATED)  # never admin by its name
    assert registry.lookup("Ab1-Cd2_Ef3-Gh4_Ij5").name == "my_door"
