"""The conventions people bring from gh, git and docker: -h everywhere, `ci help`, bare `ci`,
`--json` and `-q` for scripts, `ci logs -f`, `ci config get`, help that is never cut short."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import httpx
from click.testing import CliRunner, Result

from ci_client.cli import CLIState, cli
from ci_common.api import CompleteEvent, LogEvent, StatusEvent
from ci_common.models import JobConclusion, JobStatus

from .conftest import FakeServer
from .test_cli import JOB, SAMPLE, job_json


def run(state: CLIState, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=state, prog_name="ci")


SseFactory = Callable[..., httpx.Response]


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_bare_ci_prints_the_help_and_exits_0(home: Path) -> None:
    result = run(CLIState())
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ci [OPTIONS]")
    assert "submit" in result.stdout
    for group in ("submit", "config"):
        bare = run(CLIState(), group)
        assert bare.exit_code == 0 and bare.stdout.startswith(f"Usage: ci {group}"), group


def test_every_command_takes_h_and_ci_help_shows_the_same(home: Path) -> None:
    for path, _command in _commands(cli):
        short = run(CLIState(), *path, "-h")
        assert short.exit_code == 0, path
        assert short.stdout.startswith(f"Usage: ci {' '.join(path)}"), path
        assert run(CLIState(), *path, "--help").stdout == short.stdout, path
        assert run(CLIState(), "help", *path).stdout == short.stdout, path
    assert run(CLIState(), "help").stdout == run(CLIState(), "--help").stdout
    unknown = run(CLIState(), "help", "nonsense")
    assert unknown.exit_code == 64 and "no such command" in unknown.stderr


def test_no_help_text_is_cut_mid_sentence(home: Path) -> None:
    listings = [run(CLIState(), "--help").stdout]
    listings += [
        run(CLIState(), *path, "--help").stdout
        for path, command in _commands(cli)
        if isinstance(command, click.Group)
    ]
    for listing in listings:
        commands = listing.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
        assert "..." not in commands, commands


def test_submit_async_json_and_quiet(server: FakeServer, cli_state: CLIState) -> None:
    accepted = httpx.Response(202, json={"job_id": JOB, "status": "queued"})
    server.on("POST", "/submit-async", accepted, accepted)
    as_json = run(cli_state, "submit", "test", str(SAMPLE), "--async", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {"job_id": JOB}
    quiet = run(cli_state, "submit", "test", str(SAMPLE), "--async", "-q")
    assert quiet.exit_code == 0
    assert quiet.stdout == f"{JOB}\n"


def test_submit_json_without_async_prints_only_the_finished_job(
    server: FakeServer, cli_state: CLIState, sse: SseFactory
) -> None:
    from ci_common.api import JobIdEvent

    server.on(
        "POST",
        "/submit-stream",
        sse(
            JobIdEvent(job_id=JOB),
            StatusEvent(status=JobStatus.RUNNING),
            LogEvent(seq=1, data="collected 1 item\n"),
            CompleteEvent(
                status=JobStatus.COMPLETED,
                conclusion=JobConclusion.FAILURE,
                success=False,
                exit_code=1,
            ),
        ),
    )
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job_json(exit_code=1)))
    result = run(cli_state, "submit", "test", str(SAMPLE), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["id"] == JOB
    assert "collected" not in result.stdout


def test_list_conclusion_is_sent_to_the_server(server: FakeServer, cli_state: CLIState) -> None:
    server.on("GET", "/jobs", httpx.Response(200, json=[job_json()]))
    result = run(cli_state, "list", "--conclusion", "failure", "--json")
    assert result.exit_code == 0
    assert server.requests_to("/jobs")[0].url.params["conclusion"] == "failure"
    assert run(cli_state, "list", "--conclusion", "bogus").exit_code == 64


def test_logs_follow_replays_and_follows_to_the_end(
    server: FakeServer, cli_state: CLIState, sse: SseFactory
) -> None:
    server.on(
        "GET",
        f"/jobs/{JOB}/stream",
        sse(
            StatusEvent(status=JobStatus.RUNNING),
            LogEvent(seq=1, data="line one\n"),
            CompleteEvent(
                status=JobStatus.COMPLETED,
                conclusion=JobConclusion.SUCCESS,
                success=True,
                exit_code=0,
            ),
        ),
    )
    result = run(cli_state, "logs", "-f", JOB)
    assert result.exit_code == 0
    assert result.stdout == "line one\n"
    request = server.requests_to(f"/jobs/{JOB}/stream")[0]
    assert request.url.params["from_beginning"] == "true"


def test_logs_json(server: FakeServer, cli_state: CLIState) -> None:
    server.on("GET", f"/jobs/{JOB}/logs", httpx.Response(200, text="a\nb\n"))
    result = run(cli_state, "logs", JOB, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"id": JOB, "log": "a\nb\n"}


def test_status_cancel_whoami_and_config_show_take_json(
    server: FakeServer, cli_state: CLIState
) -> None:
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job_json()))
    server.on("POST", f"/jobs/{JOB}/cancel", httpx.Response(200, json=job_json()))
    me = {"id": "u-1", "name": "Ada", "email": "ada@example.org"}
    server.on("GET", "/whoami", httpx.Response(200, json=me))
    assert json.loads(run(cli_state, "status", JOB, "--json").stdout)["id"] == JOB
    assert json.loads(run(cli_state, "cancel", JOB, "--json").stdout)["id"] == JOB
    assert json.loads(run(cli_state, "whoami", "--json").stdout) == me
    shown = json.loads(run(cli_state, "config", "show", "--json").stdout)
    assert shown["api_key_source"] == "flag" and "ci_" not in json.dumps(shown["files"])


def test_config_get_prints_the_value_in_use_and_reads_the_legacy_file(home: Path) -> None:
    key = "ci_" + "k" * 43
    legacy = home / ".ci" / "config"
    legacy.parent.mkdir()
    legacy.write_text(f"api_key={key}\n")
    got = run(CLIState(), "config", "get", "api_key")
    assert (got.exit_code, got.stdout) == (0, f"{key}\n")
    assert run(CLIState(), "config", "get", "server_url").stdout == "http://localhost:8000\n"
    assert run(CLIState(), "config", "set", "server_url", "http://ci.test").exit_code == 0
    assert (home / ".config" / "ci" / "config").exists()
    assert run(CLIState(), "config", "get", "server_url").stdout == "http://ci.test\n"
    legacy.unlink()
    unset = run(CLIState(), "config", "get", "api_key")
    assert unset.exit_code == 78 and unset.stdout == ""
    assert "not set" in unset.stderr


def test_a_rejected_key_is_reported_before_the_project_is_packed(
    server: FakeServer, cli_state: CLIState, tmp_path: Path
) -> None:
    server.on("GET", "/limits", httpx.Response(401, json={"detail": "unknown API key"}))
    result = run(cli_state, "submit", "test", str(tmp_path / "not-packable"))
    assert result.exit_code == 77
    assert "unknown API key" in result.stderr
    assert "Packed" not in result.stderr


def test_shell_completion_is_clicks_as_the_help_documents(home: Path) -> None:
    import os
    import subprocess
    import sys

    ci = Path(sys.executable).parent / "ci"
    script = subprocess.run(
        [str(ci)],
        env={**os.environ, "_CI_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "_ci_completion" in script and "complete " in script
    assert 'eval "$(_CI_COMPLETE=bash_source ci)"' in run(CLIState(), "--help").stdout
