"""The `ci` command: submit a project's tests, follow them, and look at past jobs.

One click group with a context object (`CLIState`) that holds the `--server`/`--api-key` flags,
which every subcommand accepts too (the one closest to the command wins). Client errors are
turned into a message and an exit code in one place (`CIGroup.invoke`, via
`ci_client.exit_codes`); the codes are in the group's help.

Start-up time matters for a command people type all day, so this module imports only click and
the client's light modules; httpx, pydantic models and rich are imported inside the commands
that use them (`ci --version` and `ci --help` load none of them).
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ci_client.config import (
    KNOWN_KEYS,
    ResolvedConfig,
    Source,
    config_path,
    mask_secret,
    resolve_config,
    write_config_value,
)
from ci_client.errors import ClientError, JobNotFound
from ci_client.exit_codes import INTERRUPTED, ExitCode, exit_code_for_error
from ci_client.output import colour_wanted

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import httpx

    from ci_client.client import CIClient, Reconnecting, ReconnectPolicy
    from ci_client.job_request import JobRequest
    from ci_client.stream import Event

JOB_STATUSES = ("queued", "running", "completed")
"""The values of `ci_common.models.JobStatus`, spelled out so `ci --help` needs no pydantic."""

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
Configuration: --server > CI_SERVER_URL > ~/.ci/config > http://localhost:8000
               --api-key > CI_API_KEY > ~/.ci/config"""


@dataclass
class CLIState:
    """What the group hands to every command: the connection flags, and (for tests) a
    transport and reconnect policy to build the client with."""

    server: str | None = None
    api_key: str | None = None
    transport: httpx.BaseTransport | None = None
    reconnect: ReconnectPolicy | None = None

    def config(self) -> ResolvedConfig:
        return resolve_config(
            flag_server=self.server,
            flag_api_key=self.api_key,
            env=os.environ,
            path=config_path(),
        )

    def client(self) -> CIClient:
        from ci_client.client import CIClient

        config = self.config()
        return CIClient(
            server_url=config.server_url,
            api_key=config.require_api_key(),
            transport=self.transport,
            reconnect=self.reconnect,
            on_reconnect=_report_reconnect,
        )


def _report_reconnect(event: Reconnecting) -> None:
    say(
        f"Lost the stream of job {event.job_id} ({event.problem}); reconnecting in "
        f"{event.delay:.1f}s (attempt {event.attempt}/{event.max_attempts})…",
        "yellow",
    )


pass_state = click.make_pass_decorator(CLIState, ensure=True)
_F = TypeVar("_F", bound="Callable[..., Any]")


def _remember_server(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CLIState).server = value


def _remember_api_key(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CLIState).api_key = value


def connection_options(command: _F) -> _F:
    """`--server` and `--api-key`, accepted by the group and by every subcommand."""
    command = click.option(
        "--api-key",
        metavar="KEY",
        expose_value=False,
        callback=_remember_api_key,
        help="API key (else CI_API_KEY, else api_key in ~/.ci/config).",
    )(command)
    return click.option(
        "--server",
        metavar="URL",
        expose_value=False,
        callback=_remember_server,
        help="Server URL (else CI_SERVER_URL, else ~/.ci/config, else http://localhost:8000).",
    )(command)


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


@click.group(cls=CIGroup, epilog=EXIT_CODES_HELP, context_settings={"max_content_width": 100})
@click.version_option(package_name="ci-service", prog_name="ci", message="%(prog)s %(version)s")
@connection_options
def cli() -> None:
    """Run your project's tests on the CI server and follow them live.

    \b
    Quick start:
      ci config set api_key ci_...      once (or export CI_API_KEY)
      ci submit test                    zip this directory, run pytest, stream it
      ci list                           your recent jobs
    """


def say(message: str, colour: str | None = None) -> None:
    """A status line on stderr (never mixed into the test output on stdout)."""
    wanted = colour_wanted(sys.stderr, os.environ)
    text = click.style(message, fg=colour) if colour and wanted else message
    click.echo(text, err=True, color=wanted)


def finish(code: int) -> NoReturn:
    click.get_current_context().exit(code)


