"""Analyst views created in the published database (never in the work database).

Views read unqualified table names so they bind to the file they live in. Records marked
deleted (`_deleted_at`, the API answered 404) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ViewSpec:
    name: str
    comment: str
    sql: str
    column_comments: dict[str, str] = field(default_factory=dict)


# Test taker linked to each invitation: the invitation's own test_taker_id, else the test
# taker that names the invitation (a list item may lack one side of the link).
_INVITATION_LINKS = """
    live_test_takers AS (SELECT * FROM test_takers WHERE _deleted_at IS NULL),
    profiles AS (
        SELECT test_taker_id, min(id) AS id FROM career_navigation_profiles
        WHERE _deleted_at IS NULL AND test_taker_id IS NOT NULL GROUP BY test_taker_id),
    assignment_totals AS (
        SELECT test_taker_id,
               count(*) AS assigned,
               count(*) FILTER (WHERE started_at IS NOT NULL OR completed_at IS NOT NULL) AS started,
               count(completed_at) AS completed,
               max(greatest(created_at, started_at, completed_at, progress_saved_at)) AS last_activity_at
        FROM test_taker_assessments GROUP BY test_taker_id)"""

INVITATION_FUNNEL = ViewSpec(
    "invitation_funnel",
    "Invitation funnel by team and ISO week (UTC) of the invitation's created_at: invited -> accepted -> all assessments completed -> career navigation profile.",
    f"""
WITH {_INVITATION_LINKS},
    linked AS (
        SELECT i.id, i.created_at, i.accepted_at,
               coalesce(i.team_id, tt.team_id) AS team_id,
               coalesce(i.team_display_name, tt.team_display_name) AS team_display_name,
               tt.id AS test_taker_id,
               coalesce(i.career_navigation_profile_id, tt.career_navigation_profile_id, p.id) AS profile_id
        FROM invitations i
        LEFT JOIN live_test_takers tt
          ON tt.id = coalesce(i.test_taker_id,
                              (SELECT min(x.id) FROM live_test_takers x WHERE x.invitation_id = i.id))
        LEFT JOIN profiles p ON p.test_taker_id = tt.id
        WHERE i._deleted_at IS NULL)
SELECT l.team_id,
       max(l.team_display_name) AS team_display_name,
       CAST(date_trunc('week', l.created_at AT TIME ZONE 'UTC') AS DATE) AS week_start,
       isoyear(l.created_at AT TIME ZONE 'UTC') AS iso_year,
       week(l.created_at AT TIME ZONE 'UTC') AS iso_week,
       count(*) AS invited,
       count(*) FILTER (WHERE l.accepted_at IS NOT NULL OR l.test_taker_id IS NOT NULL) AS accepted,
       count(*) FILTER (WHERE a.assigned > 0 AND a.completed = a.assigned) AS all_assessments_completed,
       count(*) FILTER (WHERE l.profile_id IS NOT NULL) AS with_profile
FROM linked l LEFT JOIN assignment_totals a ON a.test_taker_id = l.test_taker_id
GROUP BY l.team_id, week_start, iso_year, iso_week
ORDER BY week_start, l.team_id
""",
    {
        "team_id": "Team of the invitation (falls back to the test taker's team).",
        "week_start": "Monday (UTC) of the ISO week the invitation was created in.",
        "iso_year": "ISO year of the invitation week.",
        "iso_week": "ISO week number of the invitation week.",
        "invited": "Invitations created that week.",
        "accepted": "Of those, accepted (a test taker exists).",
        "all_assessments_completed": "Of those, the test taker completed every assigned assessment (at least one assigned).",
        "with_profile": "Of those, a career navigation profile exists.",
    },
)

TEST_TAKER_PROGRESS = ViewSpec(
    "test_taker_progress",
    "One row per test taker: assessments assigned/started/completed, whether a career navigation profile exists, and the last activity seen.",
    f"""
WITH {_INVITATION_LINKS}
SELECT tt.id AS test_taker_id, tt.first_name, tt.last_name, tt.email, tt.custom_id, tt.person_id,
       tt.team_id, tt.team_display_name, tt.invitation_id, tt.invitation_created_at,
       coalesce(a.assigned, 0) AS assessments_assigned,
       coalesce(a.started, 0) AS assessments_started,
       coalesce(a.completed, 0) AS assessments_completed,
       coalesce(a.assigned > 0 AND a.completed = a.assigned, false) AS all_completed,
       coalesce(tt.career_navigation_profile_id, p.id) IS NOT NULL AS has_profile,
       coalesce(tt.career_navigation_profile_id, p.id) AS career_navigation_profile_id,
       greatest(tt.invitation_created_at, a.last_activity_at) AS last_activity_at
