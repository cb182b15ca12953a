"""`python -m focusguard` = the `focusguard` console script."""

from focusguard.cli import main

raise SystemExit(main())
