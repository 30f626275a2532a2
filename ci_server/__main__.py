"""`python -m ci_server`: the same command as `ci-server`."""

from ci_server.cli import main

main(prog_name="python -m ci_server")