# -- submitting and following --------------------------------------------------------------


@cli.group()
@connection_options
def submit() -> None:
    """Submit work to the CI server."""


PYTEST_ARGS = "pytest_args"


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
    artifacts: tuple[str, ...],
) -> None:
    """Zip the project at PATH and run its tests with pytest.

    Without PATH, the project root is the first directory from here upward holding
    pyproject.toml, requirements.txt, setup.py, setup.cfg or .git (else this directory).
    Arguments after `--` go to pytest: `ci submit test -- -k parse -x`. Follows the job live
    and exits with pytest's exit code; with --async, prints `Job submitted: <id>` and exits 0
    (`ci wait <id>` follows it later).
    """
    from ci_client.archive import format_size, list_project, pack_project
    from ci_client.job_request import JobRequest, check_packed, parse_env_options
    from ci_client.project_root import find_project_root
    from ci_client.provenance import git_provenance, project_name

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
        artifacts=artifacts,
    )
    with state.client() as client:
        limits = client.limits()
        request.check(limits)
        archive = pack_project(path, max_bytes=limits.max_upload_bytes)
        check_packed(archive, limits)
        request = replace(request, project=project_name(path), git=git_provenance(path))
        say(
            f"Packed {archive.file_count} files of {request.project} from {path} "
            f"({format_size(archive.size)} zipped, {format_size(archive.unpacked_bytes)} unpacked"
            f"{', chosen by git' if archive.used_git else ''}){_describe_git(request)}"
        )
        if detach:
            job_id = client.submit_async(archive.data, request)
            click.echo(f"Job submitted: {job_id}")
            say(f"Follow it with `ci wait {job_id} --all`.")
            return
        finish(_follow(client, client.submit_stream(archive.data, request), job_id=None))


def _describe_git(request: JobRequest) -> str:
    git = request.git
    if git is None:
        return ""
    where = f" on {git['branch']}" if git["branch"] else ""
    return f"; commit {git['commit'][:12]}{where}{', uncommitted changes' if git['dirty'] else ''}"


@cli.command()
@click.argument("job_id")
@click.option("--all", "replay", is_flag=True, help="Replay the log from the start first.")
@connection_options
@pass_state
def wait(state: CLIState, job_id: str, replay: bool) -> None:
    """Reattach to job JOB_ID, follow it to the end, exit with its code.

    Forward-only by default (new output from now on); --all replays the whole log first.
    """
    with state.client() as client:
        job_id = _resolve_job_id(client, job_id)
        say(f"Following job {job_id} (Ctrl-C detaches; the job goes on)")
        finish(_follow(client, client.stream(job_id, from_beginning=replay), job_id=job_id))


def _follow(client: CIClient, events: Iterator[Event], *, job_id: str | None) -> int:
    from ci_client.follow import follow_job
    from ci_client.output import LogWriter

    def lookup_error(job: str) -> str | None:
        try:
            return client.get_job(job).error
        except ClientError:
            return None

    out = LogWriter(sys.stdout, keep_colour=colour_wanted(sys.stdout, os.environ))
    return follow_job(events, job_id=job_id, out=out, say=say, lookup_error=lookup_error)


