"""The rules a warehouse keeps: one mode, one account, one row per key, references that resolve.

Asked of the work database by every publish (the gate: `RunWriter.publish` refuses when a blocking
rule fails, so the published copy stays byte-identical) and of the published copy by the Dagster
asset checks. Same queries, same judgement, one place. The gate asks again only the rules whose
tables changed since the last publish (by their fingerprints); the others' verdicts are the ones
the published version's manifest keeps (`Judged`), as exact as asking, since equal fingerprints
mean equal tables.

Which references block a publish. A reference blocks when the sync itself guarantees it, so a
dangling one can only mean the data came from somewhere else (another warehouse's files copied
in, a hand edit) or the merge is broken:
- a child row and its parent (test_taker_assessments, scorecard_scores, job_fit_occupations):
  written in the same transaction from the same object, parents are never deleted;
- a scorecard or job-fit report and its test taker: fetched only for test takers the warehouse
  holds (sync/queries.py), and held rows are never dropped (a 404 only marks them deleted).
A reference only warns when JOFI's capped windows legitimately leave it open for a while:
- an invitation naming a test taker not held yet (accepted after the window moved; the next run
  fetches it by id, and one JOFI no longer has stays dangling for good);
- a scorecard naming a score profile by short name (a profile renamed at JOFI leaves the old
  scorecards pointing at a name no profile carries any more).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from jofi_pipeline import settings
from jofi_pipeline.warehouse.schema import ident
from jofi_pipeline.warehouse.tables import TABLES

SAMPLE = 10


@dataclass(frozen=True)
class Reference:
    """`child.columns` must match a `parent.parent_columns` row (nulls are not references)."""

    child: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    what: str
    blocking: bool

    @property
    def check_name(self) -> str:
        return f"references_{self.parent}_{'_'.join(self.columns)}"


def _child_references() -> tuple[Reference, ...]:
    return tuple(
        Reference(spec.name, spec.parent_columns, spec.parent, TABLES[spec.parent].key,
                  f"{spec.name} row -> its {spec.parent} row", blocking=True)
        for spec in TABLES.values() if spec.kind == "child" and spec.parent
    )


REFERENCES: tuple[Reference, ...] = (
    *_child_references(),
    Reference("scorecards", ("test_taker_id",), "test_takers", ("id",), "scorecard -> test taker", blocking=True),
    Reference("job_fit_reports", ("test_taker_id",), "test_takers", ("id",), "job-fit report -> test taker", blocking=True),
    Reference("invitations", ("test_taker_id",), "test_takers", ("id",), "invitation -> test taker", blocking=False),
    Reference("scorecards", ("score_profile_short_name",), "score_profiles", ("short_name",),
              "scorecard -> score profile", blocking=False),
)


@dataclass(frozen=True)
class Finding:
    """One rule judged on one table: what a check shows and what a refused publish says."""

    check: str       # mode_pure | account_pure | keys_unique_not_null | references_<parent>_<columns>
    table: str
    passed: bool
    blocking: bool   # a failure refuses the publish (and is an ERROR check in Dagster)
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str = ""      # one line when it failed: what is wrong
    what_to_do: str = ""   # one line when it failed

    @property
    def name(self) -> str:
        return f"{self.table}.{self.check}"


def keys_unique(con: duckdb.DuckDBPyConnection, table: str) -> Finding:
    spec = TABLES[table]
    cols = ", ".join(ident(c) for c in spec.key)
    nulls_sql = " OR ".join(f"{ident(c)} IS NULL" for c in spec.key if c not in spec.nullable_key) or "false"
    # One pass over the table: rows grouped by key; a key held twice is a group of more than one
    # row, and rows without a key all fall in the groups whose key has a NULL where none may be.
    dupes, nulls = con.execute(
        f"SELECT count(*) FILTER (WHERE _jofi_rows > 1), coalesce(sum(_jofi_rows) FILTER (WHERE {nulls_sql}), 0)::BIGINT "
        f"FROM (SELECT {cols}, count(*) AS _jofi_rows FROM {ident(table)} GROUP BY ALL)"
    ).fetchone()
    passed = dupes == 0 and nulls == 0
    return Finding(
        "keys_unique_not_null", table, passed, blocking=True,
        metadata={"duplicate_keys": dupes, "null_key_rows": nulls},
        problem="" if passed else f"{dupes} key{'' if dupes == 1 else 's'} ({', '.join(spec.key)}) held twice and {_rows(nulls)} without a key",
        what_to_do="" if passed else f"find them with SELECT {cols}, count(*) FROM {table} GROUP BY ALL HAVING "
        "count(*) > 1 and report a bug: the merge keeps one row per key",
    )


def mode_pure(con: duckdb.DuckDBPyConnection, table: str, mode: str) -> Finding:
    rows = dict(con.execute(f"SELECT _mode, count(*) FROM {ident(table)} GROUP BY ALL").fetchall())
    foreign = {str(m): n for m, n in rows.items() if m != mode}
    passed = not foreign
    return Finding(
        "mode_pure", table, passed, blocking=True,
        metadata={"expected_mode": mode, "rows_of_other_modes": sum(foreign.values())},
        problem="" if passed else (
            f"{_rows(sum(foreign.values()))} of mode {', '.join(sorted(foreign))} in the {mode} warehouse"
        ),
        what_to_do="" if passed else (
            "modes never mix: this folder holds another mode's data (copied or linked in); move it aside and sync "
            "into an empty folder"
        ),
    )


ACCOUNT_COLUMN = {"account": "id"}  # where a table names its account; plus every `account_id` column


def account_tables() -> dict[str, str]:
    """Table -> the column naming the account each row belongs to."""
    return ACCOUNT_COLUMN | {
        spec.name: "account_id" for spec in TABLES.values() if "account_id" in spec.column_names
    }


def account_pure(con: duckdb.DuckDBPyConnection, table: str, account_id: int | None) -> Finding:
    """Every row names one account, the one the warehouse's identity names (when known).

    Without a known account (a folder written by hand) the `account` table must hold one account
    and every other table that one.
    """
    column = account_tables()[table]
    ids = sorted(r[0] for r in con.execute(f"SELECT DISTINCT {ident(column)} FROM {ident(table)} WHERE {ident(column)} IS NOT NULL").fetchall())
    expected = account_id
    if expected is None and table != "account":
        held = [r[0] for r in con.execute("SELECT DISTINCT id FROM account WHERE id IS NOT NULL").fetchall()]
        expected = held[0] if len(held) == 1 else None
    passed = len(ids) <= 1 and (expected is None or ids in ([], [expected]))
    shown = ", ".join(map(str, ids[:SAMPLE]))
    return Finding(
        "account_pure", table, passed, blocking=True,
        metadata={"expected_account_id": expected if expected is not None else "", "account_ids": shown},
        problem="" if passed else (
            f"rows of accounts {shown}" + (f" in the warehouse of account {expected}" if expected is not None else "")
        ),
        what_to_do="" if passed else (
            "one warehouse holds one account: move this folder aside and sync each account into its own folder"
        ),
    )


def references(con: duckdb.DuckDBPyConnection, ref: Reference) -> Finding:
    on = " AND ".join(f"p.{ident(p)} = c.{ident(c)}" for c, p in zip(ref.columns, ref.parent_columns, strict=True))
    present = " AND ".join(f"c.{ident(c)} IS NOT NULL" for c in ref.columns)
    shown = ref.columns[0] if len(ref.columns) == 1 else "(" + ", ".join(ref.columns) + ")"
    value = f"c.{ident(ref.columns[0])}" if len(ref.columns) == 1 else "(" + ", ".join(f"c.{ident(c)}" for c in ref.columns) + ")::VARCHAR"
    count, sample = con.execute(
        f"SELECT count(*), list(DISTINCT {value})[1:{SAMPLE}] FROM {ident(ref.child)} c "
        f"WHERE {present} AND NOT EXISTS (SELECT 1 FROM {ident(ref.parent)} p WHERE {on})"
    ).fetchone()
    passed = count == 0
    if ref.blocking:
        todo = (f"the sync only stores a {ref.child} row with its {ref.parent} row, so these came from elsewhere "
                "(files copied in?): restore the folder or move it aside and sync into an empty one")
    else:
        todo = f"run `{settings.CLI} sync --mode <mode> --full` to fetch the {ref.parent} by id"
    return Finding(
        ref.check_name, ref.child, passed, blocking=ref.blocking,
        metadata={"dangling_rows": count, "sample_values": str(sample or [])},
        problem="" if passed else f"{count} {ref.what} references ({shown}) point at {ref.parent} rows it does not hold",
        what_to_do="" if passed else todo,
    )


@functools.cache
def _source() -> bytes:
    return Path(__file__).read_bytes()


def rules_digest() -> str:
    """These rules as written, and the keys and references they judge by: no verdict of other code is reused."""
    judged_by = [(s.name, s.key, s.nullable_key, s.parent, s.parent_columns) for s in TABLES.values()]
    return hashlib.sha256(_source() + repr((judged_by, REFERENCES, account_tables())).encode()).hexdigest()[:16]


def verdicts_json(mode: str, account_id: int | None, found: Iterable[Finding]) -> dict[str, Any]:
    """A gate's verdicts as the published version's manifest keeps them (read back by `Judged.from_json`)."""
    return {"rules": rules_digest(), "mode": mode, "account_id": account_id,
            "findings": [dataclasses.asdict(f) for f in found]}


@dataclass(frozen=True)
class Judged:
    """An earlier gate's verdicts and what they were judged on (rules, mode, account, each table's
    fingerprint): a verdict whose tables are all unchanged since would be the same again."""

    rules: str
    mode: str
    account_id: int | None
    fingerprints: dict[str, str]
    findings: dict[str, Finding]  # by Finding.name

    @classmethod
    def from_json(cls, data: Any, fingerprints: dict[str, str]) -> Judged | None:
        """From a published version's manifest (`verdicts_json`; `fingerprints`: the tables it holds); None if unreadable."""
        try:
            found = [Finding(**f) for f in data["findings"]]
            return cls(str(data["rules"]), str(data["mode"]), data["account_id"], dict(fingerprints), {f.name: f for f in found})
        except (KeyError, TypeError, ValueError):
            return None

    def verdict(self, name: str, tables: Iterable[str], mode: str, account_id: int | None, fingerprints: dict[str, str]) -> Finding | None:
        """The verdict on `name` if its `tables` are unchanged (the caller has compared the rules)."""
        if (self.mode, self.account_id) != (mode, account_id):
            return None
        if any(self.fingerprints.get(t) is None or self.fingerprints.get(t) != fingerprints.get(t) for t in tables):
            return None
        return self.findings.get(name)


