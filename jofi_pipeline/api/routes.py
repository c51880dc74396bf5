"""The JOFI v2 READ routes as templates: the names used in logs, errors and request counts.

Templates, not URLs, are what leave the client: they group counts per route and cannot leak ids
or query strings. Write routes (POST/PUT /invitations) are deliberately absent.
"""

from __future__ import annotations

HEALTHCHECK = "/healthcheck"
ACCOUNT = "/accounts"
USERS = "/users"
TEAMS = "/teams"
EMAIL_TEMPLATES = "/email-templates"
ASSESSMENTS = "/assessments"
SCORE_PROFILES = "/score-profiles"
INVITATIONS = "/invitations"
INVITATION = "/invitations/{invitation_id}"
TEST_TAKERS = "/test-takers"
TEST_TAKER = "/test-takers/{test_taker_id}"
SCORECARD = "/test-takers/{test_taker_id}/scorecard"
JOB_FIT_REPORT = "/test-takers/{test_taker_id}/job-fit-report"
CAREER_NAVIGATION_PROFILES = "/career-navigation-profiles"
CAREER_NAVIGATION_PROFILE = "/career-navigation-profiles/{career_navigation_profile_id}"

# Query parameter of the scorecard route: a score profile's short_name.
SCORE_PROFILE_PARAM = "sp"
