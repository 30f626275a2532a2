"""`ci-admin` through the real installed command, each test on its own database file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CI_ADMIN = str(Path(sys.executable).parent / "ci-admin")


def ci_admin(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CI_ADMIN, "--db-path", str(db), *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ci.db"


def test_user_create_list_get(db: Path) -> None:
    created = ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created user 1: Ada <ada@example.org>"

    listed = json.loads(ci_admin(db, "user", "list", "--json").stdout)
    assert [(u["id"], u["email"], u["active"]) for u in listed] == [(1, "ada@example.org", True)]
    assert "ada@example.org" in ci_admin(db, "user", "list").stdout

    by_id = json.loads(ci_admin(db, "user", "get", "1", "--json").stdout)
    by_email = json.loads(
        ci_admin(db, "user", "get", "--email", "ada@example.org", "--json").stdout
    )
    assert by_id == by_email
    assert by_id["name"] == "Ada"


def test_deactivate_and_activate(db: Path) -> None:
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    result = ci_admin(db, "user", "deactivate", "1")
    assert result.returncode == 0
    assert "inactive" in result.stdout
    assert json.loads(ci_admin(db, "user", "get", "1", "--json").stdout)["active"] is False
    assert ci_admin(db, "user", "activate", "1").returncode == 0
    assert json.loads(ci_admin(db, "user", "get", "1", "--json").stdout)["active"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "create", "--name", "Bob", "--email", "not-an-email"], "malformed email"),
        (["user", "create", "--name", "Ada2", "--email", "ADA@example.org"], "exists already"),
        (["user", "get", "99"], "user 99 not found"),
        (["user", "get", "--email", "nobody@example.org"], "not found"),
        (["user", "deactivate", "99"], "not found"),
        (["key", "create", "--email", "nobody@example.org", "--name", "x"], "not found"),
        (["key", "create", "--user-id", "99", "--name", "x"], "user 99 not found"),
        (["key", "revoke", "99"], "API key 99 not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(db: Path, args: list[str], message: str) -> None:
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    result = ci_admin(db, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_key_create_shows_the_key_once_and_stores_only_its_hash(db: Path) -> None:
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    created = ci_admin(db, "key", "create", "--email", "ada@example.org", "--name", "laptop")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("ci_")
    assert len(secret) == len("ci_") + 43
    assert "cannot be shown again" in created.stderr

    listing = ci_admin(db, "key", "list", "--json")
    keys = json.loads(listing.stdout)
    assert [(k["id"], k["name"], k["state"]) for k in keys] == [(1, "laptop", "active")]
    assert secret not in listing.stdout
    assert secret not in ci_admin(db, "key", "list").stdout
    assert secret[:10] == keys[0]["prefix"]

    raw = db.read_bytes() + (
        db.with_name("ci.db-wal").read_bytes() if db.with_name("ci.db-wal").exists() else b""
    )
    assert secret.encode() not in raw
    with sqlite3.connect(db) as conn:
        stored = [row[0] for row in conn.execute("SELECT key_hash FROM api_keys")]
    assert len(stored) == 1
    assert len(stored[0]) == 64


def test_key_by_user_id_with_expiry_and_filtered_list(db: Path) -> None:
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    ci_admin(db, "user", "create", "--name", "Bob", "--email", "bob@example.org")
    assert (
        ci_admin(
            db, "key", "create", "--user-id", "2", "--name", "ci", "--expires-in", "7"
        ).returncode
        == 0
    )
    assert ci_admin(db, "key", "create", "--user-id", "1", "--name", "laptop").returncode == 0

    bobs = json.loads(ci_admin(db, "key", "list", "--email", "bob@example.org", "--json").stdout)
    assert [(k["name"], k["user_id"]) for k in bobs] == [("ci", 2)]
    assert bobs[0]["expires_at"] is not None
    adas = json.loads(ci_admin(db, "key", "list", "--user-id", "1", "--json").stdout)
    assert [k["name"] for k in adas] == ["laptop"]


def test_revoke_once_then_a_clear_error(db: Path) -> None:
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    ci_admin(db, "key", "create", "--email", "ada@example.org", "--name", "laptop")
    first = ci_admin(db, "key", "revoke", "1")
    assert first.returncode == 0
    assert "Revoked key 1" in first.stdout
    assert json.loads(ci_admin(db, "key", "list", "--json").stdout)[0]["state"] == "revoked"

    second = ci_admin(db, "key", "revoke", "1")
    assert second.returncode == 1
    assert "revoked already" in second.stderr


def test_user_and_email_together_is_a_usage_error(db: Path) -> None:
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@example.org")
    result = ci_admin(
        db, "key", "create", "--user-id", "1", "--email", "ada@example.org", "--name", "x"
    )
    assert result.returncode == 2
    assert "exactly one" in result.stderr


def test_db_path_from_environment(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = subprocess.run(
        [CI_ADMIN, "user", "create", "--name", "Ada", "--email", "ada@example.org"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), "CI_DB_PATH": str(db)},
    )
    assert result.returncode == 0, result.stderr
    assert db.exists()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_admins_are_made_with_create_admin_and_set_admin(db: Path) -> None:
    created = ci_admin(db, "user", "create", "--name", "Root", "--email", "root@x.org", "--admin")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created user 1: Root <root@x.org> (admin)"
    ci_admin(db, "user", "create", "--name", "Ada", "--email", "ada@x.org")
    listed = json.loads(ci_admin(db, "user", "list", "--json").stdout)
    assert [(u["email"], u["is_admin"]) for u in listed] == [
        ("root@x.org", True),
        ("ada@x.org", False),
    ]

    made = ci_admin(db, "user", "set-admin", "2")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "User 2 (ada@x.org) is now an admin"
    assert json.loads(ci_admin(db, "user", "get", "2", "--json").stdout)["is_admin"] is True
    taken = ci_admin(db, "user", "set-admin", "2", "--revoke")
    assert "no longer an admin" in taken.stdout
    assert json.loads(ci_admin(db, "user", "get", "2", "--json").stdout)["is_admin"] is False
    missing = ci_admin(db, "user", "set-admin", "99")
    assert missing.returncode != 0 and "user 99 not found" in missing.stderr
