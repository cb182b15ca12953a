"""The command line (`cli`: run, check, check-config, install-service, baseline-reset via
`baseline_cli`, collect, eval): parses arguments, turns bad input into one message and exit 2,
and calls the stages. `common_cli` holds what the commands share. Nothing imports `commands`."""

from __future__ import annotations
