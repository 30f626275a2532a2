"""How our pytest plugin reaches a job's container, and what the bootstrap needs to load it.

The plugin (`job_plugin/_ci_pytest_results.py`, see its docstring for the results channel)
travels in the project tar like the job file: `plugin_files` are entries at the container's
root, outside the workspace, so no upload collides with them and the tests do not see them in
their tree. The bootstrap appends `PLUGIN_DIR` to `sys.path` (and `PYTHONPATH`, for a job that
execs a fresh interpreter or pytest-xdist workers), and `JOB_COMMAND` names the module with
`-p`: nothing is installed into the image or the project's environment, so it works whatever
the project pins. A rerun of failures adds the node ids to keep as a file beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

PLUGIN_MODULE = "_ci_pytest_results"
PLUGIN_DIR = ".ci-plugins"
"""At the container's root."""
RESULTS_FD_VARIABLE = "CI_RESULTS_FD"
RERUN_VARIABLE = "CI_RERUN_NODE_IDS"
RERUN_FILE = f"{PLUGIN_DIR}/rerun-node-ids"
_SOURCE = Path(__file__).parent / "job_plugin" / f"{PLUGIN_MODULE}.py"


def plugin_files(rerun_node_ids: Sequence[str] = ()) -> list[tuple[str, bytes]]:
    """The tar entries (path from the container's root, content) every job gets."""
    files = [(f"{PLUGIN_DIR}/{PLUGIN_MODULE}.py", _SOURCE.read_bytes())]
    if rerun_node_ids:
        files.append((RERUN_FILE, "".join(f"{nodeid}\n" for nodeid in rerun_node_ids).encode()))
    return files


def plugin_environment(rerun_node_ids: Sequence[str] = ()) -> dict[str, str]:
    """What the job's environment gets for the plugin (beside the descriptor the bootstrap
    sets)."""
    return {RERUN_VARIABLE: f"/{RERUN_FILE}"} if rerun_node_ids else {}
