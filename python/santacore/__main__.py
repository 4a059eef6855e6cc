"""`python -m santacore` is the `santacore` command."""

import sys

from santacore.cli import main

sys.exit(main())
