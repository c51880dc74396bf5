"""Whose data a mode's folder holds: recorded when the store is created, checked before any write.

    $JOFI_DATA_DIR/<mode>/identity.json   {"mode": "live", "account_id": 209, "api_host": "www.jofiscore.com", ...}

A sync knows whose data it is about to write (its mode, the account `GET /accounts` answered, the
API host it talks to) before it opens the store; `verify` compares that with the folder's record and
refuses a mismatch in one line naming both, before anything is written. So a test folder copied
(or linked) to `live`, a second account's key pointed at the same folder, or the live and test
folders resolving to one place are refused rather than mixed.

- A folder without a record but with data (built before identities existed) is adopted from its
  data when that is consistent: one mode, one account. A folder whose data already mixes modes or
  accounts is refused: it cannot be published as one account's.
- The host is compared without its port (a proxy on another port is the same API). If JOFI moves
  its API for the same account, deleting identity.json makes the next sync adopt the folder again
  from its data (mode and account are still checked). Another account always gets a new folder.

Only the folder checks and the mode are checked by the other writers of a mode folder (import-ids,
the webhook receiver, the window watcher), which do not know the account: `guard_folder`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.settings import Mode
from jofi_pipeline.warehouse.diagnose import WarehouseLockedError, is_damaged, lock_holder, open_failure, restore_work_db
from jofi_pipeline.warehouse.errors import WarehouseBusyError, WarehouseError
from jofi_pipeline.warehouse.paths import ModePaths
from jofi_pipeline.warehouse.schema import ident

IDENTITY_FIELDS = ("mode", "account_id", "api_host")


class IdentityError(WarehouseError):
    """The folder holds someone else's data (or is another mode's folder); nothing was written."""


@dataclass(frozen=True)
class Identity:
    mode: Mode
    account_id: int
    api_host: str

    def describe(self) -> str:
        return f"{self.mode} data of account {self.account_id} at {self.api_host}"


def api_host(base_url: str) -> str:
    """`https://WWW.jofiscore.com:443/api/v2` -> `www.jofiscore.com` (no port, no user info)."""
    return (urlsplit(base_url).hostname or base_url).lower()


def check_folders(data_dir: Path) -> None:
    """The live and test folders must be two places, neither inside the other (symlinks resolved)."""
    folders = {mode: ModePaths(data_dir, mode).mode_dir for mode in settings.MODES}
    real = {mode: Path(os.path.realpath(path)) for mode, path in folders.items()}
    (a, a_real), (b, b_real) = real.items()
    if a_real == b_real:
        where = f"are the same place ({a_real})"
    elif a_real.is_relative_to(b_real) or b_real.is_relative_to(a_real):
        where = f"are one inside the other ({a_real} and {b_real})"
    else:
        return
    links = [str(folders[m]) for m in (a, b) if folders[m].is_symlink()]
    fix = f"remove the link {' and '.join(links)}" if links else "give each mode its own folder"
    raise IdentityError(
        f"the {a} folder {folders[a]} and the {b} folder {folders[b]} {where}: live and test data would mix, "
        f"so nothing was written. {fix[0].upper()}{fix[1:]} and sync again."
    )


def recorded(paths: ModePaths) -> Identity | None:
    """The folder's identity.json, or None when there is none."""
    try:
        text = paths.identity.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # no record (an unusable folder fails later, clearly)
        return None
    except OSError as exc:
        raise IdentityError(f"cannot read {paths.identity} ({exc.strerror or exc}); nothing was written") from None
    try:
        data = json.loads(text)
        found = Identity(settings.parse_mode(data["mode"]), int(data["account_id"]), str(data["api_host"]))
    except (ValueError, KeyError, TypeError):
        raise IdentityError(
            f"{paths.identity} is not a warehouse identity; nothing was written. Delete it: the next sync adopts "
            "the folder again from its data"
        ) from None
    return found


def verify(paths: ModePaths, expected: Identity) -> bool:
    """Check `expected` against the folder before anything is written; True when it must be recorded.

    Reads only: the folder checks, identity.json, and for a folder without one its data (read-only).
    """
    check_folders(paths.data_dir)
    found, source = recorded(paths), "recorded in identity.json"
    if found is None:
        found, source = in_data(paths, expected), "found in its data"
    if found is None or found == expected:
        check_work_db(paths, expected, busy_ok=True)
        return not paths.identity.exists()
    here = f"{paths.mode_dir} holds {found.describe()} ({source}) but this sync reads {expected.describe()}"
    if found.mode != expected.mode:
        todo = (f"Live and test data never share a folder: move {paths.mode_dir} aside (a copy or a link of the "
                f"{found.mode} folder?) and sync again")
    elif found.account_id != expected.account_id:
        todo = (f"One folder holds one account: to sync account {expected.account_id}, point "
                f"{settings.ENV_DATA_DIR} (or --data-dir) at a new folder, or move {paths.mode_dir} aside first")
    else:
        todo = (f"If JOFI moved its API and this is the same account, delete {paths.identity} (the next sync "
                f"adopts the folder again from its data); otherwise set {settings.ENV_BASE_URL} back to "
                f"{found.api_host}'s URL")
    raise IdentityError(f"{here}: nothing was written. {todo}.")


