"""`python -m focusguard` = the `focusguard` console script."""

from focusguard.commands.cli import main

raise SystemExit(main())