# -- looking at jobs -----------------------------------------------------------------------


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the full jobs as a JSON array.")
@click.option("--status", type=click.Choice(JOB_STATUSES), help="Only jobs in this status.")
@click.option("--project", metavar="NAME", help="Only jobs of this project.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@connection_options
@pass_state
def list_jobs(
    state: CLIState, as_json: bool, status: str | None, project: str | None, limit: int
) -> None:
    """Your jobs, newest first."""
    with state.client() as client:
        jobs = client.list_jobs(status=status, project=project, limit=limit)
    if as_json:
        click.echo(json.dumps([job.model_dump(mode="json") for job in jobs], indent=2))
        return
    if not jobs:
        filtered = status is not None or project is not None
        say("No jobs." if filtered else "No jobs yet. Submit one with `ci submit test`.")
        return
    from ci_client.render import print_job_table

    print_job_table(jobs, stream=sys.stdout, colour=colour_wanted(sys.stdout, os.environ))


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@connection_options
@pass_state
def status(state: CLIState, job_id: str, as_json: bool) -> None:
    """Show one job: status, conclusion, exit code, times, error."""
    from ci_client.render import job_card

    with state.client() as client:
        job = client.get_job(_resolve_job_id(client, job_id))
    if as_json:
        click.echo(job.model_dump_json(indent=2))
    else:
        click.echo("\n".join(job_card(job)))


@cli.command(short_help="Print a job's whole log so far.")
@click.argument("job_id")
@connection_options
@pass_state
def logs(state: CLIState, job_id: str) -> None:
    """Print the whole log of job JOB_ID so far (no following; see `ci wait`)."""
    from ci_client.output import LogWriter

    with state.client() as client:
        text = client.logs(_resolve_job_id(client, job_id))
    out = LogWriter(sys.stdout, keep_colour=colour_wanted(sys.stdout, os.environ))
    out.write(text)
    out.finish()


@cli.command(short_help="Cancel a job.")
@click.argument("job_id")
@connection_options
@pass_state
def cancel(state: CLIState, job_id: str) -> None:
    """Cancel job JOB_ID (a queued job ends at once, a running one is stopped)."""
    with state.client() as client:
        job = client.cancel(_resolve_job_id(client, job_id))
    if job.conclusion is None:
        say(f"Cancellation of job {job.id} requested; `ci wait {job.id}` follows it to the end.")
    elif job.conclusion.value == "cancelled":
        say(f"Job {job.id} is cancelled.")
    else:
        say(f"Job {job.id} had already completed ({job.conclusion.value}); nothing to cancel.")


def _resolve_job_id(client: CIClient, text: str) -> str:
    """A full job id, or the one of the user's recent jobs it is a prefix of (as `ci list`
    shows 8 characters)."""
    text = text.strip().lower()
    if len(text) >= 32 or not text:
        return text
    if any(char not in "0123456789abcdef-" for char in text):
        raise JobNotFound(f"{text!r} is not a job id; `ci list` shows your jobs' ids", job_id=text)
    matches = [job.id for job in client.list_jobs(limit=100) if job.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise JobNotFound(
            f"none of your 100 most recent jobs has an id starting with {text}; give the full "
            "id (`ci list` shows your jobs)",
            job_id=text,
        )
    raise click.UsageError(f"{text} matches {len(matches)} jobs; give more of the id")


# -- configuration -------------------------------------------------------------------------


@cli.group()
@connection_options
def config() -> None:
    """Show or change ~/.ci/config (server_url, api_key)."""


@config.command("set")
@click.argument("key", type=click.Choice(KNOWN_KEYS))
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Store KEY=VALUE in ~/.ci/config (created with mode 0600)."""
    path = config_path()
    write_config_value(path, key=key, value=value)
    shown = mask_secret(value) if key == "api_key" else value
    say(f"Set {key} = {shown} in {path}")


@config.command("show")
@connection_options
@pass_state
def config_show(state: CLIState) -> None:
    """Show the server URL and API key ci would use, and where each comes from."""
    resolved = state.config()
    key = mask_secret(resolved.api_key) if resolved.api_key else "(none)"
    click.echo(f"server_url = {resolved.server_url}  ({resolved.server_url_source.value})")
    click.echo(f"api_key    = {key}  ({resolved.api_key_source.value})")
    click.echo(f"file       = {resolved.path}{'' if resolved.path.exists() else ' (absent)'}")
    if resolved.api_key_source is Source.NONE:
        say("No API key: `ci config set api_key KEY` or export CI_API_KEY.", "yellow")


resolve_job_id = _resolve_job_id
"""For commands defined in their own modules."""

from ci_client.artifacts_command import artifacts as _artifacts_command  # noqa: E402

cli.add_command(_artifacts_command)


def main() -> None:
    """Entry point of the `ci` console script."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Test output is arbitrary text: a character the terminal cannot encode must not
            # crash the command halfway through a job's log.
            stream.reconfigure(errors="replace")
    cli.main(prog_name="ci")
