"""One spec per warehouse table: the single source for DDL, comments, flattening and Parquet.

A spec says what a table holds (name, key, comment) and, per column, its SQL type, its
documentation (copied from the JOFI API docs, so `DESCRIBE`/`duckdb_columns()` explain it) and
how the value is derived from the API's JSON. Nothing here touches DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from jofi_pipeline.entities import ENTITIES, VERSIONED

# SQL types the flattener knows how to coerce to (see flatten.COERCERS).
SqlType = Literal["BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN", "TIMESTAMPTZ", "BIGINT[]", "JSON"]
TableKind = Literal["entity", "child", "history", "run_log", "state"]

Source = Callable[[Mapping[str, Any]], Any]


class At:
    """A getter for a nested field (None when any step is missing or not an object).

    Its `path` also says where the field lives, so a key value can be written back (flatten.with_key).
    """

    __slots__ = ("path",)

    def __init__(self, *path: str) -> None:
        self.path = path

    def __call__(self, obj: Mapping[str, Any]) -> Any:
        current: Any = obj
        for step in self.path:
            # JSON objects are dicts: the exact type test first spares the ABC check on every read.
            if type(current) is not dict and not isinstance(current, Mapping):
                return None
            current = current.get(step)
        return current


def at(*path: str) -> At:
    return At(*path)


def ids_in(list_key: str, id_key: str = "id") -> Source:
    """A getter for the ids in a list of objects (e.g. `default_assessments` -> [6, 7])."""

    def get(obj: Mapping[str, Any]) -> Any:
        items = obj.get(list_key)
        if not isinstance(items, list):
            return None
        return [item.get(id_key) if isinstance(item, Mapping) else None for item in items]

    return get


@dataclass(frozen=True)
class Column:
    """A typed column: name, SQL type, documentation and how to read it from the JSON."""

    name: str
    type: SqlType
    comment: str
    source: Source | None = None  # default: the top-level field of the same name

    def read(self, obj: Mapping[str, Any]) -> Any:
        return self.reader(obj)

    @cached_property
    def reader(self) -> Source:
        """The getter, made once: `read` runs for every column of every row a sync writes."""
        return self.source or at(self.name)

    @property
    def path(self) -> tuple[str, ...] | None:
        """Where the value sits in the JSON object; None when it is computed (e.g. a list of ids)."""
        if self.source is None:
            return (self.name,)
        return self.source.path if isinstance(self.source, At) else None


@dataclass(frozen=True)
class TableSpec:
    """Everything the warehouse knows about one table."""

    name: str
    kind: TableKind
    comment: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    # Child tables only: the parent table, the JSON key on the parent object that holds the
    # children, the child columns that carry the parent's key (in the parent key's order) and a
    # function turning one parent object into flat child items (dicts the columns read from).
    parent: str | None = None
    list_key: str | None = None
    parent_columns: tuple[str, ...] = ()
    items: Callable[[Mapping[str, Any], tuple[Any, ...]], Iterable[Mapping[str, Any]]] | None = None
    system_columns: tuple[Column, ...] = field(default=())
    # Key columns that may legitimately be null (a top-level score has no parent score).
    nullable_key: tuple[str, ...] = ()
    # History tables only: the table whose versions this one keeps (see history_of()).
    versions_of: str | None = None

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.system_columns

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.all_columns)

    def column(self, name: str) -> Column:
        for column in self.all_columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


# --- system columns ---------------------------------------------------------------------------

MODE = Column("_mode", "VARCHAR", "API mode the row was read in: 'live' or 'test'. Always equals the warehouse's mode.")
FIRST_SYNCED = Column("_first_synced_at", "TIMESTAMPTZ", "When the sync first stored this row.")
LAST_SYNCED = Column("_last_synced_at", "TIMESTAMPTZ", "When a sync last wrote this row: first stored it, or found its content changed. A re-read that finds the record unchanged leaves the row as it is, so a sync that changes nothing rewrites nothing (sync_runs says when each sync ran).")
RAW = Column("_raw", "JSON", "The object's raw JSON: the shallow merge of every response seen for this key (list items and by-id objects); unknown fields are kept here.")
DELETED = Column("_deleted_at", "TIMESTAMPTZ", "When the API answered 404 for this known id; null while the record exists. Rows are never dropped.")

ENTITY_SYSTEM = (MODE, RAW, FIRST_SYNCED, LAST_SYNCED, DELETED)
CHILD_SYSTEM = (MODE, FIRST_SYNCED, LAST_SYNCED)


def entity(name: str, comment: str, key: tuple[str, ...], *columns: Column) -> TableSpec:
    return TableSpec(name, "entity", comment, key, columns, system_columns=ENTITY_SYSTEM)


def child(
    name: str,
    comment: str,
    key: tuple[str, ...],
    *columns: Column,
    parent: str,
    list_key: str,
    parent_columns: tuple[str, ...],
    items: Callable[[Mapping[str, Any], tuple[Any, ...]], Iterable[Mapping[str, Any]]],
    nullable_key: tuple[str, ...] = (),
) -> TableSpec:
    return TableSpec(
        name, "child", comment, key, columns, parent=parent, list_key=list_key,
        parent_columns=parent_columns, items=items, system_columns=CHILD_SYSTEM,
        nullable_key=nullable_key,
    )


# --- history ----------------------------------------------------------------------------------
# Columns a `<table>_history` table adds to the versioned table's own columns. One row per observed
# version; `_first_synced_at`/`_last_synced_at` are left out (a version's span is _valid_from.._valid_to),
# and so is `_deleted_at` (a deletion is a version of its own, `_change = 'delete'`).

VALID_FROM = Column("_valid_from", "TIMESTAMPTZ", "When a sync first saw this version (JOFI has no updated_at, so this is the observation time, not the moment JOFI changed it). Equals the previous version's _valid_to: no gaps, no overlaps.")
VALID_TO = Column("_valid_to", "TIMESTAMPTZ", "When a sync saw the next version (or the record gone); null while this version is current. Valid for _valid_from <= t < _valid_to.")
IS_CURRENT = Column("_is_current", "BOOLEAN", "True for the version the current table holds; at most one per key, none once the record is deleted.")
CHANGE = Column("_change", "VARCHAR", "What opened this version: 'insert' (first seen, or seen again after a delete), 'update' (content changed) or 'delete' (the API answered 404, or the parent stopped listing this child: a zero-length marker at the moment it was found gone, holding the last known values).")
ROW_HASH = Column("_row_hash", "VARCHAR", "md5 of the version's content: for entity tables the raw JSON with sorted keys, leaving out the response envelope (`object`, `mode`) and the sync's own timestamps; for child tables the typed columns. Equal hash = same version.")
SYNC_RUN_ID = Column("_sync_run_id", "VARCHAR", "Sync run that saw this version first (sync_runs.run_id; a run killed before it finished has no sync_runs row). Null for versions begun from the rows of a warehouse built before history was kept. A run records at most one version per key: what it read of a record in several steps becomes one version.")
HISTORY_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, CHANGE, ROW_HASH, SYNC_RUN_ID)


def history_of(spec: TableSpec) -> TableSpec:
    """The `<table>_history` spec of a versioned table: its columns, `_mode` (and `_raw`), the history columns.

    Keyed by the table's key plus `_valid_from`; an ordinary spec, so DDL, comments, Parquet,
    publish and the key checks treat it like any other table.
    """
    kept = tuple(c for c in spec.system_columns if c.name in (MODE.name, RAW.name))
    return TableSpec(
        f"{spec.name}_history",
        "history",
        f"Every observed version of {spec.name} rows (one row per version, _valid_from/_valid_to; _is_current marks "
        f"the one {spec.name} holds). Read a past state with {spec.name}_as_of(TIMESTAMPTZ '...').",
        spec.key + (VALID_FROM.name,),
        spec.columns,
        system_columns=kept + HISTORY_COLUMNS,
        nullable_key=spec.nullable_key,
        versions_of=spec.name,
    )


# --- shared column groups ---------------------------------------------------------------------


def team_columns() -> tuple[Column, ...]:
    return (
        Column("team_id", "BIGINT", "Team the record belongs to (nested `team.id`).", at("team", "id")),
        Column("team_display_name", "VARCHAR", "Team name at the time of the last sync (nested `team.display_name`, denormalised).", at("team", "display_name")),
    )


def account_columns() -> tuple[Column, ...]:
    return (
        Column("account_id", "BIGINT", "Account the record belongs to (nested `account.id`).", at("account", "id")),
        Column("account_display_name", "VARCHAR", "Account name at the time of the last sync (nested `account.display_name`, denormalised).", at("account", "display_name")),
    )


def person_columns() -> tuple[Column, ...]:
    return (
        Column("first_name", "VARCHAR", "Participant's first name."),
        Column("last_name", "VARCHAR", "Participant's last name."),
        Column("email", "VARCHAR", "Participant's email address."),
        Column("custom_id", "VARCHAR", "Caller-supplied grouping key, e.g. a job requisition or coaching group (free string)."),
        Column("person_id", "VARCHAR", "Caller's identifier for the participant (free string, often a UUID)."),
    )


def link_columns() -> tuple[Column, ...]:
    return (
        Column("assessment_url", "VARCHAR", "Link the participant uses to take the assessments."),
        Column("career_navigation_url", "VARCHAR", "careernavigation.org link; null until a career navigation profile exists."),
        Column("scorecard_url", "VARCHAR", "Browser scorecard in the JOFI app."),
        Column("job_fit_summary_url", "VARCHAR", "Job Fit Summary report (keyed by the CNP id); null until a career navigation profile exists."),
        Column("career_options_spotlight_url", "VARCHAR", "Career Options Spotlight report (keyed by the CNP id); null until a career navigation profile exists."),
    )


# --- child item extractors --------------------------------------------------------------------


def assignment_items(parent: Mapping[str, Any], parent_key: tuple[Any, ...]) -> Iterable[Mapping[str, Any]]:
    for item in parent.get("assigned_assessments") or ():
        if isinstance(item, Mapping):
            yield {**item, "test_taker_id": parent_key[0]}


def score_items(parent: Mapping[str, Any], parent_key: tuple[Any, ...]) -> Iterable[Mapping[str, Any]]:
    """One item per score and per facet of every section (unknown future sections included)."""
    scores = parent.get("scores")
    if not isinstance(scores, Mapping):
        return
    test_taker_id, short_name = parent_key
    for section, section_scores in scores.items():
        if not isinstance(section_scores, list):
            continue  # a null section means "no scores in this section"
        for score in section_scores:
            if not isinstance(score, Mapping):
                continue
            base = {"test_taker_id": test_taker_id, "score_profile_short_name": short_name, "section": section}
            yield {**score, **base, "score_id": score.get("id"), "parent_score_id": None, "is_facet": False}
            for facet in score.get("facets") or ():
                if isinstance(facet, Mapping):
                    yield {**facet, **base, "score_id": facet.get("id"), "parent_score_id": score.get("id"), "is_facet": True}


def occupation_items(parent: Mapping[str, Any], parent_key: tuple[Any, ...]) -> Iterable[Mapping[str, Any]]:
    for zone in parent.get("zones") or ():
        if not isinstance(zone, Mapping):
            continue
        for rank, occupation in enumerate(zone.get("occupations") or (), start=1):
            if isinstance(occupation, Mapping):
                yield {**occupation, "test_taker_id": parent_key[0], "zone": zone.get("zone"), "rank": rank}


# --- the tables -------------------------------------------------------------------------------

ACCOUNT = entity(
    "account",
    "The JOFI account tied to the API key (GET /accounts, a single object). One row per account id.",
    ("id",),
    Column("id", "BIGINT", "Account ID."),
    Column("display_name", "VARCHAR", "Internal account name."),
    Column("display_name_external", "VARCHAR", "External-facing account name; null if unset."),
    Column("teams_count", "BIGINT", "Number of teams in the account."),
    Column("users_count", "BIGINT", "Number of users in the account."),
    Column("invitations_count", "BIGINT", "Invitations across all teams."),
    Column("test_takers_seats_used_count", "BIGINT", "Test-taker seats in use."),
    Column("prescreens_completed_count", "BIGINT", "Completed Prescreen assessments."),
    Column("thinking_skills_completed_count", "BIGINT", "Completed Thinking Skills assessments."),
    Column("personality_completed_count", "BIGINT", "Completed Personality assessments."),
    Column("career_interests_completed_count", "BIGINT", "Completed Career Interests assessments."),
    Column("webhook_endpoint", "VARCHAR", "Configured production webhook URL; null if none is set or it is not a valid URL."),
    Column("webhooks_enabled", "BOOLEAN", "Whether JOFI enqueues production webhook deliveries."),
)

USERS = entity(
    "users",
    "Account users, i.e. inviters (GET /users). Their defaults decide team, assessments and email template of new invitations.",
    ("id",),
    Column("id", "BIGINT", "User ID."),
    Column("email", "VARCHAR", "User's email; valid as `created_by_user_email` on invitations."),
    Column("first_name", "VARCHAR", "User's first name."),
    Column("last_name", "VARCHAR", "User's last name."),
    Column("default_team_id", "BIGINT", "Team new invitations from this user go to by default (nested `default_team.id`).", at("default_team", "id")),
    Column("default_team_display_name", "VARCHAR", "Name of the default team (nested `default_team.display_name`).", at("default_team", "display_name")),
    Column("default_assessment_ids", "BIGINT[]", "Assessment catalog ids assigned by default (ids of `default_assessments`).", ids_in("default_assessments")),
    Column("default_email_template_id", "BIGINT", "Default invitation email template id; null if none."),
)

TEAMS = entity(
    "teams",
    "Teams of the account (GET /teams). Invitations are scoped to a team.",
    ("id",),
    Column("id", "BIGINT", "Team ID."),
    Column("display_name", "VARCHAR", "Team name."),
    Column("users_count", "BIGINT", "Users on the team."),
    Column("invitations_count", "BIGINT", "Invitations on the team."),
    Column("test_takers_count", "BIGINT", "Test takers on the team."),
)

EMAIL_TEMPLATES = entity(
    "email_templates",
    "Invitation and congratulations email templates: account-owned plus enabled system templates (GET /email-templates).",
    ("id",),
    Column("id", "BIGINT", "Template ID; usable as `email_template_id` or `congrats_email_template_id` on invitations."),
    Column("display_name", "VARCHAR", "Human-readable template name."),
    Column("type", "VARCHAR", "'invitation' or 'congrats'."),
    Column("team_ids", "BIGINT[]", "Teams an account-owned template is assigned to; empty for account-wide system templates."),
)

ASSESSMENTS = entity(
    "assessments",
    "Assessment catalog (GET /assessments). Real catalog even in test mode. Ids are the `test_id` of `assessments_to_assign`.",
    ("id",),
    Column("id", "BIGINT", "Assessment (test) id, e.g. 6 Personality, 7 Thinking, 8 Career Interests."),
    Column("short_name", "VARCHAR", "Short name, e.g. 'Personality', 'Thinking'."),
    Column("display_name", "VARCHAR", "Display name, e.g. 'JOFI Personality Traits'."),
)

SCORE_PROFILES = entity(
    "score_profiles",
    "JOFI system score profiles enabled for the account (GET /score-profiles). Join scorecards on short_name, not id.",
    ("id",),
    Column("id", "BIGINT", "Score profile id as listed (the scorecard's nested id may differ; join on short_name)."),
    Column("short_name", "VARCHAR", "Short name, the `sp` parameter of the scorecard route, e.g. 'JOFI-295-AS'."),
    Column("display_name", "VARCHAR", "Display name, e.g. 'Healthcare Practitioners and Technical Zone 5'."),
)

INVITATIONS = entity(
    "invitations",
    "Invitations sent to participants (GET /invitations, GET /invitations/:id). Accumulated: rows that left the API's capped window are kept.",
    ("id",),
    Column("id", "BIGINT", "Invitation ID."),
    *person_columns(),
    Column("phone", "VARCHAR", "Participant phone, used when the invite is also sent by SMS."),
    Column("assessment_url", "VARCHAR", "Link the participant uses to take the assessments."),
    Column("created_at", "TIMESTAMPTZ", "When the invitation was created."),
    Column("accepted_at", "TIMESTAMPTZ", "When the participant accepted; null until accepted."),
    Column("test_taker_id", "BIGINT", "Test taker created on acceptance; null until accepted."),
    Column("career_navigation_profile_id", "VARCHAR", "Career navigation profile id (string); null until one exists."),
    *team_columns(),
    Column("created_by_user_email", "VARCHAR", "Email of the JOFI user who sent the invitation."),
    Column("send_via_email", "BOOLEAN", "Whether JOFI emails the assessment link."),
    Column("send_via_sms", "BOOLEAN", "Whether JOFI also texts the assessment link."),
    Column("assessment_ids", "BIGINT[]", "Assessment catalog ids assigned by the invitation (`assessments[].test_id`).", ids_in("assessments", "test_id")),
)

TEST_TAKERS = entity(
    "test_takers",
    "Test takers: participants who accepted an invitation (GET /test-takers, GET /test-takers/:id). Accumulated beyond the API's 30-item window.",
    ("id",),
    Column("id", "BIGINT", "Test taker ID."),
    *person_columns(),
    Column("invitation_id", "BIGINT", "Invitation this test taker accepted."),
    Column("invitation_created_at", "TIMESTAMPTZ", "When the invitation was created."),
    Column("career_navigation_profile_id", "VARCHAR", "Career navigation profile id (string); null until one exists."),
    *link_columns(),
    *team_columns(),
    *account_columns(),
)

TEST_TAKER_ASSESSMENTS = child(
    "test_taker_assessments",
    "Assessments assigned to a test taker (`assigned_assessments` of GET /test-takers/:id). Replaced per test taker whenever a by-id object is synced.",
    # Assignment ids are unique only per test taker (API docs; test-mode data reuses them), so the
    # key names the parent: keyed by `id` alone, the MERGE would move a row to another test taker.
    ("test_taker_id", "id"),
    Column("id", "BIGINT", "The assignment's own id; unique per test taker, not across test takers."),
    Column("test_taker_id", "BIGINT", "Test taker the assessment is assigned to."),
    Column("assessment_id", "BIGINT", "Catalog assessment id (nested `assessment.id`).", at("assessment", "id")),
    Column("short_name", "VARCHAR", "Catalog short name (nested `assessment.short_name`).", at("assessment", "short_name")),
    Column("display_name", "VARCHAR", "Catalog display name (nested `assessment.display_name`).", at("assessment", "display_name")),
    Column("created_at", "TIMESTAMPTZ", "When the assessment was assigned."),
    Column("started_at", "TIMESTAMPTZ", "When the test taker started it; null if not started."),
    Column("completed_at", "TIMESTAMPTZ", "When the test taker completed it; null if not completed."),
    Column("progress_saved_at", "TIMESTAMPTZ", "When progress was last saved; null if never."),
    Column("is_used_for_scoring", "BOOLEAN", "Whether this assignment counts for scoring."),
    parent="test_takers",
    list_key="assigned_assessments",
    parent_columns=("test_taker_id",),
    items=assignment_items,
)

CAREER_NAVIGATION_PROFILES = entity(
    "career_navigation_profiles",
    "Career navigation profiles (GET /career-navigation-profiles, /:id). Ids are opaque strings ('CNP…'/'CP…'). Accumulated beyond the 50-item window.",
    ("id",),
    Column("id", "VARCHAR", "Career navigation profile id (opaque string)."),
    *person_columns(),
    Column("invitation_id", "BIGINT", "Invitation the profile stems from."),
    Column("invitation_created_at", "TIMESTAMPTZ", "When the invitation was created."),
    Column("test_taker_id", "BIGINT", "Test taker the profile belongs to."),
    *link_columns(),
    *team_columns(),
    *account_columns(),
)

SCORECARDS = entity(
    "scorecards",
    "Scorecards: how a test taker's scores align with a score profile (GET /test-takers/:id/scorecard?sp=). One row per (test taker, score profile short name).",
    ("test_taker_id", "score_profile_short_name"),
    Column("test_taker_id", "BIGINT", "Test taker ID."),
    Column("score_profile_short_name", "VARCHAR", "Score profile short name (`score_profile.short_name`); join score_profiles on this.", at("score_profile", "short_name")),
    Column("score_profile_id", "BIGINT", "Score profile id as nested in the scorecard; may differ from score_profiles.id.", at("score_profile", "id")),
    Column("score_profile_display_name", "VARCHAR", "Score profile display name.", at("score_profile", "display_name")),
    Column("score_profile_riasec_profile", "VARCHAR", "RIASEC code of the score profile.", at("score_profile", "riasec_profile")),
    Column("invitation_id", "BIGINT", "Invitation of the test taker."),
    *person_columns(),
    Column("career_navigation_profile_id", "VARCHAR", "Career navigation profile id; null until one exists."),
    Column("scorecard_url", "VARCHAR", "Browser scorecard in the JOFI app."),
    Column("riasec_profile", "VARCHAR", "The test taker's RIASEC code, e.g. 'RCI'."),
)

SCORECARD_SCORES = child(
    "scorecard_scores",
    "One row per score and per facet of a scorecard (`scores.<section>[]` and their `facets`). Replaced per scorecard whenever it is synced.",
    ("test_taker_id", "score_profile_short_name", "section", "score_id", "parent_score_id"),
    Column("test_taker_id", "BIGINT", "Test taker ID."),
    Column("score_profile_short_name", "VARCHAR", "Score profile short name of the scorecard."),
    Column("section", "VARCHAR", "Scorecard section: thinking_skills, personality_traits or career_interests."),
    Column("score_id", "BIGINT", "Score id (a score or a facet)."),
    Column("parent_score_id", "BIGINT", "Null for a top-level score; for a facet, the id of the score it belongs to."),
    Column("is_facet", "BOOLEAN", "True for a facet row, false for a top-level score."),
    Column("display_name", "VARCHAR", "Score name, e.g. 'Thinking Skills Overall', 'Reading'."),
    Column("short_name", "VARCHAR", "Score short name, e.g. 'think', 'think-read'."),
    Column("description", "VARCHAR", "What the score measures."),
    Column("is_starred", "BOOLEAN", "Whether the score profile stars this score."),
    Column("yellow_band", "BIGINT", "Yellow band value of the score profile, e.g. 5."),
    Column("test_taker_score", "DOUBLE", "The test taker's score (0–10, one decimal); null when the assessment is not completed."),
    parent="scorecards",
    list_key="scores",
    parent_columns=("test_taker_id", "score_profile_short_name"),
    items=score_items,
    nullable_key=("parent_score_id",),
)

JOB_FIT_REPORTS = entity(
    "job_fit_reports",
    "Job fit report per test taker (GET /test-takers/:id/job-fit-report); exists once the test taker has a career navigation profile.",
    ("test_taker_id",),
    Column("test_taker_id", "BIGINT", "Test taker ID."),
    Column("career_navigation_profile_id", "VARCHAR", "Career navigation profile id the report is based on."),
    Column("riasec_profile", "VARCHAR", "The test taker's RIASEC code."),
)

JOB_FIT_OCCUPATIONS = child(
    "job_fit_occupations",
    "Occupations of a job fit report, per job zone (`zones[].occupations[]`). Replaced per test taker whenever the report is synced.",
    ("test_taker_id", "zone", "onet_code"),
    Column("test_taker_id", "BIGINT", "Test taker ID."),
    Column("zone", "BIGINT", "O*NET job zone, 1 (little preparation) to 5 (extensive preparation)."),
    Column("rank", "BIGINT", "Position of the occupation within its zone as returned by the API (1 = first)."),
    Column("onet_code", "VARCHAR", "O*NET-SOC occupation code."),
    Column("title", "VARCHAR", "Occupation title."),
    Column("fit_score", "DOUBLE", "How well the occupation fits the test taker."),
    parent="job_fit_reports",
    list_key="zones",
    parent_columns=("test_taker_id",),
    items=occupation_items,
)

SYNC_RUNS = TableSpec(
    "sync_runs",
    "run_log",
    "One row per sync run of this mode: outcome, rows written per table, API requests made and list coverage.",
    ("run_id",),
    (
        Column("run_id", "VARCHAR", "Run identifier (e.g. the Dagster run id)."),
        Column("started_at", "TIMESTAMPTZ", "When the run started."),
        Column("finished_at", "TIMESTAMPTZ", "When the run finished fetching and merging (its publish comes after); finished_at - started_at is the 'fetch and merge' time of the sync summary."),
        Column("status", "VARCHAR", "Outcome: 'succeeded', 'partial' (published, a few records could not be fetched; see error) or 'failed' (nothing published)."),
        Column("error", "VARCHAR", "Error summary when the run failed (API keys redacted)."),
        Column("rows_inserted", "JSON", "Rows this run added per table: keys the warehouse did not hold before the run (this row and its sync_coverage rows included), e.g. {\"test_takers\": 3}. The same numbers as the sync summary and the Dagster materialization metadata."),
        Column("rows_updated", "JSON", "Rows per table that the warehouse held before this run and whose content the run changed (a record marked deleted included), each counted once however often the run wrote it."),
        Column("requests_total", "BIGINT", "API requests made by the run."),
        Column("requests", "JSON", "API requests per route, e.g. {\"GET /test-takers/:id\": 30}."),
        Column("coverage", "JSON", "List coverage per list route (same data as sync_coverage)."),
        Column("drift", "JSON", "Schema drift per table: fields the API sent that the docs do not list (`unknown`), documented fields it left out (`missing`) and values of the wrong type (`uncoercible`, null in the typed column), each with how many objects; {} when every object matched. `_raw` keeps what arrived."),
    ),
    system_columns=CHILD_SYSTEM,
)

SYNC_COVERAGE = TableSpec(
    "sync_coverage",
    "run_log",
    "Per run and list route: how many records the API says exist vs. how many the warehouse holds, so a gap is visible.",
    ("run_id", "list_route"),
    (
        Column("run_id", "VARCHAR", "Run identifier (sync_runs.run_id)."),
        Column("list_route", "VARCHAR", "List route read, e.g. 'GET /test-takers'."),
        Column("entity", "VARCHAR", "Entity/table the list fills, e.g. 'test_takers'."),
        Column("api_total_count", "BIGINT", "The list's `total_count`: records the API says exist."),
        Column("rows_held", "BIGINT", "Rows of that entity held in the warehouse after the run."),
        Column("has_more", "BOOLEAN", "The list's `has_more`: the window did not show everything."),
        Column("capped", "BOOLEAN", "True when the list could not be read completely (no working pagination)."),
        Column("read_at", "TIMESTAMPTZ", "When the list was read."),
    ),
    system_columns=CHILD_SYSTEM,
)

FETCH_STATE = TableSpec(
    "fetch_state",
    "state",
    "Why the sync last fetched each derived object (scorecard, job-fit report): the inputs it was fetched "
    "for, when and why. Committed in the same transaction as the object, so the next run asks again only "
    "when the inputs changed.",
    ("kind", "test_taker_id", "score_profile_short_name"),
    (
        Column("kind", "VARCHAR", "What was fetched: 'scorecard' or 'job_fit_report'."),
        Column("test_taker_id", "BIGINT", "Test taker the object belongs to."),
        Column("score_profile_short_name", "VARCHAR", "Score profile of a scorecard; null for a job-fit report."),
        Column("completions_hash", "VARCHAR", "md5 of the test taker's (assessment id, completed_at) list of assignments used for scoring when fetched, prefixed v2: (no prefix: all assignments, older runs): a new scoring completion changes it."),
        Column("career_navigation_profile_id", "VARCHAR", "The test taker's career navigation profile id when fetched."),
        Column("reason", "VARCHAR", "Why it was fetched: 'new', 'completions_changed', 'profile_changed' or 'full_refresh'."),
        Column("outcome", "VARCHAR", "'fetched' (stored), or 'not_found' (the API answered 404; asked again when the inputs change)."),
        Column("fetched_at", "TIMESTAMPTZ", "When the answer arrived."),
        Column("run_id", "VARCHAR", "Sync run that fetched it (sync_runs.run_id)."),
    ),
    system_columns=CHILD_SYSTEM,
    nullable_key=("score_profile_short_name",),
)

# A record whose every attempt failed in this many runs in a row (same inputs) is quarantined.
QUARANTINE_AFTER_RUNS = 3

FETCH_OUTCOMES = TableSpec(
    "fetch_outcomes",
    "state",
    "Records a GET by id did not bring back, remembered so the sync does not ask for them every night: "
    "ids JOFI answered 404 for that were never held ('not_found'), and ids every attempt failed for "
    "('failing'; quarantined, no longer asked, after a few runs in a row). Each is asked again when its "
    "inputs change, or on a full refresh; the row goes once the record is fetched.",
    ("entity", "record_key"),
    (
        Column("entity", "VARCHAR", "Entity (table) of the record, e.g. 'test_takers' or 'scorecards'."),
        Column("record_key", "VARCHAR", "The record's key as text: its id, or 'test taker id/score profile short name' for a scorecard."),
        Column("inputs", "VARCHAR", "md5 of what the record was wanted for when last asked: its own row and the rows that refer to it (a derived object: its test taker's completions and profile). A change asks again."),
        Column("outcome", "VARCHAR", "'not_found' (404 for a record never held) or 'failing' (every attempt failed, after retries)."),
        Column("failed_runs", "BIGINT", f"Runs in a row whose attempts all failed, with these inputs; quarantined from {QUARANTINE_AFTER_RUNS} on. 0 for not_found."),
        Column("error", "VARCHAR", "The last answer, in one line (API keys redacted)."),
        Column("first_at", "TIMESTAMPTZ", "When this outcome was first recorded for these inputs."),
        Column("last_at", "TIMESTAMPTZ", "When it was last asked."),
        Column("run_id", "VARCHAR", "Sync run that last asked (sync_runs.run_id)."),
    ),
    system_columns=CHILD_SYSTEM,
)

_CURRENT_TABLES: tuple[TableSpec, ...] = (
    ACCOUNT, USERS, TEAMS, EMAIL_TEMPLATES, ASSESSMENTS, SCORE_PROFILES, INVITATIONS,
    TEST_TAKERS, TEST_TAKER_ASSESSMENTS, CAREER_NAVIGATION_PROFILES, SCORECARDS,
    SCORECARD_SCORES, JOB_FIT_REPORTS, JOB_FIT_OCCUPATIONS, SYNC_RUNS, SYNC_COVERAGE, FETCH_STATE,
    FETCH_OUTCOMES,
)


def _versioned(spec: TableSpec) -> bool:
    """The registry marks entities `versioned`; a child table is versioned with its parent."""
    return spec.name in VERSIONED or (spec.kind == "child" and spec.parent in VERSIONED)


# Table -> its `<table>_history` spec, for every versioned entity table and child table.
HISTORY: dict[str, TableSpec] = {spec.name: history_of(spec) for spec in _CURRENT_TABLES if _versioned(spec)}

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (*_CURRENT_TABLES, *HISTORY.values())
}

# Entity name the sync passes to upsert() -> its table: one per registry entity, named alike.
ENTITY_TABLES: dict[str, TableSpec] = {name: TABLES[name] for name in ENTITIES}


def children_of(table: str) -> tuple[TableSpec, ...]:
    """Child tables filled from nested lists of `table`'s objects."""
    return tuple(spec for spec in TABLES.values() if spec.parent == table)
