"""SQL over the working database that decides what a run fetches by id, and why.

Kept apart from the runner so the rules read as one list. Every query takes the same named
parameters (DuckDB `$name`): `$full` (a full refresh: ask for everything held), `$in_window`
(ids the capped list just returned, so not worth a GET by id), for scorecards `$profiles`
(short names of the score profiles to fetch) and, for test takers, `$asked` (already asked for
by this run).

Derived objects (scorecards, job-fit reports) are fetched again only when their inputs changed
since `fetch_state` says they were last fetched. The inputs of a test taker are its
(assessment id, completed_at) list (hashed) and its career navigation profile id. Their plans
select exactly `PLAN_COLUMNS` (declared by the warehouse's FetchRecord), by name.

Which records are open is the registry's `open_when` (entities.py); these queries implement it.
"""

from jofi_pipeline.warehouse.records import PLAN_COLUMNS

# fetch_state.kind of each derived entity.
FETCH_KIND = {"scorecards": "scorecard", "job_fit_reports": "job_fit_report"}
_PLAN = ", ".join(PLAN_COLUMNS)

# Dormant open records (no activity for DORMANT_AFTER_DAYS before the account's newest activity —
# the account's own clock, so a replayed or simulated account behaves the same) are refreshed in a
# rotation by the calendar day of the run (so the rotation moves on even when the account is
# quiet): most open records are abandoned, and asking for all of them every night would cost more
# than everything that really changed. The rotation backs off with idleness, as polling does: a
# record idle up to LONG_DORMANT_AFTER_DAYS is asked for once a week, one idle longer once every
# four weeks (the longer a record has been idle, the less likely it comes back). A dormant record
# that comes back is seen within that turn (at once with webhooks, issue 6); a full refresh asks
# for all.
DORMANT_AFTER_DAYS = 30
LONG_DORMANT_AFTER_DAYS = 180
DORMANT_TURN_DAYS = 7
LONG_DORMANT_TURN_DAYS = 28


def dormant_turn(id_column: str, last_activity: str) -> str:
    """True on the nights a dormant record's rotation turn comes (weekly, or four-weekly when idle long)."""
    day = "epoch(now())::BIGINT // 86400"
    return (
        f"(CASE WHEN {last_activity} >= clock.account_now - INTERVAL {LONG_DORMANT_AFTER_DAYS} DAY "
        f"THEN ({id_column} + {day}) % {DORMANT_TURN_DAYS} ELSE ({id_column} + {day}) % {LONG_DORMANT_TURN_DAYS} END) = 0"
    )


# The enabled score profiles the warehouse holds (a targeted run's scorecards).
SCORE_PROFILE_NAMES = "SELECT short_name FROM score_profiles WHERE short_name IS NOT NULL AND _deleted_at IS NULL ORDER BY 1"


# Invitations not accepted yet: recent ones every night, dormant ones in the rotation. Full: all held.
OPEN_INVITATIONS = f"""
    WITH clock AS (SELECT max(created_at) AS account_now FROM invitations)
    SELECT i.id FROM invitations i, clock
    WHERE i.id NOT IN (SELECT unnest($in_window::BIGINT[]))
      AND ($full OR (i._deleted_at IS NULL AND (i.accepted_at IS NULL OR i.test_taker_id IS NULL) AND (
          i.created_at IS NULL OR i.created_at >= clock.account_now - INTERVAL {DORMANT_AFTER_DAYS} DAY
          OR {dormant_turn("i.id", "i.created_at")})))
    ORDER BY i.id
"""

# Invitations that fell behind their test taker (run after the test takers were refreshed): a test
# taker names an invitation we hold as not accepted, or has a profile the invitation lacks.
INVITATIONS_BEHIND_TEST_TAKERS = """
    SELECT DISTINCT i.id FROM invitations i
    JOIN test_takers t ON t.id = i.test_taker_id OR t.invitation_id = i.id
    WHERE i._deleted_at IS NULL AND NOT $full
      AND i.id NOT IN (SELECT unnest($in_window::BIGINT[]))
      AND (i.accepted_at IS NULL OR i.test_taker_id IS NULL
           OR (i.career_navigation_profile_id IS NULL AND t.career_navigation_profile_id IS NOT NULL))
    ORDER BY i.id
"""

