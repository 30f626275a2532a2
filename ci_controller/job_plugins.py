"""How our pytest plugins reach a job's container, and what the bootstrap needs to load them.

Two plugins (`job_plugin/`), each loaded with `-p` (`PLUGIN_ARGUMENTS`, part of the job's
command): `_ci_pytest_results` reports each test's result on the results channel (see its
docstring and `container_output`), `_ci_junitxml` writes the job's `junit.xml` where PID 1
finds it (`JUNIT_VARIABLE`, see `artifacts`). They travel in the project tar like the job
file: `plugin_files` are entries at the container's root, outside the workspace, so no upload
collides with them and the tests do not see them in their tree. The bootstrap appends
`PLUGIN_DIR` to `sys.path` (and `PYTHONPATH`, for a job that execs a fresh interpreter or
pytest-xdist workers): nothing is installed into the image or the project's environment, so
they work whatever the project pins. A rerun of failures adds the node ids to keep as a file
beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PLUGIN_DIR = ".ci-plugins"
"""At the container's root."""
RESULTS_PLUGIN = "_ci_pytest_results"
JUNIT_PLUGIN = "_ci_junitxml"
PLUGIN_ARGUMENTS = ("-p", RESULTS_PLUGIN, "-p", JUNIT_PLUGIN)
RESULTS_FD_VARIABLE = "CI_RESULTS_FD"
"""The results pipe's write end in the job (set by the bootstrap)."""
JUNIT_VARIABLE = "CI_JUNITXML"
"""Where `_ci_junitxml` writes (set by the bootstrap)."""
RERUN_VARIABLE = "CI_RERUN_NODE_IDS"
RERUN_FILE = f"{PLUGIN_DIR}/rerun-node-ids"
_SOURCES = Path(__file__).parent / "job_plugin"


def plugin_files(rerun_node_ids: Sequence[str] = ()) -> list[tuple[str, bytes]]:
    """The tar entries (path from the container's root, content) every job gets."""
    files = [
        (f"{PLUGIN_DIR}/{module}.py", (_SOURCES / f"{module}.py").read_bytes())
        for module in (RESULTS_PLUGIN, JUNIT_PLUGIN)
    ]
    if rerun_node_ids:
        files.append((RERUN_FILE, "".join(f"{nodeid}\n" for nodeid in rerun_node_ids).encode()))
    return files


def plugin_environment(rerun_node_ids: Sequence[str] = ()) -> dict[str, str]:
    """What the job's environment gets for the plugins (beside what the bootstrap sets)."""
    return {RERUN_VARIABLE: f"/{RERUN_FILE}"} if rerun_node_ids else {}
