"""The shell script a dependency build runs, from a `DependencyPlan`'s steps.

It installs with uv when the image has it (every job image `scripts/build-job-image` makes
does) and with pip otherwise, into the interpreter `python` names, which must be writable
by the job user the build runs as. A uv.lock needs uv to be read (`uv export --frozen`): an
image without uv gets uv for that build only, in a directory removed afterwards. Every step
prints a `[ci]` line first, so the job log says what is being installed from where.

No cache outlives the build (`UV_NO_CACHE`, `PIP_NO_CACHE_DIR`), for the reason given in
`docker.dependency_images`. uv compiles the installed modules to bytecode as pip does
(`UV_COMPILE_BYTECODE`): the jobs run with `PYTHONDONTWRITEBYTECODE`, so without it every job
would compile every dependency it imports again (0.5 s for ten small ones). The staged
files and the project's source are removed at the end, so the committed image holds the
installed distributions and nothing of the upload. They are staged under `BUILD_ROOT`, on the
container's writable layer: a job container's /tmp is a tmpfs mount, and files copied in
before its start would land underneath it.

`install_then_exec_script` is the same install run by a job's own container before its tests
(`docker.job_install`): no bytecode (that container is used once, and the tests compile
what they import in memory, as they would after a plain `uv pip install`), the installer's
settings kept to a subshell so the tests do not inherit them, then `INSTALLED_MARKER` alone on
a line, and the job's first process (`exec "$@"`), which waits for its project.
"""

from __future__ import annotations

import shlex

from ci_controller.dependency_plan import InstallStep, StepKind

BUILD_ROOT = "/ci-build"
"""The build's own directory, owned by the job user; left empty behind."""
STAGING = f"{BUILD_ROOT}/deps"
"""Where the plan's files are copied before the build starts (the working directory)."""
SOURCE = f"{BUILD_ROOT}/src"
"""Where the project's tar is unpacked when a step builds it from source."""
SCRATCH = f"{BUILD_ROOT}/tmp"
"""The installer's temporary files (`TMPDIR`): off the job's bounded /tmp."""
INSTALLED_MARKER = "[ci] dependencies installed; the network goes before the tests start"
"""The line a job container's install prints when it has succeeded (see the module doc)."""
NOT_WRITABLE_EXIT = 97
LOCKED_REQUIREMENTS = ".ci-locked.txt"

_PRELUDE = f"""
export PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    UV_NO_CACHE=1 UV_NO_PROGRESS=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 PYTHONUNBUFFERED=1 \\
    TMPDIR={SCRATCH}
exec 2>&1
python=$(command -v python || command -v python3)
finish() {{ rm -rf {STAGING} {SOURCE} {SCRATCH} /tmp/ci-uv; exit "$1"; }}
mkdir -p {SCRATCH}
site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ ! -w "$site" ]; then
    echo "$site is not writable by uid $(id -u), the job user dependency builds run as"
    finish {NOT_WRITABLE_EXIT}
fi
cd {STAGING} || finish 1
if uv=$(command -v uv); then
    echo "[ci] installing with $("$uv" --version)"
    install() {{ "$uv" pip install --python "$python" "$@"; }}
    uninstall() {{ "$uv" pip uninstall --python "$python" "$@"; }}
else
    uv=""
    echo "[ci] installing with pip (the image has no uv)"
    install() {{ "$python" -m pip install --no-warn-script-location "$@"; }}
    uninstall() {{ "$python" -m pip uninstall -y "$@"; }}
fi
need_uv() {{
    [ -n "$uv" ] && return 0
    echo "[ci] fetching uv for this build: reading uv.lock needs it"
    "$python" -m pip install -q --target /tmp/ci-uv uv && uv=/tmp/ci-uv/bin/uv
}}
"""

_FIND_SOURCE_DISTRIBUTION = f"""
import importlib.metadata as m, json
for d in m.distributions():
    url = json.loads(d.read_text("direct_url.json") or "{{}}").get("url", "")
    if url.startswith("file://{SOURCE}/"):
        print(d.metadata["Name"])
"""


def install_script(steps: tuple[InstallStep, ...]) -> str:
    """The build's script: each step in order, stopping at the first that fails (with its
    exit code), cleaning up either way."""
    lines = [_PRELUDE]
    for step in steps:
        lines.extend(_step(step))
    lines.append("finish 0")
    return "\n".join(lines) + "\n"


def install_then_exec_script(steps: tuple[InstallStep, ...]) -> str:
    """The install of a job's own container: `install_script` without bytecode, in a
    subshell (its exit code is the container's when it fails), then `INSTALLED_MARKER` and
    the command given as the script's arguments."""
    install = install_script(steps).replace("UV_COMPILE_BYTECODE=1", "UV_COMPILE_BYTECODE=0")
    return f'(\n{install})  || exit $?\necho {shlex.quote(INSTALLED_MARKER)}\nexec "$@"\n'


def _step(step: InstallStep) -> list[str]:
    if step.kind is StepKind.REQUIREMENTS:
        files = " ".join(f"-r {shlex.quote(path)}" for path in step.args)
        return [
            f"echo {shlex.quote('[ci] installing ' + ', '.join(step.args))}",
            f"install {files} || finish $?",
        ]
    if step.kind is StepKind.LOCK:
        options = " ".join(shlex.quote(option) for option in step.args)
        return [
            "echo '[ci] installing what uv.lock locks (uv export --frozen: no re-resolve)'",
            "need_uv || finish $?",
            f'"$uv" export --frozen --quiet {options} -o {LOCKED_REQUIREMENTS} || finish $?',
            f"install --no-deps -r {LOCKED_REQUIREMENTS} || finish $?",
        ]
    extras = f"[{','.join(step.args)}]" if step.args else ""
    target = shlex.quote(f"{SOURCE}/workspace{extras}")
    return [
        "echo '[ci] installing what the project needs, by building it from its source'",
        f"install {target} || finish $?",
        f'names=$("$python" -c {shlex.quote(_FIND_SOURCE_DISTRIBUTION)}) || finish $?',
        '[ -z "$names" ] || uninstall $names || finish $?',
    ]
