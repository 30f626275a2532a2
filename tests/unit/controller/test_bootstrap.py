"""The job container's first process, run on the host under a temporary root: how the job's
end becomes the container's exit code, and what PID 1 does with signals. (Reaping orphans
needs it to be PID 1; the e2e tests check that in a real container.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from test_container_output import docker_messages

from ci_controller.bootstrap import DISK_FULL_EXIT, bootstrap, exit_status
from ci_controller.container_output import (
    END_CHANNEL,
    LOG_CHANNEL,
    RESULTS_CHANNEL,
    OutputRecord,
    decode_frame,
)
from ci_controller.project import JOB_FILE, READY_MARKER, WORKSPACE
from ci_controller.project_link import project_link
from ci_controller.runtime import PROJECT_MISSING_EXIT, ExitStatus


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A container root with the project in place."""
    (tmp_path / WORKSPACE).mkdir()
    (tmp_path / READY_MARKER).touch()
    return tmp_path


def start(root: Path, *command: str, wait_seconds: int | None = 5) -> subprocess.Popen[bytes]:
    script = bootstrap(wait_seconds=wait_seconds, root=str(root))
    return subprocess.Popen(
        [sys.executable, "-c", script, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # this venv's plugins are slow
    )


def decoded(messages: bytes) -> str:
    """The job's output from what PID 1 wrote, one Docker message per line (without its word
    that the kept files are ready)."""
    records = [decode_frame(message) for message in docker_messages(messages)]
    return b"".join(r.data for r in records if r.channel != END_CHANNEL).decode()


def run(root: Path, *command: str, wait_seconds: int | None = 5) -> tuple[int, str, str]:
    process = start(root, *command, wait_seconds=wait_seconds)
    out, err = process.communicate(timeout=60)
    return process.returncode, decoded(out), err.decode()


@pytest.mark.parametrize(
    ("shell", "code"),
    [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 128 + 15), ("kill -KILL $$", 128 + 9)],
)
def test_the_containers_exit_code_is_the_jobs_and_a_signal_becomes_128_plus_it(
    root: Path, shell: str, code: int
) -> None:
    assert run(root, "sh", "-c", shell)[0] == code


def test_pytest_runs_in_the_workspace_with_stderr_folded_into_stdout(root: Path) -> None:
    (root / WORKSPACE / "test_it.py").write_text(
        "import os, sys\n"
        "def test_it():\n"
        "    print('to stderr', file=sys.stderr)\n"
        f"    assert os.getcwd() == {str(root / WORKSPACE)!r}\n"
        "    assert False, 'as planned'\n"
    )

    code, out, err = run(root, "python", "-m", "pytest", "-p", "no:cacheprovider", "-s")

    assert code == 1
    assert "to stderr" in out and "as planned" in out and "1 failed" in out
    assert err == ""


def test_the_plugins_records_go_out_on_the_results_channel_apart_from_the_output(
    root: Path,
) -> None:
    writer = (
        "import os, sys\n"
        "fd = int(os.environ['CI_RESULTS_FD'])\n"
        "print('output', flush=True)\n"
        "os.write(fd, b'{\"kind\": \"session\"}\\n' + b'x' * 40000 + b'\\n')\n"
        'print(\'{"kind": "test"} printed\', flush=True)\n'
    )
    # A submit's environment cannot point the plugin elsewhere (here: into the log).
    (root / JOB_FILE).write_text(json.dumps({"env": {"CI_RESULTS_FD": "1"}}))
    process = start(root, "python", "-c", writer)
    out, err = process.communicate(timeout=60)

    records = [decode_frame(message) for message in docker_messages(out)]
    by_channel: dict[bytes, bytes] = {}
    for record in records:
        by_channel[record.channel] = by_channel.get(record.channel, b"") + record.data
    assert process.returncode == 0, err
    assert by_channel == {
        LOG_CHANNEL: b'output\n{"kind": "test"} printed\n',
        RESULTS_CHANNEL: b'{"kind": "session"}\n' + b"x" * 40000 + b"\n",
        END_CHANNEL: b"0",
    }
    # PID 1's last word, once the kept files are gathered: the code it exits with.
    assert records[-1] == OutputRecord(channel=END_CHANNEL, data=b"0")


def test_sigterm_reaches_the_job_and_ends_the_container_with_143(root: Path) -> None:
    process = start(root, "sh", "-c", "echo started; exec sleep 30")
    assert process.stdout is not None
    assert decoded(process.stdout.readline()) == "started\n"
    began = time.monotonic()

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert time.monotonic() - began < 5


