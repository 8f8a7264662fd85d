"""Guarded role changes. Each procedure is a list of Steps, so `--dry-run` prints the very runbook it runs."""