def record(paths: ModePaths, identity: Identity) -> None:
    """Write identity.json atomically (the caller holds the writer lock)."""
    paths.mode_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "mode": identity.mode, "account_id": identity.account_id, "api_host": identity.api_host,
        "recorded_at": datetime.now(UTC).isoformat(),
        "note": "whose data this folder holds; every sync checks it before writing (README: one folder per account)",
    }
    tmp = paths.identity.with_name(f".{paths.identity.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, paths.identity)


def guard_folder(paths: ModePaths) -> None:
    """For writers that do not know the account (import-ids, webhooks, watch): folders and mode."""
    check_folders(paths.data_dir)
    found = recorded(paths)
    if found is not None and found.mode != paths.mode:
        raise IdentityError(
            f"{paths.mode_dir} holds {found.describe()} (recorded in identity.json), not {paths.mode} data: nothing "
            f"was written. Live and test data never share a folder: move {paths.mode_dir} aside and sync again."
        )


def check_work_db(paths: ModePaths, expected: Identity, *, busy_ok: bool = False) -> None:
    """The work database's own account rows must be the folder's: a work file copied in from another
    folder is refused before anything is written. Read-only, and only the one-row account table.

    `busy_ok`: while another sync writes it, say nothing (the writer lock that comes next tells the
    caller who holds it; the store checks again once it holds the lock itself).
    """
    if not paths.work_db.exists():
        return
    try:
        with _read_only(Path(os.path.realpath(paths.work_db)), damaged=restore_work_db(paths)) as con:
            check_account_rows(con, paths, expected)
    except WarehouseBusyError:
        if busy_ok:
            return
        raise


def check_account_rows(con: duckdb.DuckDBPyConnection, paths: ModePaths, expected: Identity) -> None:
    """check_work_db's judgement on a connection already open to the work database (the writer's own,
    under the lock: no second open of the file)."""
    has_account = con.execute(
        "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'account'").fetchone()
    rows = con.execute("SELECT DISTINCT _mode, id FROM account WHERE id IS NOT NULL").fetchall() if has_account else []
    foreign = sorted({(str(m), int(i)) for m, i in rows} - {(expected.mode, expected.account_id)})
    if foreign:
        shown = ", ".join(f"{m} data of account {i}" for m, i in foreign)
        raise IdentityError(
            f"the working database {paths.work_db} holds {shown} but this folder and this sync are "
            f"{expected.describe()}: nothing was written. It was copied in from another folder? Put the folder's "
            f"own work database back, or move {paths.mode_dir} aside and sync into an empty folder."
        )


def in_data(paths: ModePaths, expected: Identity) -> Identity | None:
    """The identity a folder without identity.json shows in its data; None when it holds none.

    The work database is the record (the published copy when there is none). Raises when the data
    already mixes modes or accounts: such a folder cannot be adopted as anyone's.
    """
    source = paths.work_db if paths.work_db.exists() else paths.published_db if paths.published_db.exists() else None
    if source is None:
        return None
    damaged = restore_work_db(paths) if source == paths.work_db else None
    modes, accounts = _modes_and_accounts(Path(os.path.realpath(source)), damaged)
    if not modes and not accounts:
        return None
    if len(modes) > 1 or len(accounts) > 1:
        mixed = " and ".join(
            text for text in (
                f"modes {', '.join(sorted(modes))}" if len(modes) > 1 else "",
                f"accounts {', '.join(map(str, sorted(accounts)))}" if len(accounts) > 1 else "",
            ) if text
        )
        raise IdentityError(
            f"{paths.mode_dir} already mixes {mixed} (written before warehouses recorded whose data they hold); it "
            f"cannot be published as one account's {paths.mode} data, so nothing was written. Move it aside (keep it "
            f"as an archive) and sync into a new folder"
        )
    mode = next(iter(modes), paths.mode)
    return Identity(mode, next(iter(accounts), expected.account_id), expected.api_host)  # type: ignore[arg-type]


def _modes_and_accounts(db: Path, damaged: str | None = None) -> tuple[set[str], set[int]]:
    with _read_only(db, damaged) as con:
        tables = {
            name for (name,) in con.execute(
                "SELECT table_name FROM duckdb_columns() WHERE schema_name = 'main' AND column_name = '_mode'"
            ).fetchall()
        }
        modes: set[str] = set()
        for table in sorted(tables):
            modes.update(str(m) for (m,) in con.execute(f"SELECT DISTINCT _mode FROM {ident(table)} WHERE _mode IS NOT NULL").fetchall())
        accounts = {int(a) for (a,) in con.execute("SELECT DISTINCT id FROM account WHERE id IS NOT NULL").fetchall()} if "account" in tables else set()
    return modes, accounts


@contextmanager
def _read_only(db: Path, damaged: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only look into a warehouse file; busy (not unreadable) while a sync writes it.

    `damaged`: what to do when the file is damaged (diagnose.py), said instead of "cannot read"."""
    try:
        con = duckdb.connect(str(db), read_only=True, config={"enable_external_access": False})
    except duckdb.Error as exc:
        text = str(exc).lower()
        # Another process holds the writer's file lock, or this process has the file open already.
        if "lock" in text or "same database file" in text:
            # A sync writing it, or a session that opened it: named where the OS tells (diagnose.py).
            holder = lock_holder(db, str(exc))
            raise WarehouseLockedError(
                f"the {db.parent.parent.name} warehouse is being written by another sync, or its working database {db} "
                f"is open in another process ({holder}); nothing was written and the file is not damaged. Wait for "
                "that sync to finish, or close that session, and retry",
                holder=holder,
            ) from None
        if damaged is not None and is_damaged(exc):
            raise open_failure(db, exc, what="the working database", locked="", damaged=damaged) from None
        raise IdentityError(f"cannot read {db} to see whose data it holds: {str(exc).splitlines()[0]}") from None
    try:
        yield con
    finally:
        con.close()
