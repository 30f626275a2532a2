"""The `ci` command: submit a project's tests, follow them, and look at past jobs.

One click group with a context object (`CLIState`, in `cli_state`) that holds the
`--server`/`--api-key` flags, which every subcommand accepts too (the one closest to the command
wins). Client errors are turned into a message and an exit code in one place (`CIGroup.invoke`,
via `ci_client.exit_codes`); the codes are in the group's help. This module holds the group,
`ci help` and `ci submit test`; the job commands are in `cli_jobs`, `ci config` in `cli_config`.
Every group and command takes `-h`; a group without a command prints its help.

Start-up time matters for a command people type all day, so this module imports only click and
the client's light modules; httpx, pydantic models and rich are imported inside the commands
that use them (`ci --version` and `ci --help` load none of them).
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ci_client import cli_artifacts, cli_config, cli_jobs, cli_tests
from ci_client.cli_state import CLIState, connection_options, echo_json, finish, pass_state, say
from ci_client.errors import ClientError, JobRequestError
from ci_client.exit_codes import INTERRUPTED, ExitCode, exit_code_for_error
from ci_client.job_refs import resolve_job_id

if TYPE_CHECKING:
    from ci_client.client import CIClient
    from ci_client.job_request import JobRequest

EXIT_CODES_HELP = """\b
Exit codes (ci submit test, ci wait):
  0-5  pytest's own code: 0 passed, 1 tests failed, 2 interrupted,
       3 internal error, 4 usage error, 5 no tests collected
  64   usage error of ci itself
  65   bad input: project cannot be packed, or upload/request rejected
  66   job not found
  69   server unreachable or failing
  70   the job could not run (its error says why)
  77   API key rejected
  78   no API key configured, or a bad config file
  124  the job timed out
  130  the job was cancelled, or you pressed Ctrl-C (the job goes on)
  137  the tests were killed by a signal (out of memory; the job's
       exit_code is 128 + the signal's number)

\b
Configuration: --server > CI_SERVER_URL > config file > http://localhost:8000
               --api-key > CI_API_KEY > config file
  (the file: $XDG_CONFIG_HOME/ci/config, then ~/.ci/config; see ci config)

\b
Shell completion (bash; zsh and fish alike with zsh_source, fish_source):
  eval "$(_CI_COMPLETE=bash_source ci)"      in ~/.bashrc"""


class CIGroup(click.Group):
    """The `ci` group, mapping every failure to the exit code table: usage errors to 64
    (click's default 2 would read as "pytest was interrupted"), client errors through
    `exit_code_for_error` with their message, Ctrl-C to 130."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            exc.show()
            raise click.exceptions.Exit(ExitCode.USAGE) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.show()
            raise click.exceptions.Exit(ExitCode.USAGE) from exc
        except ClientError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            raise click.exceptions.Exit(exit_code_for_error(exc)) from exc
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


@click.group(
    cls=CIGroup,
    epilog=EXIT_CODES_HELP,
    invoke_without_command=True,
    context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="ci-service", prog_name="ci", message="%(prog)s %(version)s")
@connection_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run your project's tests on the CI server and follow them live.

    \b
    Quick start:
      ci config set api_key ci_...      once (or export CI_API_KEY)
      ci submit test                    zip this directory, run pytest, stream it
      ci list                           your recent jobs
      ci help COMMAND                   what a command does (or COMMAND -h)
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command("help", short_help="Show the help of ci or of one of its commands.")
@click.argument("command", nargs=-1)
@connection_options
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show the help of ci, or of COMMAND (`ci help submit test`)."""
    parent = ctx.parent
    assert parent is not None
    target: click.Command = cli
    target_ctx = parent
    for name in command:
        if not isinstance(target, click.Group):
            raise click.UsageError(f"{target_ctx.command_path} has no subcommands")
        found = target.get_command(target_ctx, name)
        if found is None:
            raise click.UsageError(f"no such command: {name!r}; `ci help` lists them")
        target_ctx = click.Context(found, info_name=name, parent=target_ctx)
        target = found
    click.echo(target_ctx.get_help())


# -- submitting and following --------------------------------------------------------------


@cli.group(invoke_without_command=True)
@connection_options
@click.pass_context
def submit(ctx: click.Context) -> None:
    """Submit work to the CI server."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


PYTEST_ARGS = "pytest_args"
LATEST_WITH_FAILURES = "latest"


class PytestArgsCommand(click.Command):
    """A command whose arguments after the first `--` are pytest's (in `ctx.meta`), kept
    apart from its own, so `ci submit test -- -k parse` never takes `-k` for PATH."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta[PYTEST_ARGS] = tuple(args[split + 1 :])
            args = args[:split]
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            raise click.NoSuchOption(
                exc.option_name,
                message=f"No such option: {exc.option_name}; pytest's options go after `--`: "
                f"ci submit test -- {exc.option_name}",
                possibilities=exc.possibilities,
                ctx=ctx,
            ) from None

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "[-- PYTEST_ARGS...]"]


@submit.command("test", cls=PytestArgsCommand)
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--async", "detach", is_flag=True, help="Print the job id and exit at once.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the files that would be packed and their total size, and exit (no server).",
)
@click.option(
    "-e",
    "--env",
    "env_options",
    metavar="KEY=VALUE",
    multiple=True,
    help="Set an environment variable for the tests (repeatable); -e KEY alone passes KEY's "
    "value from here.",
)
@click.option(
    "--python",
    "python",
    metavar="X.Y",
    help="Run on this Python version (see the server's GET /runtimes); default: the newest "
    "the project's requires-python allows, else the server's default.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='With --async, print {"job_id": ...}; else print only the finished job as JSON.',
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="With --async, print only the job id; else print no log (the exit code tells).",
)
@click.option(
    "--extra",
    "extras",
    metavar="NAME",
    multiple=True,
    help="Install this extra of the project (repeatable); instead of the automatic choice "
    "(each of test, tests, dev the project has).",
)
@click.option(
    "--group",
    "groups",
    metavar="NAME",
    multiple=True,
    help="Install this PEP 735 dependency group (repeatable); instead of the automatic choice.",
)
@click.option(
    "--no-extras",
    is_flag=True,
    help="Install no extras and no groups but those named by --extra and --group.",
)
@click.option(
    "--rerun-failed",
    "rerun_failed",
    metavar="[JOB_ID]",
    is_flag=False,
    flag_value=LATEST_WITH_FAILURES,
    default=None,
    help="Run only the tests that failed in JOB_ID (default: your latest job of this project "
    "with failures), against the current tree.",
)
@click.option(
    "--artifact",
    "artifacts",
    metavar="PATTERN",
    multiple=True,
    help="Keep the files matching this glob, relative to the project root, after pytest "
    "exits (repeatable; `htmlcov/**` for a tree); junit.xml is always kept. "
    "`ci artifacts JOB_ID` fetches them.",
)
@connection_options
@pass_state
def submit_test(
    state: CLIState,
    path: Path | None,
    detach: bool,
    dry_run: bool,
    env_options: tuple[str, ...],
    python: str | None,
    as_json: bool,
    quiet: bool,
    extras: tuple[str, ...],
    groups: tuple[str, ...],
    no_extras: bool,
    rerun_failed: str | None,
    artifacts: tuple[str, ...],
) -> None:
    """Zip the project at PATH and run its tests with pytest.

    Without PATH, the project root is the first directory from here upward holding
    pyproject.toml, requirements.txt, setup.py, setup.cfg or .git (else this directory).
    Arguments after `--` go to pytest: `ci submit test -- -k parse -x`. Follows the job live
    and exits with pytest's exit code; with --async, prints `Job submitted: <id>` and exits 0
    (`ci wait <id>` follows it later).
    """
    from ci_client.archive import format_size, list_project
    from ci_client.job_request import JobRequest, check_packed, parse_env_options
    from ci_client.preflight import prepare_upload
    from ci_client.project_root import find_project_root
    from ci_client.provenance import project_name

    if path is None:
        root = find_project_root(Path.cwd())
        path = root.path
        say(root.describe())
    if dry_run:
        files = list_project(path)
        for name, _ in files:
            click.echo(name)
        total = sum(size for _, size in files)
        click.echo(f"{len(files)} files, {format_size(total)} unpacked")
        return
    state.config().require_api_key()
    pytest_args: tuple[str, ...] = click.get_current_context().meta.get(PYTEST_ARGS, ())
    request = JobRequest(
        pytest_args=pytest_args,
        env=parse_env_options(env_options, local=os.environ),
        python=python,
        extras=extras if extras or no_extras else None,
        groups=groups if groups or no_extras else None,
        artifacts=artifacts,
    )
    prepared = prepare_upload(path, request=request, connect=state.client)
    archive = prepared.archive
    with prepared.client as client:
        check_packed(archive, prepared.limits)
        request = replace(request, project=project_name(path), git=prepared.git)
        if rerun_failed is not None:
            request = replace(
                request, rerun_failed_of=_rerun_source(client, rerun_failed, request.project)
            )
        say(
            f"Packed {archive.file_count} files of {request.project} from {path} "
            f"({format_size(archive.size)} zipped, {format_size(archive.unpacked_bytes)} unpacked"
            f"{', chosen by git' if archive.used_git else ''}){_describe_git(request)}"
        )
        if detach:
            job_id = client.submit_async(archive.data, request)
            if as_json:
                echo_json({"job_id": job_id})
            elif quiet:
                click.echo(job_id)
            else:
                click.echo(f"Job submitted: {job_id}")
                say(f"Follow it with `ci wait {job_id} --all`.")
            return
        events = client.submit_stream(archive.data, request)
        finish(cli_jobs.follow(client, events, job_id=None, as_json=as_json, quiet=quiet))


def _rerun_source(client: CIClient, wanted: str, project: str | None) -> str:
    """The job whose failures to rerun, said first; `JobRequestError` when there is none."""
    if wanted == LATEST_WITH_FAILURES:
        candidates = client.list_jobs(project=project, status="completed", limit=50)
        found = next((job for job in candidates if job.tests.failed + job.tests.errors), None)
        if found is None:
            raise JobRequestError(
                f"none of your recent jobs of {project} has failed tests, so there is nothing "
                "to rerun; run `ci submit test` without --rerun-failed"
            )
        job = found
    else:
        job = client.get_job(resolve_job_id(client, wanted))
    failing = job.tests.failed + job.tests.errors
    if not failing:
        raise JobRequestError(
            f"job {job.id} has no failed tests, so there is nothing to rerun; run "
            "`ci submit test` without --rerun-failed"
        )
    say(f"Rerunning only the {failing} failed test(s) of job {job.id}, on the current tree")
    return job.id


def _describe_git(request: JobRequest) -> str:
    git = request.git
    if git is None:
        return ""
    where = f" on {git['branch']}" if git["branch"] else ""
    return f"; commit {git['commit'][:12]}{where}{', uncommitted changes' if git['dirty'] else ''}"


for command in (
    cli_jobs.wait,
    cli_jobs.list_jobs,
    cli_jobs.status,
    cli_jobs.logs,
    cli_jobs.cancel,
    cli_tests.tests,
    cli_tests.flaky,
    cli_artifacts.artifacts,
    cli_jobs.whoami,
    cli_config.config,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the `ci` console script."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Test output is arbitrary text: a character the terminal cannot encode must not
            # crash the command halfway through a job's log.
            stream.reconfigure(errors="replace")
    cli.main(prog_name="ci")
