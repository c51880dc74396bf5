"""`python -m jofi_pipeline.simulator [options]` — same options as `jofi-pipeline simulate`."""

import typer

from .cli import simulate

if __name__ == "__main__":
    typer.run(simulate)
