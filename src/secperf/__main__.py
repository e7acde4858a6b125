"""Run the secperf CLI with ``python -m secperf``."""

from secperf.cli import main

main()