# Test takers whose detail (assigned assessments) we lack, that still have an assessment to complete,
# that a list shows to have gained a career navigation profile, or that we only know by reference
# from an invitation or a profile. The list items carry no assessments, so window membership does
# not spare a GET by id here. Open but dormant ones are refreshed in the rotation above.
# A test taker whose assessments are all completed is not asked again for lacking a profile: the
# only change left to it is a new profile, and a new profile shows up in the lists (newest first,
# each naming its test taker; the invitation and test taker items carry its id), which the
# `gained a profile` rule turns into a GET by id.
# `$asked`: test takers this run already asked for while the lists paged (sync/early_details.py),
# left out of the first rule only: a profile a list names after that answer is still followed.
TEST_TAKERS_NEEDING_DETAIL = f"""
    WITH activity AS (
        SELECT test_taker_id,
               max(greatest(created_at, started_at, completed_at, progress_saved_at)) AS last_activity,
               bool_or(completed_at IS NULL) AS has_open_assessment
        FROM test_taker_assessments GROUP BY test_taker_id
    ),
    clock AS (SELECT max(last_activity) AS account_now FROM activity)
    SELECT t.id FROM test_takers t LEFT JOIN activity a ON a.test_taker_id = t.id, clock
    WHERE t.id NOT IN (SELECT unnest($asked::BIGINT[])) AND ($full OR (t._deleted_at IS NULL AND (
        a.test_taker_id IS NULL
        OR (a.has_open_assessment AND (
            a.last_activity IS NULL
            OR a.last_activity >= clock.account_now - INTERVAL {DORMANT_AFTER_DAYS} DAY
            OR {dormant_turn("t.id", "a.last_activity")})))))
    UNION
    -- gained a profile: a profile or an invitation names a profile this test taker's row lacks
    SELECT t.id FROM test_takers t JOIN (
        SELECT test_taker_id, id AS profile_id FROM career_navigation_profiles WHERE _deleted_at IS NULL
        UNION ALL
        SELECT test_taker_id, career_navigation_profile_id FROM invitations WHERE _deleted_at IS NULL
    ) named ON named.test_taker_id = t.id
    WHERE t._deleted_at IS NULL AND named.profile_id IS NOT NULL
      AND t.career_navigation_profile_id IS DISTINCT FROM named.profile_id
    UNION
    SELECT test_taker_id FROM invitations
    WHERE test_taker_id IS NOT NULL AND test_taker_id NOT IN (SELECT id FROM test_takers)
    UNION
    SELECT test_taker_id FROM career_navigation_profiles
    WHERE test_taker_id IS NOT NULL AND test_taker_id NOT IN (SELECT id FROM test_takers)
    ORDER BY 1
"""

# Profiles referenced but not held; on a full refresh every held profile outside the window too.
PROFILES_NEEDED = """
    (SELECT career_navigation_profile_id FROM test_takers WHERE career_navigation_profile_id IS NOT NULL
     UNION
     SELECT career_navigation_profile_id FROM invitations WHERE career_navigation_profile_id IS NOT NULL
     EXCEPT
     SELECT id FROM career_navigation_profiles)
    UNION
    SELECT id FROM career_navigation_profiles
    WHERE $full AND id NOT IN (SELECT unnest($in_window::VARCHAR[]))
    ORDER BY 1
"""