FROM live_test_takers tt
LEFT JOIN assignment_totals a ON a.test_taker_id = tt.id
LEFT JOIN profiles p ON p.test_taker_id = tt.id
ORDER BY tt.id
""",
    {
        "assessments_assigned": "Assessments assigned to the test taker.",
        "assessments_started": "Assigned assessments started (or completed).",
        "assessments_completed": "Assigned assessments completed.",
        "all_completed": "True when at least one assessment is assigned and all are completed.",
        "has_profile": "Whether a career navigation profile exists.",
        "last_activity_at": "Latest of invitation created, assessment assigned/started/completed/progress saved.",
    },
)

SCORES_LONG = ViewSpec(
    "scores_long",
    "Scorecard scores in long form: one row per test taker x score profile x score or facet, with names; pivot on score_path.",
    """
SELECT s.test_taker_id, tt.first_name, tt.last_name, tt.email, tt.team_id, tt.team_display_name,
       s.score_profile_short_name,
       coalesce(sp.display_name, sc.score_profile_display_name) AS score_profile_display_name,
       s.section, s.score_id, s.parent_score_id, s.is_facet,
       s.short_name AS score_short_name, s.display_name AS score_display_name,
       parent.short_name AS parent_short_name, parent.display_name AS parent_display_name,
       concat_ws('/', s.section, parent.short_name, s.short_name) AS score_path,
       s.test_taker_score, s.yellow_band, s.is_starred
FROM scorecard_scores s
LEFT JOIN test_takers tt ON tt.id = s.test_taker_id
LEFT JOIN scorecards sc
  ON sc.test_taker_id = s.test_taker_id AND sc.score_profile_short_name = s.score_profile_short_name
LEFT JOIN (SELECT short_name, max(display_name) AS display_name FROM score_profiles GROUP BY short_name) sp
  ON sp.short_name = s.score_profile_short_name
LEFT JOIN scorecard_scores parent
  ON s.parent_score_id IS NOT NULL AND parent.parent_score_id IS NULL
 AND parent.test_taker_id = s.test_taker_id
 AND parent.score_profile_short_name = s.score_profile_short_name
 AND parent.section = s.section AND parent.score_id = s.parent_score_id
WHERE tt._deleted_at IS NULL AND sc._deleted_at IS NULL
ORDER BY s.test_taker_id, s.score_profile_short_name, s.section, coalesce(s.parent_score_id, s.score_id), s.is_facet, s.score_id
""",
    {
        "score_path": "section/short_name for a score, section/parent short_name/short_name for a facet: a stable pivot column.",
        "test_taker_score": "The test taker's score (0-10); null when not completed.",
        "score_short_name": "Short name of the score or facet (scorecard_scores.short_name).",
        "score_display_name": "Display name of the score or facet (scorecard_scores.display_name).",
        "parent_short_name": "Short name of the score a facet belongs to; null for a top-level score.",
        "parent_display_name": "Display name of the score a facet belongs to; null for a top-level score.",
    },
)

def _last_is_delete() -> str:
    """Aggregate: the key's newest version is a delete marker (the record is gone now)."""
    return "arg_max(_change, _valid_from) = 'delete'"