def test_output_without_a_newline_is_sent_on_within_250_ms(root: Path) -> None:
    printer = (
        "import sys, time\n"
        "sys.stdout.write(f'dots at {time.time()!r} ...')\n"
        "sys.stdout.flush()\n"
        "time.sleep(5)\n"
    )
    process = start(root, "python", "-c", printer)
    assert process.stdout is not None

    first = process.stdout.readline()  # one Docker message
    received = time.time()
    process.kill()
    process.wait(timeout=10)

    text = decoded(first)
    assert text.startswith("dots at ") and text.endswith(" ...")
    assert received - float(text.split()[2]) < 0.25


def test_a_chatty_jobs_lines_go_out_in_few_messages_exactly(root: Path) -> None:
    printer = "import sys\nfor n in range(20000):\n    sys.stdout.write(f'line {n} \\x7f é\\n')\n"

    process = start(root, "python", "-c", printer)
    out, _ = process.communicate(timeout=60)

    assert process.returncode == 0
    assert decoded(out) == "".join(f"line {n} \x7f é\n" for n in range(20000))
    assert len(docker_messages(out)) < 200  # not one per line


def test_a_process_left_behind_holding_the_output_does_not_keep_the_container(
    root: Path,
) -> None:
    began = time.monotonic()

    code, out, _ = run(root, "sh", "-c", "sleep 30 & echo started; exit 4")

    assert (code, out) == (4, "started\n")
    assert time.monotonic() - began < 10


def test_a_project_that_never_comes_ends_the_container_with_its_own_code(
    tmp_path: Path,
) -> None:
    code, out, _ = run(tmp_path, "sh", "-c", "exit 0", wait_seconds=0)

    assert code == PROJECT_MISSING_EXIT
    assert out == "[ci] the project never reached the container\n"


@pytest.mark.parametrize(
    ("container_code", "status"),
    [
        (0, ExitStatus(0)),
        (1, ExitStatus(1)),
        (DISK_FULL_EXIT + 1, ExitStatus(1, disk_full=True)),
        (DISK_FULL_EXIT + 5, ExitStatus(5, disk_full=True)),
        (DISK_FULL_EXIT, ExitStatus(DISK_FULL_EXIT)),
        (DISK_FULL_EXIT + 6, ExitStatus(DISK_FULL_EXIT + 6)),
        (PROJECT_MISSING_EXIT, ExitStatus(PROJECT_MISSING_EXIT)),
        (137, ExitStatus(137)),
    ],
)
def test_only_pytests_failures_raised_by_disk_full_exit_read_as_a_full_disk(
    container_code: int, status: ExitStatus
) -> None:
    assert exit_status(container_code, oom_killed=False) == status


def test_the_engines_word_on_memory_is_kept() -> None:
    assert exit_status(DISK_FULL_EXIT + 1, oom_killed=True) == ExitStatus(
        1, oom_killed=True, disk_full=True
    )


def test_the_job_files_arguments_and_environment_reach_pytest(root: Path) -> None:
    (root / JOB_FILE).write_text(
        json.dumps({"pytest_args": ["-k", "chosen", "-s"], "env": {"FOO": "bar", "CI": "true"}})
    )
    (root / WORKSPACE / "test_it.py").write_text(
        "import os\n"
        "def test_chosen():\n"
        "    print('FOO is', os.environ['FOO'], 'CI is', os.environ['CI'])\n"
        "def test_other():\n"
        "    assert False, 'deselected by -k'\n"
    )

    code, out, _ = run(root, "python", "-m", "pytest", "-p", "no:cacheprovider")

    assert code == 0, out
    assert "FOO is bar CI is true" in out and "1 passed, 1 deselected" in out


def test_pytest_is_imported_before_the_project_arrives(root: Path, tmp_path: Path) -> None:
    """The job's interpreter loads pytest while it waits (off the job's path). Seen through a
    stand-in `pytest` module that says when it is imported."""
    (root / READY_MARKER).unlink()
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    said = tmp_path / "imported"
    (stand_in / "pytest.py").write_text(f"open({str(said)!r}, 'w').close()\n")
    (root / WORKSPACE / "probe.py").write_text("import sys\nprint('pytest' in sys.modules)\n")
    script = bootstrap(wait_seconds=30, root=str(root))
    process = subprocess.Popen(
        [sys.executable, "-c", script, "python", "-m", "probe"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(stand_in)},
    )
    try:
        deadline = time.monotonic() + 30
        while not said.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert said.exists(), "pytest was not imported while the job waited for its project"
    finally:
        (root / READY_MARKER).touch()  # the project arrives
        out, _ = process.communicate(timeout=60)

    assert process.returncode == 0
    assert decoded(out) == "True\n"