# One row per live test taker: what its scorecards and job-fit report are computed from.
# Only assignments used for scoring count (the docs' `is_used_for_scoring`; unknown counts): a
# Prescreen that JOFI does not score cannot change a scorecard, so completing it fetches nothing.
# `completions_hash` is versioned ('v2:' = scoring assignments only); a fetch_state row written
# before (no prefix) is compared with the old all-assignments hash, so the change of rule does not
# refetch every scorecard once.
_COMPLETIONS = """md5(coalesce(string_agg(
                   a.assessment_id::VARCHAR || '@' || coalesce(epoch_us(a.completed_at)::VARCHAR, '-'),
                   ',' ORDER BY a.assessment_id, a.id){only}, ''))"""
_TEST_TAKER_INPUTS = f"""
    inputs AS (
        SELECT t.id AS test_taker_id,
               t.career_navigation_profile_id,
               'v2:' || {_COMPLETIONS.format(only=" FILTER (WHERE a.is_used_for_scoring IS NOT FALSE)")} AS completions_hash,
               {_COMPLETIONS.format(only="")} AS all_completions_hash,
               count(a.completed_at) FILTER (WHERE a.is_used_for_scoring IS NOT FALSE) AS completed
        FROM test_takers t LEFT JOIN test_taker_assessments a ON a.test_taker_id = t.id
        WHERE t._deleted_at IS NULL
        GROUP BY t.id, t.career_navigation_profile_id
    )
"""


def _reason(inputs: str, state: str, first: str, second: str) -> str:
    """Why an object is wanted: never fetched, or which input changed, or only the full refresh."""
    checks = {
        "completions_changed": (
            f"CASE WHEN starts_with({state}.completions_hash, 'v2:') "
            f"THEN {state}.completions_hash IS DISTINCT FROM {inputs}.completions_hash "
            f"ELSE {state}.completions_hash IS DISTINCT FROM {inputs}.all_completions_hash END"
        ),
        "profile_changed": f"{state}.career_navigation_profile_id IS DISTINCT FROM {inputs}.career_navigation_profile_id",
    }
    return (
        f"CASE WHEN {state}.kind IS NULL THEN 'new' "
        f"WHEN {checks[first]} THEN '{first}' WHEN {checks[second]} THEN '{second}' "
        "ELSE 'full_refresh' END"
    )


# Scorecards: (test taker with a completed scoring assessment) x (score profile), new or changed inputs.
SCORECARDS_WANTED = f"""
    WITH {_TEST_TAKER_INPUTS},
    profiles AS (SELECT DISTINCT unnest($profiles::VARCHAR[]) AS short_name),
    candidates AS (
        SELECT i.test_taker_id, p.short_name AS score_profile_short_name, i.completions_hash,
               i.career_navigation_profile_id,
               {_reason('i', 's', 'completions_changed', 'profile_changed')} AS reason
        FROM inputs i CROSS JOIN profiles p
        LEFT JOIN fetch_state s
          ON s.kind = '{FETCH_KIND["scorecards"]}' AND s.test_taker_id = i.test_taker_id
         AND s.score_profile_short_name = p.short_name
        WHERE i.completed > 0
    )
    SELECT {_PLAN} FROM candidates WHERE $full OR reason <> 'full_refresh'
    ORDER BY test_taker_id, score_profile_short_name
"""

# Job-fit reports: test takers with a career navigation profile, new or changed inputs.
JOB_FIT_REPORTS_WANTED = f"""
    WITH {_TEST_TAKER_INPUTS},
    candidates AS (
        SELECT i.test_taker_id, NULL::VARCHAR AS score_profile_short_name, i.completions_hash,
               i.career_navigation_profile_id,
               {_reason('i', 's', 'profile_changed', 'completions_changed')} AS reason
        FROM inputs i
        LEFT JOIN fetch_state s ON s.kind = '{FETCH_KIND["job_fit_reports"]}' AND s.test_taker_id = i.test_taker_id
        WHERE i.career_navigation_profile_id IS NOT NULL
    )
    SELECT {_PLAN} FROM candidates WHERE $full OR reason <> 'full_refresh'
    ORDER BY test_taker_id
"""