FUNNEL_TIMINGS = ViewSpec(
    "funnel_timings",
    "One row per invitation: when it was sent, accepted, its test taker's first completion and the moment every "
    "assigned assessment was completed, with the hours between. Computed from the history tables, so a value the "
    "API later overwrote or cleared (a retaken assessment, a reassigned link) still counts from its first sighting. "
    "Deleted invitations and test takers are left out.",
    f"""
WITH invitation AS (
    SELECT id AS invitation_id,
           min(created_at) AS invited_at,
           min(accepted_at) AS accepted_at,
           min(_valid_from) FILTER (WHERE accepted_at IS NOT NULL OR test_taker_id IS NOT NULL) AS accepted_seen_at,
           arg_max(test_taker_id, _valid_from) FILTER (WHERE test_taker_id IS NOT NULL) AS test_taker_id,
           arg_max(team_id, _valid_from) AS team_id,
           arg_max(team_display_name, _valid_from) AS team_display_name,
           {_last_is_delete()} AS deleted
    FROM invitations_history GROUP BY id),
taker AS (
    SELECT id AS test_taker_id,
           arg_max(invitation_id, _valid_from) AS invitation_id,
           min(_valid_from) AS first_seen_at,
           {_last_is_delete()} AS deleted
    FROM test_takers_history GROUP BY id),
taker_of_invitation AS (
    SELECT invitation_id, min(test_taker_id) AS test_taker_id FROM taker WHERE NOT deleted GROUP BY invitation_id),
assignment AS (
    SELECT test_taker_id, id,
           min(completed_at) AS first_completed_at,
           {_last_is_delete()} AS removed
    FROM test_taker_assessments_history GROUP BY test_taker_id, id),
completion AS (
    SELECT test_taker_id,
           min(first_completed_at) AS first_completion_at,
           count(*) FILTER (WHERE NOT removed) AS assigned,
           count(first_completed_at) FILTER (WHERE NOT removed) AS completed,
           max(first_completed_at) FILTER (WHERE NOT removed) AS last_completion_at
    FROM assignment GROUP BY test_taker_id),
linked AS (
    SELECT i.*, t.test_taker_id AS linked_test_taker_id, t.first_seen_at
    FROM invitation i
    LEFT JOIN taker_of_invitation x ON x.invitation_id = i.invitation_id
    LEFT JOIN taker t ON t.test_taker_id = coalesce(i.test_taker_id, x.test_taker_id) AND NOT t.deleted
    WHERE NOT i.deleted),
stages AS (
    SELECT l.invitation_id, l.team_id, l.team_display_name, l.linked_test_taker_id AS test_taker_id,
           l.invited_at,
           coalesce(l.accepted_at, CASE WHEN l.linked_test_taker_id IS NOT NULL THEN least(l.accepted_seen_at, l.first_seen_at) END) AS accepted_at,
           c.first_completion_at,
           CASE WHEN c.assigned > 0 AND c.completed = c.assigned THEN c.last_completion_at END AS all_completed_at,
           coalesce(c.assigned, 0) AS assessments_assigned,
           coalesce(c.completed, 0) AS assessments_completed
    FROM linked l LEFT JOIN completion c ON c.test_taker_id = l.linked_test_taker_id)
SELECT *,
       date_diff('second', invited_at, accepted_at) / 3600.0 AS hours_invited_to_accepted,
       date_diff('second', accepted_at, first_completion_at) / 3600.0 AS hours_accepted_to_first_completion,
       date_diff('second', first_completion_at, all_completed_at) / 3600.0 AS hours_first_to_all_completions,
       date_diff('second', invited_at, all_completed_at) / 3600.0 AS hours_invited_to_all_completions
FROM stages
ORDER BY invited_at, invitation_id
""",
    {
        "invitation_id": "Invitation ID.",
        "team_id": "Team of the invitation (its newest version).",
        "team_display_name": "Team name (the invitation's newest version).",
        "test_taker_id": "Test taker created on acceptance (the invitation's link, else the test taker that names it); null until accepted.",
        "invited_at": "When the invitation was created (its created_at).",
        "accepted_at": "When it was accepted: its accepted_at, else the first moment a sync saw it linked to a test taker; null while not accepted.",
        "first_completion_at": "Earliest completed_at of any of the test taker's assessments, over every version seen.",
        "all_completed_at": "When the last still-assigned assessment was first completed; null until every assigned assessment is completed.",
        "assessments_assigned": "Assessments assigned to the test taker now (removed assignments excluded).",
        "assessments_completed": "Of those, how many were ever seen completed.",
        "hours_invited_to_accepted": "Hours from invited_at to accepted_at.",
        "hours_accepted_to_first_completion": "Hours from accepted_at to first_completion_at.",
        "hours_first_to_all_completions": "Hours from first_completion_at to all_completed_at.",
        "hours_invited_to_all_completions": "Hours from invited_at to all_completed_at: the whole funnel.",
    },
)


VIEWS: tuple[ViewSpec, ...] = (INVITATION_FUNNEL, TEST_TAKER_PROGRESS, SCORES_LONG, FUNNEL_TIMINGS)