def test_a_python_start_up_variable_gets_a_fresh_interpreter(root: Path) -> None:
    (root / WORKSPACE / "lib").mkdir()
    (root / WORKSPACE / "lib" / "helper.py").write_text("VALUE = 7\n")
    (root / JOB_FILE).write_text(json.dumps({"pytest_args": [], "env": {"PYTHONPATH": "lib"}}))
    (root / WORKSPACE / "test_it.py").write_text(
        "import helper\ndef test_it():\n    assert helper.VALUE == 7\n"
    )

    code, out, _ = run(root, "python", "-m", "pytest", "-p", "no:cacheprovider")

    assert code == 0, out


def test_a_linked_project_is_importable_with_its_metadata_and_scripts(
    root: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    source = root / WORKSPACE / "src"
    (source / "demo").mkdir(parents=True)
    (source / "demo" / "__init__.py").write_text("def main():\n    print('script ran')\n")
    (source / "demo" / "__main__.py").write_text(
        "import importlib.metadata, subprocess\n"
        "print('version', importlib.metadata.version('demo'))\n"
        "subprocess.run(['demo'], check=True)\n"
    )
    pyproject = '[project]\nname = "demo"\nversion = "3.1"\n[project.scripts]\ndemo = "demo:main"\n'
    link = project_link(
        tomllib.loads(pyproject), top_level=frozenset({"src"}), workdir=str(root / WORKSPACE)
    )
    assert link is not None
    (root / JOB_FILE).write_text(json.dumps({"env": {}, "link_project": link.as_json()}))
    script = bootstrap(wait_seconds=5, root=str(root))
    environment = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}

    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, "python", "-m", "demo"],
        capture_output=True,
        env=environment,
        timeout=60,
        check=False,
    )

    output = decoded(done.stdout)
    assert done.returncode == 0, output
    assert output.splitlines()[1:] == ["version 3.1", "script ran"]
    assert output.startswith(f"[ci] project demo installed (editable, linked: {source} ")


def test_a_job_printing_faster_than_docker_reads_waits_with_little_output_queued(
    root: Path, tmp_path: Path
) -> None:
    """Every byte queued between the job and Docker delays each later line: when Docker (here:
    nobody) takes nothing, the job must block after well under a megabyte, not fill a 1 MiB
    pipe and a batch as large behind it."""
    written = tmp_path / "written"
    printer = (
        "import os, sys, time\n"
        f"counter = os.open({str(written)!r}, os.O_WRONLY | os.O_CREAT)\n"
        "line = 'x' * 94 + '\\n'\n"
        "total = 0\n"
        "while True:\n"
        "    for _ in range(100):\n"
        "        sys.stdout.write(line)\n"
        "    total += 9500\n"
        "    os.pwrite(counter, str(total).encode().ljust(20), 0)\n"
    )
    process = start(root, "python", "-c", printer)  # its stdout is never read
    try:
        last, stable_since, deadline = 0, time.monotonic(), time.monotonic() + 20
        while last == 0 or time.monotonic() - stable_since < 0.5:
            assert time.monotonic() < deadline, "the job never started, or never stopped"
            now = int(written.read_text() or "0") if written.exists() else 0
            if now != last:
                last, stable_since = now, time.monotonic()
            time.sleep(0.02)
    finally:
        process.kill()
        process.communicate(timeout=10)

    # The job's pipe (256 KiB), PID 1's batch (256 KiB) and the 64 KiB pipe to "Docker".
    assert last < 800_000


def test_no_message_ends_inside_a_character_when_a_write_spans_batches(root: Path) -> None:
    """PID 1 reads a batch at a time, which cuts a large write anywhere; Docker would store a
    message ending in half a character as U+FFFD."""
    printer = "import sys\nsys.stdout.write('€' * 300_000 + 'end')\n"  # 900 KB in one write

    out, _ = start(root, "python", "-c", printer).communicate(timeout=60)

    records = [decode_frame(message) for message in docker_messages(out)]
    messages = [r.data for r in records if r.channel != END_CHANNEL]
    assert len(messages) > 1
    assert "".join(data.decode() for data in messages) == "€" * 300_000 + "end"
