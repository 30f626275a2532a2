"""`ci submit test` with pytest arguments after `--`, `-e`, provenance and the server's
limits, against the scripted fake server; `ci list --project` and the status card."""

from __future__ import annotations

import json
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from ci_client.cli import CLIState, cli
from ci_client.job_request import ServerLimits

from .conftest import FakeServer

JOB = "6f1c2a9e-8a7b-4c3d-9e0f-112233445566"
SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample-project"
LIMITS = {
    "max_upload_bytes": 1024 * 1024,
    "max_unpacked_bytes": 2 * 1024 * 1024,
    "max_upload_entries": 50,
    "max_pytest_args": 4,
    "max_pytest_arg_bytes": 10,
    "max_pytest_args_bytes": 25,
    "max_env_vars": 3,
    "max_env_value_bytes": 8,
    "max_env_bytes": 30,
    "env_name_pattern": "[A-Za-z_][A-Za-z0-9_]*",
    "reserved_env_names": ["CI", "CI_JOB_ID"],
}


def run(state: CLIState, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj=state, env=env)


def form_fields(request: httpx.Request) -> dict[str, str]:
    """The multipart form's text fields (not the file)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            fields[name] = payload.decode()
    return fields


@pytest.fixture
def accepting(server: FakeServer) -> FakeServer:
    server.on("GET", "/limits", httpx.Response(200, json=LIMITS))
    server.on(
        "POST", "/submit-async", httpx.Response(202, json={"job_id": JOB, "status": "queued"})
    )
    return server


def submitted(server: FakeServer) -> dict[str, str]:
    [request] = server.requests_to("/submit-async")
    return form_fields(request)


def test_arguments_after_double_dash_go_to_pytest_not_to_path(
    accepting: FakeServer, cli_state: CLIState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLE)
    result = run(cli_state, "submit", "test", "--async", "--", "-k", "total", "-x")
    assert result.exit_code == 0, result.output
    fields = submitted(accepting)
    assert json.loads(fields["pytest_args"]) == ["-k", "total", "-x"]
    assert f"Packing {SAMPLE} (found requirements.txt)" in result.stderr
    assert f"Packed 4 files of sample-project from {SAMPLE}" in result.stderr


def test_path_and_arguments_together(accepting: FakeServer, cli_state: CLIState) -> None:
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async", "--", "--", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(submitted(accepting)["pytest_args"]) == ["--", "-q"]


def test_env_options_are_sent_and_a_bare_name_takes_the_local_value(
    accepting: FakeServer, cli_state: CLIState
) -> None:
    result = run(
        cli_state,
        "submit",
        "test",
        str(SAMPLE),
        "--async",
        "-e",
        "FOO=a=b",
        "--env",
        "EMPTY=",
        "-e",
        "HERE",
        env={"HERE": "local"},
    )
    assert result.exit_code == 0, result.output
    fields = submitted(accepting)
    assert json.loads(fields["env"]) == {"FOO": "a=b", "EMPTY": "", "HERE": "local"}
    assert "pytest_args" not in fields  # nothing asked, nothing sent


def test_provenance_is_sent_with_every_submit(accepting: FakeServer, cli_state: CLIState) -> None:
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async")
    assert result.exit_code == 0, result.output
    fields = submitted(accepting)
    assert fields["project"] == "sample-project"
    git = json.loads(fields["git"])  # the examples live in this repository's checkout
    assert re.fullmatch(r"[0-9a-f]{40}", git["commit"]) and isinstance(git["dirty"], bool)
    assert f"commit {git['commit'][:12]}" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-e", "1X=y"], "-e 1X: not a valid variable name"),
        (["-e", "CI=false"], "-e CI: set by the CI service itself"),
        (["-e", "UNSET_HERE_FOR_SURE"], "UNSET_HERE_FOR_SURE is not set here"),
        (["-e", "=x"], "give the variable as -e NAME=VALUE"),
        (["-e", "A=123456789"], "over the server's 8-byte limit"),
        (["-e", "A=1", "-e", "B=2", "-e", "C=3", "-e", "D=4"], "more than the server's 3"),
        (["--", "1", "2", "3", "4", "5"], "5 pytest arguments, more than the server's 4"),
        (["--", "-k", "a" * 11], "over the server's 10-byte limit"),
        (["--", "a" * 9, "b" * 9, "c" * 9], "total 27 bytes, over the server's 25-byte"),
    ],
)
def test_what_the_server_would_refuse_fails_before_the_upload(
    accepting: FakeServer, cli_state: CLIState, args: list[str], words: str
) -> None:
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async", *args)
    assert result.exit_code == 64, result.output
    assert words in result.stderr
    assert accepting.requests_to("/submit-async") == []


def test_the_upload_limits_are_the_servers(
    server: FakeServer, cli_state: CLIState, tmp_path: Path
) -> None:
    server.on("GET", "/limits", httpx.Response(200, json={**LIMITS, "max_upload_entries": 2}))
    (tmp_path / "requirements.txt").write_text("")
    for name in ("test_a.py", "test_b.py"):
        (tmp_path / name).write_text("def test(): pass\n")
    result = run(cli_state, "submit", "test", str(tmp_path), "--async")
    assert result.exit_code == 65
    assert "3 files, more than the server's 2" in result.stderr
    server.on("GET", "/limits", httpx.Response(200, json={**LIMITS, "max_upload_bytes": 100}))
    result = run(cli_state, "submit", "test", str(tmp_path), "--async")
    assert result.exit_code == 65
    assert "over the upload limit of 100 B" in result.stderr
    assert server.requests_to("/submit-async") == []


def test_a_server_without_limits_gets_the_default_checks(server: FakeServer) -> None:
    from ci_client.client import CIClient

    with CIClient(server_url="http://ci.test", api_key="k", transport=server.transport) as client:
        assert client.limits() == ServerLimits()


def test_pytest_options_without_double_dash_say_where_they_go(cli_state: CLIState) -> None:
    result = run(cli_state, "submit", "test", "-k", "parse")
    assert result.exit_code == 64
    assert "pytest's options go after `--`: ci submit test -- -k" in result.stderr


def test_help_shows_where_pytest_arguments_go(cli_state: CLIState) -> None:
    result = run(cli_state, "submit", "test", "--help")
    assert "[PATH] [-- PYTEST_ARGS...]" in result.stdout
    assert "-e, --env KEY=VALUE" in result.stdout


def test_list_filters_by_project_and_shows_project_and_commit(
    server: FakeServer, cli_state: CLIState
) -> None:
    job = {
        "id": JOB,
        "status": "completed",
        "conclusion": "success",
        "success": True,
        "exit_code": 0,
        "error": None,
        "cancel_requested": False,
        "created_at": "2026-01-01T12:00:00+00:00",
        "started_at": None,
        "finished_at": None,
        "project": "inventory",
        "git": {"commit": "0123456789abcdef" * 2 + "01234567", "branch": "main", "dirty": True},
        "pytest_args": ["-k", "parse me"],
        "env": {"FOO": "secret"},
    }
    server.on("GET", "/jobs", httpx.Response(200, json=[job]))
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job))

    table = run(cli_state, "list", "--project", "inventory")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[1].split()[:5] == [
        JOB[:8],
        "inventory",
        "0123456789*",
        "main",
        "completed",
    ]
    assert server.requests[0].url.params["project"] == "inventory"

    card = run(cli_state, "status", JOB).stdout
    assert "project:     inventory" in card
    commit = "0123456789abcdef" * 2 + "01234567"
    assert f"commit:      {commit} on main, with uncommitted changes" in card
    assert "pytest args: -k 'parse me'" in card
    assert "environment: FOO (values: --json)" in card
    assert "secret" not in card


def test_python_is_sent_and_shown_in_the_status_card(
    accepting: FakeServer, cli_state: CLIState
) -> None:
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async", "--python", "3.13")
    assert result.exit_code == 0, result.output
    assert submitted(accepting)["python"] == "3.13"

    job = {
        "id": JOB,
        "status": "queued",
        "conclusion": None,
        "success": None,
        "exit_code": None,
        "error": None,
        "cancel_requested": False,
        "created_at": "2026-01-01T12:00:00+00:00",
        "started_at": None,
        "finished_at": None,
        "python": "3.13",
    }
    accepting.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job))
    assert "python:     3.13" in run(cli_state, "status", JOB).stdout


def test_without_python_none_is_sent(accepting: FakeServer, cli_state: CLIState) -> None:
    assert run(cli_state, "submit", "test", str(SAMPLE), "--async").exit_code == 0
    assert "python" not in submitted(accepting)


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        ((), {}),
        (("--extra", "docs", "--extra", "test"), {"extras": ["docs", "test"]}),
        (("--group", "lint"), {"groups": ["lint"]}),
        (("--no-extras",), {"extras": [], "groups": []}),
        (("--no-extras", "--group", "lint"), {"extras": [], "groups": ["lint"]}),
    ],
)
def test_extras_and_groups_are_sent_only_when_chosen(
    accepting: FakeServer, cli_state: CLIState, options: tuple[str, ...], sent: dict[str, object]
) -> None:
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async", *options)

    assert result.exit_code == 0, result.output
    fields = submitted(accepting)
    chosen = {name: json.loads(fields[name]) for name in ("extras", "groups") if name in fields}
    assert chosen == sent