def findings(
    con: duckdb.DuckDBPyConnection, mode: str, account_id: int | None,
    fingerprints: dict[str, str] | None = None, judged: Judged | None = None,
) -> list[Finding]:
    """Every rule on every table, blocking or not, in a stable order.

    With the work database's `fingerprints` and an earlier gate's verdicts (`judged`, from the
    published version's manifest): a rule whose tables all hold exactly what they held then is
    not asked again, its verdict is. A nightly changes a few tables, and each rule costs a
    statement of ~1-2 ms even on an empty table (75 of them, most of a small publish's gate).
    """
    if judged is not None and judged.rules != rules_digest():
        judged = None

    def rule(name: str, tables: Iterable[str], ask):
        if judged is not None and fingerprints is not None:
            earlier = judged.verdict(name, tables, mode, account_id, fingerprints)
            if earlier is not None:
                return earlier
        return ask()

    out: list[Finding] = []
    for spec in TABLES.values():
        if spec.key:
            out.append(rule(f"{spec.name}.keys_unique_not_null", [spec.name], lambda spec=spec: keys_unique(con, spec.name)))
        out.append(rule(f"{spec.name}.mode_pure", [spec.name], lambda spec=spec: mode_pure(con, spec.name, mode)))
    for table in account_tables():  # judged against the account table when the identity names none
        out.append(rule(f"{table}.account_pure", [table, "account"], lambda table=table: account_pure(con, table, account_id)))
    for ref in REFERENCES:
        out.append(rule(f"{ref.child}.{ref.check_name}", [ref.child, ref.parent], lambda ref=ref: references(con, ref)))
    return out


def refusals(found: Iterable[Finding]) -> list[Finding]:
    """The failed rules that must stop a publish."""
    return [f for f in found if f.blocking and not f.passed]


def refusal_line(failed: list[Finding]) -> str:
    """One line: each failed rule once (its first table, how many more), then what to do about the first."""
    by_check: dict[str, list[Finding]] = {}
    for finding in failed:
        by_check.setdefault(finding.check, []).append(finding)
    parts = []
    for found in by_check.values():
        more = found[1:]
        also = (f" (and {len(more)} more table{'s' if len(more) > 1 else ''}: {', '.join(f.table for f in more[:3])}"
                f"{', ...' if len(more) > 3 else ''})") if more else ""
        parts.append(f"{found[0].name}: {found[0].problem}{also}")
    todo = failed[0].what_to_do
    return f"publish refused, the published warehouse is unchanged: {'; '.join(parts)}. {todo[:1].upper()}{todo[1:]}"


def _rows(n: int) -> str:
    return f"{n} row{'' if n == 1 else 's'}"


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return con.execute(sql).fetchone()[0]
