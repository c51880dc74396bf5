"""`jofi-pipeline`: simulate | sync | ui | report | demo | sql | status | webhooks | import-ids | watch | publish-remote.

Heavy imports (Dagster, the simulator) happen inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import click
import typer
import typer.core

from jofi_pipeline import collector, entities, settings
from jofi_pipeline.api.config import DEFAULT_MAX_CONCURRENCY
from jofi_pipeline.query_formats import OutputFormat

SIMULATE = "simulate"
SIMULATE_HELP = "Run the local JOFI API simulator; prints its base URL and both keys."


class _Commands(typer.core.TyperGroup):
    """The command list shows each command's whole first sentence, wrapped, never cut with '...'.

    `simulate` is built when it is asked for (run, its help, the command list): its module loads
    the whole simulator (~0.05-0.08 s of every other command's start, a sync's included)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return names if SIMULATE in names else [*names, SIMULATE]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == SIMULATE and SIMULATE not in self.commands:
            self.add_command(_simulate_command(), SIMULATE)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(limit=1000)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# Plain click help (no rich panels): it wraps every text to the terminal (COLUMNS, or 80 in a pipe)
# instead of cutting option names and words with an ellipsis.
app = typer.Typer(
    cls=_Commands,
    help="Sync the JOFI API v2 into per-mode DuckDB + Parquet warehouses, and query them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


ENV_DEBUG = "JOFI_DEBUG"
_debug = False


# Commands that load Dagster and its instance before they work: the collector stays paused until
# they have (collector.py); every other command collects as usual from its start.
LOADS_DAGSTER = ("sync", "demo")


@app.callback()
def _global_options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", envvar=ENV_DEBUG, help=f"On an unexpected error, show the traceback too (or set {ENV_DEBUG}=1)."
    ),
) -> None:
    global _debug
    _debug = debug
    if ctx.invoked_subcommand not in LOADS_DAGSTER:
        collector.loaded()


