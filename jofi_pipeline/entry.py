"""The `jofi-pipeline` console script: a process of its own for one command (see collector.py)."""

from jofi_pipeline import collector


def run() -> None:
    collector.entry()  # before the CLI's own imports: they are start-up too
    from jofi_pipeline.cli import main

    main()
