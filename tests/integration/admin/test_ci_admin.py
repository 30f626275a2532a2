"""`ci-admin` through the real installed command, each test on its own database file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
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


def create_user(db: Path, name: str = "Ada", email: str = "ada@example.org") -> str:
    """Creates a user the way a script would, taking the id from the success line."""
    created = ci_admin(db, "user", "create", "--name", name, "--email", email)
    assert created.returncode == 0, created.stderr
    line = created.stdout.strip()
    assert line.startswith("User created successfully: "), line
    user_id = line.split()[3]
    assert str(uuid.UUID(user_id)) == user_id
    assert line == f"User created successfully: {user_id} ({name} <{email}>)"
    return user_id


def test_user_create_list_get(db: Path) -> None:
    user_id = create_user(db)

    listed = json.loads(ci_admin(db, "user", "list", "--json").stdout)
    assert listed == [
        {
            "id": user_id,
            "name": "Ada",
            "email": "ada@example.org",
            "is_active": True,
            "is_admin": False,
            "created_at": listed[0]["created_at"],
        }
    ]
    table = ci_admin(db, "user", "list").stdout
    assert "ada@example.org" in table and user_id in table

    by_id = json.loads(ci_admin(db, "user", "get", user_id, "--json").stdout)
    by_prefix = json.loads(ci_admin(db, "user", "get", user_id[:8], "--json").stdout)
    by_email = json.loads(
        ci_admin(db, "user", "get", "--email", "ada@example.org", "--json").stdout
    )
    assert by_id == by_email == by_prefix == listed[0]


def test_user_create_json_is_the_user(db: Path) -> None:
    made = ci_admin(db, "user", "create", "--name", "Ada", "--email", "a@x.org", "--json")
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    assert user["email"] == "a@x.org" and user["is_active"] is True
    assert json.loads(ci_admin(db, "user", "list", "--json").stdout) == [user]


def test_deactivate_and_activate_by_prefix(db: Path) -> None:
    user_id = create_user(db)
    result = ci_admin(db, "user", "deactivate", user_id[:8])
    assert result.returncode == 0
    assert result.stdout.startswith(f"User deactivated: {user_id} ")
    assert json.loads(ci_admin(db, "user", "get", user_id, "--json").stdout)["is_active"] is False
    activated = ci_admin(db, "user", "activate", user_id, "--json")
    assert json.loads(activated.stdout)["is_active"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "create", "--name", "Bob", "--email", "not-an-email"], "invalid email"),
        (["user", "create", "--name", "Ada2", "--email", "ADA@example.org"], "already exists"),
        (["user", "get", "99999999"], "user 99999999 not found"),
        (["user", "get", "1"], "invalid user id '1'"),
        (["user", "get", "--email", "nobody@example.org"], "not found"),
        (["user", "deactivate", "deadbeef-0000"], "not found"),
        (["key", "create", "--email", "nobody@example.org", "--name", "x"], "not found"),
        (["key", "create", "--user-id", "99999999", "--name", "x"], "user 99999999 not found"),
        (["key", "revoke", "99999999"], "API key 99999999 not found"),
        (["key", "revoke", "99999999", "--json"], "API key 99999999 not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(db: Path, args: list[str], message: str) -> None:
    create_user(db)
    result = ci_admin(db, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_key_create_shows_the_key_once_and_stores_only_its_hash(db: Path) -> None:
    user_id = create_user(db)
    created = ci_admin(db, "key", "create", "--email", "ada@example.org", "--name", "laptop")
    assert created.returncode == 0, created.stderr
    first, second = created.stdout.strip().splitlines()
    assert first.startswith("API key created successfully: ")
    assert first.endswith("It is shown only once, save it now:")
    assert f"for user {user_id};" in first
    key_id = first.split()[4]
    assert second.startswith("API Key: ci_")
    secret = second.removeprefix("API Key: ")
    assert len(secret) == len("ci_") + 43

    listing = ci_admin(db, "key", "list", "--json")
    keys = json.loads(listing.stdout)
    assert [(k["id"], k["name"], k["state"], k["is_active"]) for k in keys] == [
        (key_id, "laptop", "active", True)
    ]
    assert set(keys[0]) == {
        "id",
        "user_id",
        "name",
        "prefix",
        "state",
        "is_active",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
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


def test_key_create_json_carries_the_key_once(db: Path) -> None:
    user_id = create_user(db)
    made = ci_admin(db, "key", "create", "--user-id", user_id[:8], "--name", "ci", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["key"].startswith("ci_") and key["user_id"] == user_id
    listed = json.loads(ci_admin(db, "key", "list", "--json").stdout)
    assert listed == [{k: v for k, v in key.items() if k != "key"}]


def test_key_by_user_id_with_expiry_and_filtered_list(db: Path) -> None:
    ada = create_user(db)
    bob = create_user(db, "Bob", "bob@example.org")
    assert (
        ci_admin(
            db, "key", "create", "--user-id", bob, "--name", "ci", "--expires-in", "7"
        ).returncode
        == 0
    )
    assert ci_admin(db, "key", "create", "--user-id", ada, "--name", "laptop").returncode == 0

    bobs = json.loads(ci_admin(db, "key", "list", "--email", "bob@example.org", "--json").stdout)
    assert [(k["name"], k["user_id"]) for k in bobs] == [("ci", bob)]
    assert bobs[0]["expires_at"] is not None
    adas = json.loads(ci_admin(db, "key", "list", "--user-id", ada[:10], "--json").stdout)
    assert [k["name"] for k in adas] == ["laptop"]


def test_revoke_once_by_prefix_then_a_clear_error(db: Path) -> None:
    create_user(db)
    made = ci_admin(db, "key", "create", "--email", "ada@example.org", "--name", "laptop")
    key_id = made.stdout.split()[4]
    first = ci_admin(db, "key", "revoke", key_id[:8])
    assert first.returncode == 0
    assert first.stdout.startswith(f"API key revoked: {key_id} ")
    listed = json.loads(ci_admin(db, "key", "list", "--json").stdout)[0]
    assert (listed["state"], listed["is_active"]) == ("revoked", False)

    second = ci_admin(db, "key", "revoke", key_id)
    assert second.returncode == 1
    assert "revoked already" in second.stderr


def test_an_ambiguous_prefix_is_refused(db: Path) -> None:
    ada, bob = create_user(db), create_user(db, "Bob", "bob@example.org")
    # Random UUIDs rarely share 8 characters: give Bob an id that shares Ada's first 8.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE users SET id = ? WHERE id = ?", (ada[:8] + bob[8:], bob))
    result = ci_admin(db, "user", "get", ada[:8])
    assert result.returncode == 1
    assert "ambiguous" in result.stderr
    assert json.loads(ci_admin(db, "user", "get", ada, "--json").stdout)["name"] == "Ada"


def test_user_and_email_together_is_a_usage_error(db: Path) -> None:
    user_id = create_user(db)
    result = ci_admin(
        db, "key", "create", "--user-id", user_id, "--email", "ada@example.org", "--name", "x"
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
    root_id = created.stdout.split()[3]
    assert created.stdout.strip() == (
        f"User created successfully: {root_id} (Root <root@x.org>, admin)"
    )
    ada_id = create_user(db, email="ada@x.org")
    listed = json.loads(ci_admin(db, "user", "list", "--json").stdout)
    assert [(u["id"], u["is_admin"]) for u in listed] == [(root_id, True), (ada_id, False)]
    assert "admin" in ci_admin(db, "user", "list").stdout

    made = ci_admin(db, "user", "set-admin", ada_id[:8])
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"User made an admin: {ada_id} (ada@x.org)"
    assert json.loads(ci_admin(db, "user", "get", ada_id, "--json").stdout)["is_admin"] is True
    taken = ci_admin(db, "user", "set-admin", ada_id, "--revoke", "--json")
    assert taken.returncode == 0, taken.stderr
    assert json.loads(taken.stdout) == {**listed[1], "is_admin": False}
    assert json.loads(ci_admin(db, "user", "get", ada_id, "--json").stdout)["is_admin"] is False
    as_admin = json.loads(
        ci_admin(
            db, "user", "create", "--name", "Cy", "--email", "cy@x.org", "--admin", "--json"
        ).stdout
    )
    assert as_admin["is_admin"] is True

    missing = ci_admin(db, "user", "set-admin", "99999999")
    assert missing.returncode == 1 and "user 99999999 not found" in missing.stderr
    short = ci_admin(db, "user", "set-admin", "2")
    assert short.returncode == 1 and "invalid user id '2'" in short.stderr