def _fail(reason: str, code: int = 1) -> None:
    # The last door before the terminal: no configured secret and nothing key-shaped gets through.
    typer.secho(f"error: {settings.redact_keys(reason)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _mode(value: str) -> settings.Mode:
    try:
        return settings.parse_mode(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def sync(
    mode: str = typer.Option(..., "--mode", "-m", help="live or test."),
    full: bool = typer.Option(False, "--full", help="Refetch everything, not only what may have changed."),
    score_profile: str = typer.Option(
        "", "--score-profile", help="Backfill: fetch scorecards only for these score profile short names (comma-separated)."
    ),
    concurrency: Optional[int] = typer.Option(
        None, min=1, help=f"Max requests in flight (default {DEFAULT_MAX_CONCURRENCY})."
    ),
    rate: Optional[float] = typer.Option(None, min=0.0, help="Max requests per second (default: unlimited)."),
    data_dir: Optional[Path] = typer.Option(None, help=f"Warehouse root (default ${settings.ENV_DATA_DIR} or ./data)."),
    wait: float = typer.Option(0.0, "--wait", min=0.0, help="Seconds to wait if another sync of this mode is writing (default: fail at once)."),
) -> None:
    """Run the jofi_sync job in-process for one mode, with progress on stderr and a summary."""
    import time

    from jofi_pipeline.sync_refusal import SyncJobFailed, refuse_if_busy

    mode_value = _mode(mode)
    started = time.monotonic()
    try:
        refuse_if_busy(mode_value, data_dir, wait)  # before the sync starts, and before any run exists
        # The sync starts now in a process of its own; Dagster loads here meanwhile (sync/head_start.py).
        from jofi_pipeline.sync.head_start import head_started

        with head_started(mode_value, started, full_refresh=full, score_profile=score_profile,
                          concurrency=concurrency, rate=rate, data_dir=data_dir, wait=wait):
            from jofi_pipeline.runs import print_summary, sync_mode

            outcome = sync_mode(
                mode_value, full_refresh=full, score_profile=score_profile, concurrency=concurrency, rate=rate,
                data_dir=data_dir, wait=wait,
            )
    except SyncJobFailed as exc:
        _fail(str(exc))
    print_summary(outcome)


@app.command()
def sql(
    query: str = typer.Argument(..., help="SQL to run against the published (read-only) database."),
    mode: str = typer.Option("live", "--mode", "-m", help="live or test."),
    output: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", case_sensitive=False, help="table, csv or json (any case)."
    ),
    wide: bool = typer.Option(False, "--wide", help="Table view: every column and every value whole, however wide."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", min=1, help="Table view: show at most this many rows."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root."),
) -> None:
    """Query a mode's published warehouse, read-only."""
    from jofi_pipeline.analyst import QueryError, run_query

    try:
        text = run_query(query, _mode(mode), output.value, data_dir=data_dir, wide=wide, max_rows=max_rows)
    except QueryError as exc:
        _fail(str(exc))
    typer.echo(text)


@app.command()
def describe(
    name: Optional[str] = typer.Argument(None, help="Table or view; leave out to list them all."),
    mode: str = typer.Option("live", "--mode", "-m", help="live or test."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root."),
) -> None:
    """Explain a table or view: every column's type and documentation.

    DuckDB's DESCRIBE does not show column comments; this does (they are also in duckdb_columns()).
    """
    from jofi_pipeline.analyst import QueryError, describe_text

    try:
        text = describe_text(name, _mode(mode), data_dir=data_dir)
    except QueryError as exc:
        _fail(str(exc))
    typer.echo(text)


@app.command()
def status(data_dir: Optional[Path] = typer.Option(None, help="Warehouse root.")) -> None:
    """Per mode: the last sync attempt, the last published run, row counts and coverage."""
    from jofi_pipeline.analyst import status_report

    report = status_report(data_dir=data_dir)
    typer.echo(report.text)
    if report.problems:  # each was shown as an `error:` line in its mode's section
        raise typer.Exit(1)


@app.command()
def ui(
    port: int = typer.Option(3000, help="Port of the web UI."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
) -> None:
    """Dagster's UI and daemon (`dagster dev`) on the instance the CLI records its syncs in."""
    import os
    import sys

    from jofi_pipeline.instance import CONFIG_FILE, ENV_DAGSTER_HOME, describe_instance, instance_home

    if not os.environ.get(ENV_DAGSTER_HOME) and not Path(CONFIG_FILE).exists():
        # Outside the project root Dagster would use a throwaway folder; keep the CLI's instead.
        instance_home().mkdir(parents=True, exist_ok=True)
        os.environ[ENV_DAGSTER_HOME] = str(instance_home())
    target = ["-w", "workspace.yaml"] if Path("workspace.yaml").exists() else ["-m", "jofi_pipeline.definitions"]
    typer.echo(f"{describe_instance()}; UI at http://{host}:{port}", err=True)
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execv(dagster, [dagster, "dev", *target, "-h", host, "-p", str(port)])


@app.command()
def report(
    mode: str = typer.Option(..., "--mode", "-m", help="live or test."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default ./jofi-report-<mode>.html)."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root."),
) -> None:
    """Charts of a mode's published warehouse in one self-contained HTML file: funnel, coverage, scores."""
    from jofi_pipeline.report.page import write_report
    from jofi_pipeline.warehouse import WarehouseError

    mode_value = _mode(mode)
    try:
        path = write_report(mode_value, out or Path(f"jofi-report-{mode_value}.html"), data_dir=data_dir)
    except WarehouseError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the report: {exc}")
    typer.echo(f"wrote {path} (open it in a browser; it needs nothing from the network)")


@app.command()
def demo(
    test_takers: int = typer.Option(200, min=1, help="Size of the simulated live account."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root (default ./data)."),
) -> None:
    """Start the simulator, sync both modes, print a summary and two analyst queries."""
    from jofi_pipeline.demo import run_demo

    code = run_demo(test_takers=test_takers, data_dir=data_dir)
    raise typer.Exit(code)


@app.command()
def webhooks(
    port: int = typer.Option(8080, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface (put TLS in front: JOFI requires HTTPS URLs)."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root; events go to <root>/live/inbox/events.sqlite."),
) -> None:
    """Receive JOFI's live webhook events: verify JOFI_WEBHOOK_SECRET signatures, store them durably."""
    from jofi_pipeline.webhooks.serve import ReceiverConfigError, check_receiver, serve

    try:
        check_receiver(data_dir)
    except ReceiverConfigError as exc:
        _fail(str(exc))
    serve(host, port, data_dir=data_dir)


@app.command("publish-remote")
def publish_remote(
    mode: str = typer.Option(..., "--mode", "-m", help="live or test."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root."),
) -> None:
    """Upload the mode's published version to JOFI_PUBLISH_URL now (only what the store lacks)."""
    from jofi_pipeline.warehouse import WarehouseError, WarehouseStore
    from jofi_pipeline.warehouse.remote import RemotePublisher

    mode_value = _mode(mode)
    try:
        remote = RemotePublisher.from_env()
        if remote is None:
            _fail(f"{settings.ENV_PUBLISH_URL} is not set: export {settings.ENV_PUBLISH_URL}=s3://bucket/prefix (and the AWS_* variables)")
        outcome = WarehouseStore(data_dir or settings.data_dir(), mode_value, remote=remote).upload_current()
    except WarehouseError as exc:
        _fail(str(exc))
    if not outcome.ok:
        _fail(outcome.describe())
    typer.echo(outcome.describe())


def _import_kinds_help() -> str:
    """From the registry: the documented kinds, then the other spellings it accepts."""
    kinds = [e.import_kinds for e in entities.ENTITIES.values() if e.import_kind]
    other = [k for spellings in kinds for k in spellings[1:]]
    return f"{', '.join(s[0] for s in kinds)} (also accepted: {', '.join(other)})."


@app.command("import-ids")
def import_ids(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with an id column, or one id per line."),
    kind: str = typer.Option(..., "--kind", help=_import_kinds_help()),
    mode: str = typer.Option("live", "--mode", "-m", help="live or test."),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root."),
) -> None:
    """Register ids you already hold so the next sync fetches them by id (closes coverage gaps)."""
    from jofi_pipeline.webhooks.imports import import_ids as run_import

    mode_value = _mode(mode)
    data = _read_ids(file)
    try:
        report = run_import(data, kind, mode_value, data_dir or settings.data_dir())
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(str(exc))
    typer.echo(report.summary())
    if report.new:
        typer.echo(f"queued in {report.inbox}; the next `{settings.CLI} sync --mode {mode}` fetches them by id")
    if report.invalid and not (report.new or report.known):
        raise typer.Exit(1)


def _read_ids(file: Path) -> bytes | str:
    """The id file: UTF-16 with its BOM (as spreadsheet tools save it) decoded here, else its bytes.

    Bytes are decoded line by line by the import (webhooks/imports.py): a line that is not UTF-8 is
    one invalid line, the rest is queued.
    """
    import codecs

    raw = file.read_bytes()
    if not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw
    try:
        return raw.decode("utf-16")
    except UnicodeDecodeError as exc:
        _fail(f"{file} starts like UTF-16 text but is not ({exc.reason} at byte {exc.start}): "
              "save it as UTF-8 CSV, or one id per line")
    raise AssertionError("unreachable")


@app.command()
def watch(
    mode: str = typer.Option(..., "--mode", "-m", help="live or test."),
    once: bool = typer.Option(False, "--once", help="Poll once and exit (for cron)."),
    interval: Optional[str] = typer.Option(
        None, "--interval", help="Time between polls, e.g. 2h or 30m (default: from the observed turnover)."
    ),
    data_dir: Optional[Path] = typer.Option(None, help="Warehouse root; ids go to <root>/<mode>/inbox/events.sqlite."),
) -> None:
    """Without webhooks: poll the capped lists (3 requests) and queue new ids for the next sync."""
    import asyncio

    from jofi_pipeline.webhooks.watch import WatchFailed, parse_interval
    from jofi_pipeline.webhooks.watch import watch as run_watch

    mode_value = _mode(mode)
    try:
        seconds = parse_interval(interval) if interval is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        report = asyncio.run(run_watch(mode_value, data_dir or settings.data_dir(), once=once, interval_s=seconds, echo=typer.echo))
    except WatchFailed as exc:
        _fail(f"{exc} (nothing queued earlier is lost)")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if report.errors:
        _fail("not every list could be read: " + "; ".join(f"{e}: {m}" for e, m in report.errors.items()))


def _simulate_command() -> click.Command:
    """The `simulate` command, as `app.command` would have built it (see _Commands)."""
    from jofi_pipeline.simulator.cli import simulate

    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    single.command(SIMULATE, help=SIMULATE_HELP)(simulate)
    return typer.main.get_command(single)


def main() -> None:
    """Run the command; any failure ends as one `error:` line and a non-zero exit, never a traceback."""
    try:
        _main()
    finally:
        collector.exiting()


def _main() -> None:
    _warn_about_settings()
    try:
        # prog_name: usage lines and hints name the command as it is typed.
        result = app(prog_name=settings.CLI, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `jofi-pipeline`: the help, as before
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:  # a bad option or argument
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _error_line(f"{exc.format_message()}{hint}")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _error_line(exc.format_message())
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        _error_line("interrupted")
        sys.exit(130)
    except Exception as exc:
        if _debug or os.environ.get(ENV_DEBUG, "").strip().lower() in ("1", "true", "yes"):
            raise
        from jofi_pipeline.problems import describe

        _error_line(describe(exc))
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _error_line(text: str) -> None:
    typer.secho(f"error: {' '.join(text.split())}", fg=typer.colors.RED, err=True)


def _warn_about_settings() -> None:
    """Settings that are wrong but not fatal here: one warning line, then the command runs."""
    problem = settings.schedule_timezone_problem()
    if problem:
        typer.secho(f"warning: {problem}", fg=typer.colors.YELLOW, err=True)


if __name__ == "__main__":
    from jofi_pipeline.entry import finish

    collector.entry()
    finish(main)
