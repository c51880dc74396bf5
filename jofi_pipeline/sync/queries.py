"""SQL over the working database that decides what a run fetches by id.

Kept apart from the runner so the rules (what counts as "open") read as one list.
"""

# Not accepted yet, or accepted but without a profile: these can still change.
OPEN_INVITATIONS = """
    SELECT id FROM invitations
    WHERE _deleted_at IS NULL
      AND (accepted_at IS NULL OR test_taker_id IS NULL OR career_navigation_profile_id IS NULL)
    ORDER BY id
"""

# Test takers whose detail (assigned assessments) we lack, that are still open (an assessment not
# completed, or no profile), or that we only know by reference from an invitation or a profile.
TEST_TAKERS_NEEDING_DETAIL = """
    SELECT t.id FROM test_takers t
    WHERE t._deleted_at IS NULL AND (
        t.career_navigation_profile_id IS NULL
        OR NOT EXISTS (SELECT 1 FROM test_taker_assessments a WHERE a.test_taker_id = t.id)
        OR EXISTS (SELECT 1 FROM test_taker_assessments a
                   WHERE a.test_taker_id = t.id AND a.completed_at IS NULL))
    UNION
    SELECT test_taker_id FROM invitations
    WHERE test_taker_id IS NOT NULL AND test_taker_id NOT IN (SELECT id FROM test_takers)
    UNION
    SELECT test_taker_id FROM career_navigation_profiles
    WHERE test_taker_id IS NOT NULL AND test_taker_id NOT IN (SELECT id FROM test_takers)
"""

PROFILES_MISSING = """
    SELECT career_navigation_profile_id FROM test_takers
    WHERE career_navigation_profile_id IS NOT NULL
    UNION
    SELECT career_navigation_profile_id FROM invitations
    WHERE career_navigation_profile_id IS NOT NULL
    EXCEPT
    SELECT id FROM career_navigation_profiles
"""

ALL_PROFILES = "SELECT id FROM career_navigation_profiles WHERE _deleted_at IS NULL ORDER BY id"

TEST_TAKERS_WITH_COMPLETIONS = """
    SELECT DISTINCT t.id FROM test_takers t JOIN test_taker_assessments a ON a.test_taker_id = t.id
    WHERE t._deleted_at IS NULL AND a.completed_at IS NOT NULL
    ORDER BY t.id
"""

TEST_TAKERS_WITH_PROFILE = """
    SELECT id FROM test_takers
    WHERE _deleted_at IS NULL AND career_navigation_profile_id IS NOT NULL
    ORDER BY id
"""

ALL_TABLES = "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name"
