"""Our pytest plugin that writes `junit.xml` for every job, whatever the project's options.

Loaded with `-p _ci_junitxml` from the directory the bootstrap puts on the path; it runs
inside the job's container, on the project's own pytest, and imports nothing of ours. It
registers a second instance of pytest's own JUnit writer (`_pytest.junitxml.LogXML`) aimed at
the path in `CI_JUNITXML`, configured from the project's ini options (`junit_family`,
`junit_suite_name`, ...). A project that sets `--junitxml` itself (in its arguments or its
`addopts`) still gets its own file: pytest's instance writes that one, ours writes ours. On a
pytest-xdist worker it does nothing, like pytest's own option: the controller process writes
the report. If this pytest's writer cannot be built (a version whose internals differ), the
job runs on without our report and says so.
"""

from __future__ import annotations

import os

import pytest

PATH_VARIABLE = "CI_JUNITXML"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(PATH_VARIABLE)
    if not path or hasattr(config, "workerinput"):
        return
    try:
        from _pytest.junitxml import LogXML

        class QuietLogXML(LogXML):
            """Says nothing at the end: "generated xml file: /.ci-output/junit.xml" in every
            job's output would name a path the user never asked for."""

            def pytest_terminal_summary(self, terminalreporter: object, config: object) -> None:
                return None

        writer = QuietLogXML(
            path,
            config.option.junitprefix,
            config.getini("junit_suite_name"),
            config.getini("junit_logging"),
            config.getini("junit_duration_report"),
            config.getini("junit_family"),
            config.getini("junit_log_passing_tests"),
        )
    except Exception as exc:  # any pytest: never break the job for our report
        print(f"[ci] junit.xml will be missing: pytest's JUnit writer is unusable here ({exc})")
        return
    config.pluginmanager.register(writer, "ci-junitxml")
