"""`python -m rolegen` runs the CLI."""

from __future__ import annotations

from rolegen.cli import main

main()
