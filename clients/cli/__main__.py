"""`python -m clients.cli`: the same as the `mediadl` console script."""

from __future__ import annotations

import sys

from clients.cli import main

sys.exit(main())
