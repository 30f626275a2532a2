"""The `ci` command against a scripted fake server: output streams, exit codes, options."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from ci_client.cli import CLIState, cli
from ci_common.api import CompleteEvent, JobIdEvent, LogEvent, StatusEvent
from ci_common.models import JobConclusion, JobStatus

from .conftest import FakeServer

JOB = "6f1c2a9e-8a7b-4c3d-9e0f-112233445566"
SseFactory = Callable[..., httpx.Response]
SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sample-project"


def run(state: CLIState, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj=state, env=env)


def job_json(**changes: object) -> dict[str, object]:
    created = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    job: dict[str, object] = {
        "id": JOB,
        "status": "completed",
        "conclusion": "success",
        "success": True,
        "exit_code": 0,
        "error": None,
        "cancel_requested": False,
        "created_at": created.isoformat(),
        "started_at": (created + timedelta(seconds=1)).isoformat(),
        "finished_at": (created + timedelta(seconds=66)).isoformat(),
    }
    job.update(changes)
    return job


def finished(conclusion: JobConclusion, code: int | None, error: str | None = None) -> list[object]:
    return [
        JobIdEvent(job_id=JOB),
        StatusEvent(status=JobStatus.RUNNING),
        LogEvent(seq=1, data="\x1b[32mtest_a PASSED\x1b[0m\n"),
        LogEvent(seq=2, data="1 passed\n"),
        CompleteEvent(
            status=JobStatus.COMPLETED,
            conclusion=conclusion,
            success=conclusion is JobConclusion.SUCCESS,
            exit_code=code,
            error=error,
        ),
    ]


def test_submit_streams_test_output_to_stdout_and_status_to_stderr(
    server, cli_state: CLIState, sse: SseFactory
) -> None:
    server.on("POST", "/submit-stream", sse(*finished(JobConclusion.SUCCESS, 0)))
    result = run(cli_state, "submit", "test", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert result.stdout == "test_a PASSED\n1 passed\n"  # colours stripped: not a terminal
    assert f"Job submitted: {JOB}" in result.stderr
    assert "Packed 4 files" in result.stderr
    assert "passed" in result.stderr.splitlines()[-1]
    assert b"tests/test_inventory.py" in server.requests_to("/submit-stream")[0].content


@pytest.mark.parametrize(
    ("conclusion", "pytest_code", "exit_code", "words"),
    [
        (JobConclusion.FAILURE, 1, 1, "some tests failed"),
        (JobConclusion.FAILURE, 5, 5, "no tests were collected"),
        (JobConclusion.ERROR, None, 70, "could not run: pip failed: no such package"),
        (JobConclusion.TIMED_OUT, None, 124, "timed out"),
        (JobConclusion.CANCELLED, None, 130, "cancelled"),
    ],
)
def test_submit_exit_code_for_each_conclusion(
    server: FakeServer,
    cli_state: CLIState,
    sse: SseFactory,
    conclusion: JobConclusion,
    pytest_code: int | None,
    exit_code: int,
    words: str,
) -> None:
    error = "pip failed: no such package" if conclusion is JobConclusion.ERROR else None
    server.on("POST", "/submit-stream", sse(*finished(conclusion, pytest_code, error)))
    result = run(cli_state, "submit", "test", str(SAMPLE))
    assert result.exit_code == exit_code
    assert words in result.stderr


def test_an_error_without_message_in_the_event_is_looked_up(
    server, cli_state: CLIState, sse: SseFactory
) -> None:
    server.on("POST", "/submit-stream", sse(*finished(JobConclusion.ERROR, None)))
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job_json(error="image missing")))
    result = run(cli_state, "submit", "test", str(SAMPLE))
    assert result.exit_code == 70
    assert "could not run: image missing" in result.stderr


def test_submit_async_prints_the_job_id(server: FakeServer, cli_state: CLIState) -> None:
    server.on(
        "POST", "/submit-async", httpx.Response(202, json={"job_id": JOB, "status": "queued"})
    )
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async")
    assert result.exit_code == 0
    assert result.stdout == f"Job submitted: {JOB}\n"


def test_ctrl_c_detaches_and_says_how_to_reattach(server: FakeServer, cli_state: CLIState) -> None:
    first = LogEvent(seq=1, data="first\n")
    body = (
        f"data: {JobIdEvent(job_id=JOB).model_dump_json()}\n\n"
        f"id: 1\ndata: {first.model_dump_json()}\n\n"
    ).encode()

    class Interrupted(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield body
            raise KeyboardInterrupt

    server.on(
        "POST",
        "/submit-stream",
        httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Interrupted()),
    )
    result = run(cli_state, "submit", "test", str(SAMPLE))
    assert result.exit_code == 130
    assert result.stdout == "first\n"
    assert f"ci wait {JOB}" in result.stderr
    assert "goes on" in result.stderr


def test_wait_follows_forward_only_or_from_the_start(
    server, cli_state: CLIState, sse: SseFactory
) -> None:
    server.on("GET", f"/jobs/{JOB}/stream", sse(*finished(JobConclusion.FAILURE, 1)[1:]))
    assert run(cli_state, "wait", JOB).exit_code == 1
    assert run(cli_state, "wait", JOB, "--all").exit_code == 1
    first, second = server.requests_to(f"/jobs/{JOB}/stream")
    assert "from_beginning" not in first.url.params
    assert second.url.params["from_beginning"] == "true"


def test_a_short_id_goes_to_the_server_which_resolves_it_over_all_jobs(
    server: FakeServer, cli_state: CLIState
) -> None:
    server.on("GET", f"/jobs/{JOB[:8]}", httpx.Response(200, json=job_json()))
    result = run(cli_state, "status", JOB[:8])
    assert result.exit_code == 0
    assert JOB in result.stdout
    assert server.requests_to("/jobs") == []
    server.on("GET", "/jobs/ffffffff", httpx.Response(404, json={"detail": "not found"}))
    assert run(cli_state, "status", "ffffffff").exit_code == 66
    too_short = run(cli_state, "status", JOB[:7])
    assert too_short.exit_code == 64
    assert "at least its first 8 characters" in too_short.stderr


def test_unknown_job_exits_66(server: FakeServer, cli_state: CLIState) -> None:
    server.on("GET", f"/jobs/{JOB}", httpx.Response(404, json={"detail": "job not found"}))
    result = run(cli_state, "status", JOB)
    assert result.exit_code == 66
    assert "ci list" in result.stderr


def test_rejected_key_exits_77(server: FakeServer, cli_state: CLIState) -> None:
    server.on("GET", "/jobs", httpx.Response(401, json={"detail": "API key revoked"}))
    result = run(cli_state, "list")
    assert result.exit_code == 77
    assert "API key revoked" in result.stderr


def test_unreachable_server_exits_69(home: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    state = CLIState(api_key="ci_x", transport=httpx.MockTransport(refuse))
    result = run(state, "list")
    assert result.exit_code == 69
    assert "cannot reach the CI server at http://localhost:8000" in result.stderr


def test_upload_rejected_exits_65_with_the_servers_detail(
    server: FakeServer, cli_state: CLIState
) -> None:
    server.on("POST", "/submit-async", httpx.Response(413, json={"detail": "over 50 MiB"}))
    result = run(cli_state, "submit", "test", str(SAMPLE), "--async")
    assert result.exit_code == 65
    assert "over 50 MiB" in result.stderr


def test_a_hidden_requirements_file_exits_65(cli_state: CLIState, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / ".gitignore").write_text("*.txt\n")
    result = run(cli_state, "submit", "test", str(tmp_path))
    assert result.exit_code == 65
    assert "requirements.txt is excluded by .gitignore" in result.stderr


@pytest.mark.parametrize(
    "args", [["list", "--limit", "0"], ["list", "--status", "nope"], ["nope"], ["wait"]]
)
def test_usage_errors_exit_64(cli_state: CLIState, args: list[str]) -> None:
    assert run(cli_state, *args).exit_code == 64


def test_missing_key_exits_78_and_lists_the_ways(home: Path) -> None:
    result = run(CLIState(), "submit", "test", str(SAMPLE))
    assert result.exit_code == 78
    for way in ("--api-key", "CI_API_KEY", "ci config set api_key"):
        assert way in result.stderr


def test_flags_work_on_the_group_and_subcommand_and_the_closest_wins(
    server: FakeServer, home: Path
) -> None:
    server.on("GET", "/jobs", httpx.Response(200, json=[]))
    state = CLIState(transport=server.transport)
    args = ["--server", "http://group.test", "--api-key", "ci_group", "list"]
    assert run(state, *args).exit_code == 0
    assert run(state, *args, "--server", "http://sub.test", "--api-key", "ci_sub").exit_code == 0
    first, second = server.requests
    assert (first.url.host, first.headers["authorization"]) == ("group.test", "Bearer ci_group")
    assert (second.url.host, second.headers["authorization"]) == ("sub.test", "Bearer ci_sub")


def test_env_beats_the_config_file(server: FakeServer, home: Path) -> None:
    server.on("GET", "/jobs", httpx.Response(200, json=[]))
    state = CLIState(transport=server.transport)
    assert run(state, "config", "set", "server_url", "http://file.test").exit_code == 0
    assert run(state, "config", "set", "api_key", "ci_file").exit_code == 0
    assert run(state, "list").exit_code == 0
    env = {"CI_SERVER_URL": "http://env.test", "CI_API_KEY": "ci_env"}
    assert run(state, "list", env=env).exit_code == 0
    first, second = server.requests
    assert (first.url.host, first.headers["authorization"]) == ("file.test", "Bearer ci_file")
    assert (second.url.host, second.headers["authorization"]) == ("env.test", "Bearer ci_env")


def test_config_show_masks_the_key_and_names_sources(home: Path) -> None:
    key = "ci_" + "s" * 43
    run(CLIState(), "config", "set", "api_key", key)
    result = run(CLIState(), "config", "show", env={"CI_SERVER_URL": "http://env.test"})
    assert result.exit_code == 0
    assert key not in result.output
    assert "ci_ssssss" in result.stdout
    assert "(config file)" in result.stdout
    assert "http://env.test  (environment)" in result.stdout
    assert (home / ".config" / "ci" / "config").stat().st_mode & 0o777 == 0o600


def test_list_shows_a_table_or_json(server: FakeServer, cli_state: CLIState) -> None:
    running = job_json(
        id="aaaaaaaa-0000-4000-8000-000000000000",
        status="running",
        conclusion=None,
        success=None,
        exit_code=None,
        finished_at=None,
    )
    server.on("GET", "/jobs", httpx.Response(200, json=[running, job_json()]))
    table = run(cli_state, "list", "--limit", "2", "--status", "running")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "PROJECT",
        "COMMIT",
        "BRANCH",
        "STATUS",
        "CONCLUSION",
        "TESTS",
        "CREATED",
        "DURATION",
    ]
    assert lines[1].split()[:6] == ["aaaaaaaa", "-", "-", "-", "running", "-"]
    assert lines[2].split()[:6] == [JOB[:8], "-", "-", "-", "completed", "success"]
    assert lines[2].split()[-2:] == ["1m", "05s"]
    assert "\x1b[" not in table.stdout
    assert server.requests[0].url.params == httpx.QueryParams({"limit": "2", "status": "running"})
    as_json = run(cli_state, "list", "--json")
    assert [job["id"] for job in json.loads(as_json.stdout)] == [running["id"], JOB]


def test_an_empty_list_says_how_to_start(server: FakeServer, cli_state: CLIState) -> None:
    server.on("GET", "/jobs", httpx.Response(200, json=[]))
    result = run(cli_state, "list")
    assert result.exit_code == 0
    assert "ci submit test" in result.stderr


def test_status_shows_the_error_of_a_job_that_could_not_run(
    server: FakeServer, cli_state: CLIState
) -> None:
    failed = job_json(conclusion="error", success=False, exit_code=None, error="no image")
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=failed))
    result = run(cli_state, "status", JOB)
    assert result.exit_code == 0
    assert "error:      no image" in result.stdout
    assert json.loads(run(cli_state, "status", JOB, "--json").stdout)["error"] == "no image"


def test_logs_prints_the_whole_log(server: FakeServer, cli_state: CLIState) -> None:
    server.on("GET", f"/jobs/{JOB}/logs", httpx.Response(200, text="\x1b[31mred\x1b[0m\nend"))
    result = run(cli_state, "logs", JOB)
    assert result.exit_code == 0
    assert result.stdout == "red\nend\n"


@pytest.mark.parametrize(
    ("after", "words"),
    [
        ({"status": "running", "conclusion": None, "cancel_requested": True}, "requested"),
        ({"conclusion": "cancelled"}, "is cancelled"),
        ({"conclusion": "success"}, "already completed (success)"),
    ],
)
def test_cancel_reports_what_happened(
    server, cli_state: CLIState, after: dict[str, object], words: str
) -> None:
    server.on("POST", f"/jobs/{JOB}/cancel", httpx.Response(202, json=job_json(**after)))
    server.on("GET", f"/jobs/{JOB}", httpx.Response(200, json=job_json(**after)))
    result = run(cli_state, "cancel", JOB)
    assert result.exit_code == 0
    assert words in result.stderr


def test_help_documents_the_exit_codes(cli_state: CLIState) -> None:
    result = run(cli_state, "--help")
    for line in ("64   usage error", "70   the job could not run", "124  the job timed out"):
        assert line in result.stdout


def test_start_up_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from ci_client.cli import main\n"
        "sys.argv = ['ci', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'httpx', 'pydantic', 'rich', 'ci_server', 'fastapi', 'uvicorn', 'docker', 'ci_common'})\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["ci 0.1.0", "[]"]


def test_submit_async_imports_no_pydantic_or_rich() -> None:
    probe = (
        "import sys\n"
        "from ci_client.httpx_lean import httpx\n"
        "from ci_client.cli import CLIState, cli\n"
        "def accept(request):\n"
        "    return httpx.Response(202, json={'job_id': 'j', 'status': 'queued'})\n"
        "state = CLIState(api_key='ci_x', transport=httpx.MockTransport(accept))\n"
        "try:\n"
        f"    cli.main(['submit', 'test', '--async', {str(SAMPLE)!r}], obj=state)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pydantic', 'rich', 'pygments', 'ci_common', 'ci_server', 'fastapi', 'docker'})\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["Job submitted: j", "[]"]


def test_submit_and_follow_imports_no_pydantic_or_rich() -> None:
    """The stream is decoded without pydantic, whose import used to run while a small job ran
    (see `ci_client.events`)."""
    body = (
        'data: {"type": "job_id", "job_id": "j"}\n\n'
        'data: {"type": "status", "status": "running"}\n\n'
        'id: 1\ndata: {"type": "log", "seq": 1, "data": "ok\\n"}\n\n'
        'data: {"type": "complete", "status": "completed", "conclusion": "success", '
        '"success": true, "exit_code": 0}\n\n'
    )
    probe = (
        "import sys\n"
        "from ci_client.httpx_lean import httpx\n"
        "from ci_client.cli import CLIState, cli\n"
        "def accept(request):\n"
        "    if request.url.path == '/limits':\n"
        "        return httpx.Response(200, json={})\n"
        f"    return httpx.Response(200, text={body!r}, "
        "headers={'content-type': 'text/event-stream'})\n"
        "state = CLIState(api_key='ci_x', transport=httpx.MockTransport(accept))\n"
        "try:\n"
        f"    cli.main(['submit', 'test', {str(SAMPLE)!r}], obj=state)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pydantic', 'rich', 'pygments', 'ci_common', 'ci_server', 'fastapi', 'docker'})\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["ok", "[]"], result.stderr


def test_force_color_keeps_the_tests_colours_in_a_pipe(
    server, cli_state: CLIState, sse: SseFactory
) -> None:
    server.on("POST", "/submit-stream", sse(*finished(JobConclusion.SUCCESS, 0)))
    result = run(cli_state, "submit", "test", str(SAMPLE), env={"FORCE_COLOR": "1"})
    assert result.exit_code == 0
    assert result.stdout.startswith("\x1b[32mtest_a PASSED\x1b[0m\n")


def test_every_command_takes_server_and_api_key() -> None:
    import click

    def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
        found = [(path, command)]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, f"{path} {name}")
        return found

    commands = walk(cli, "ci")
    assert len(commands) >= 11
    for path, command in commands:
        if path == "ci config set":  # writes the file; a server or key there means nothing
            continue
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--server", "--api-key"} <= options, path
