"""`python -m ci_controller`: the same command as `ci-controller`."""

from ci_controller.cli import main

main(prog_name="python -m ci_controller")
