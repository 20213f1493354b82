"""Background workers, each its own process: `python -m workers <name> [--burst] [--check]`."""
