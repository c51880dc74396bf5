"""Flattening doc-shaped objects into typed rows (no database involved)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.warehouse.flatten import flatten_entity, parse_timestamp
from jofi_pipeline.warehouse.tables import ENTITY_TABLES, TABLES


def one_row(table: pa.Table) -> dict:
    assert table.num_rows == 1
    return table.to_pylist()[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-11T22:23:05.312696+00:00", datetime(2026, 12, 11, 22, 23, 5, 312696, tzinfo=UTC)),
        ("2026-06-26T11:41:15.44745+00:00", datetime(2026, 6, 26, 11, 41, 15, 447450, tzinfo=UTC)),
        ("2025-02-03T12:43:31.244+00:00", datetime(2025, 2, 3, 12, 43, 31, 244000, tzinfo=UTC)),
        ("2026-02-03T12:43:36.744Z", datetime(2026, 2, 3, 12, 43, 36, 744000, tzinfo=UTC)),
        ("2026-02-03T12:43:36Z", datetime(2026, 2, 3, 12, 43, 36, tzinfo=UTC)),
        ("2026-02-03T12:43:36.7+00:00", datetime(2026, 2, 3, 12, 43, 36, 700000, tzinfo=UTC)),
        ("2026-02-03T14:43:36+02:00", datetime(2026, 2, 3, 12, 43, 36, tzinfo=UTC)),
        ("not a date", None),
        ("", None),
        (1738586616, None),
        (None, None),
    ],
)
def test_parse_timestamp_accepts_doc_formats_and_nulls_garbage(text, expected):
    assert parse_timestamp(text) == expected


def test_every_entity_has_a_spec_and_every_column_a_comment():
    assert set(ENTITY_TABLES) == {
        "account", "users", "teams", "email_templates", "assessments", "score_profiles", "invitations",
        "test_takers", "career_navigation_profiles", "scorecards", "job_fit_reports",
    }
    for spec in TABLES.values():
        assert spec.comment
        assert all(column.comment for column in spec.all_columns), spec.name
        assert set(spec.key) <= set(spec.column_names)


def test_account_flattens_with_types():
    row = one_row(flatten_entity("account", [docs.account(display_name_external=None)])["account"])
    assert row["id"] == 68 and row["display_name"] == "CoffeeBean Inc"
    assert row["display_name_external"] is None
    assert row["webhooks_enabled"] is True and row["invitations_count"] == 162


def test_users_flatten_default_team_and_assessment_ids():
    row = one_row(flatten_entity("users", [docs.user()])["users"])
    assert (row["default_team_id"], row["default_team_display_name"]) == (328, "Recruiting")
    assert row["default_assessment_ids"] == [6, 7]
    assert row["default_email_template_id"] == 1000
    nulls = one_row(flatten_entity("users", [docs.user(default_team=None, default_assessments=[])])["users"])
    assert nulls["default_team_id"] is None and nulls["default_assessment_ids"] == []


def test_teams_templates_assessments_score_profiles():
    assert one_row(flatten_entity("teams", [docs.team()])["teams"])["test_takers_count"] == 92
    template = one_row(flatten_entity("email_templates", [docs.email_template()])["email_templates"])
    assert template["team_ids"] == [178, 328]
    table = flatten_entity("email_templates", [docs.email_template(team_ids=[])])["email_templates"]
    assert table.schema.field("team_ids").type == pa.list_(pa.int64())
    assert one_row(flatten_entity("assessments", [docs.assessment(7)])["assessments"])["short_name"] == "Thinking"
    assert one_row(flatten_entity("score_profiles", [docs.score_profile()])["score_profiles"])["short_name"] == "JOFI-295-AS"


def test_invitation_flattens_team_and_assessments():
    row = one_row(flatten_entity("invitations", [docs.invitation(id=2345723457)])["invitations"])
    assert row["id"] == 2345723457  # > 2^31
    assert row["team_id"] == 328 and row["team_display_name"] == "Recruiting"
    assert row["assessment_ids"] == [6, 7]
    assert row["accepted_at"] is None and row["test_taker_id"] is None
    assert row["created_at"] == datetime(2026, 2, 3, 12, 41, 35, 34681, tzinfo=UTC)


def test_test_taker_list_item_big_ids_nested_team_account():
    tables = flatten_entity("test_takers", [docs.test_taker_list_item()])
    row = one_row(tables["test_takers"])
    assert tables["test_takers"].schema.field("id").type == pa.int64()
    assert row["id"] == docs.BIG_TEST_TAKER_ID > 2**31
    assert row["invitation_id"] == docs.BIG_INVITATION_ID
    assert (row["team_id"], row["account_id"], row["account_display_name"]) == (1234, 999, "CoffeeBean Inc")
    assert row["career_navigation_profile_id"] is None
    assert tables["test_taker_assessments"].num_rows == 0  # list item has no assigned_assessments


def test_test_taker_by_id_yields_assignments():
    rows = flatten_entity("test_takers", [docs.test_taker()])["test_taker_assessments"].to_pylist()
    assert [(r["id"], r["test_taker_id"], r["assessment_id"], r["short_name"]) for r in rows] == [
        (11111, docs.BIG_TEST_TAKER_ID, 6, "Personality"),
        (22222, docs.BIG_TEST_TAKER_ID, 7, "Thinking"),
    ]
    assert rows[0]["started_at"] is None
    assert rows[1]["started_at"] == datetime(2025, 2, 3, 12, 43, 31, 244000, tzinfo=UTC)
    assert rows[1]["completed_at"] == datetime(2026, 2, 3, 12, 50, 36, 744000, tzinfo=UTC)
    assert rows[1]["is_used_for_scoring"] is True


def test_career_navigation_profile_id_is_varchar():
    table = flatten_entity("career_navigation_profiles", [docs.career_navigation_profile("CP8ABC123HIJ")])["career_navigation_profiles"]
    assert table.schema.field("id").type == pa.string()
    assert one_row(table)["id"] == "CP8ABC123HIJ"


def test_scorecard_scores_one_row_per_score_and_facet():
    tables = flatten_entity("scorecards", [docs.scorecard()])
    card = one_row(tables["scorecards"])
    assert (card["test_taker_id"], card["score_profile_short_name"], card["score_profile_id"]) == (
        docs.BIG_TEST_TAKER_ID, "JOFI-295-AS", 1000)
    rows = {(r["section"], r["score_id"]): r for r in tables["scorecard_scores"].to_pylist()}
    assert set(rows) == {("thinking_skills", 1), ("thinking_skills", 2), ("thinking_skills", 3), ("personality_traits", 10)}
    assert rows[("thinking_skills", 1)]["parent_score_id"] is None and rows[("thinking_skills", 1)]["is_facet"] is False
    assert rows[("thinking_skills", 2)]["parent_score_id"] == 1 and rows[("thinking_skills", 2)]["is_facet"] is True
    assert rows[("thinking_skills", 2)]["test_taker_score"] == 7.0
    assert rows[("thinking_skills", 3)]["test_taker_score"] is None
    assert rows[("thinking_skills", 1)]["yellow_band"] == 5 and rows[("thinking_skills", 1)]["is_starred"] is True


def test_job_fit_report_occupations_per_zone():
    tables = flatten_entity("job_fit_reports", [docs.job_fit_report()])
    assert one_row(tables["job_fit_reports"])["riasec_profile"] == "RCI"
    rows = [(r["zone"], r["rank"], r["onet_code"], r["fit_score"]) for r in tables["job_fit_occupations"].to_pylist()]
    assert rows == [(1, 1, "35-2014.00", 0.91), (1, 2, "53-7062.00", 0.72), (5, 1, "29-1141.00", 0.88)]


def test_extra_missing_and_drifting_fields_never_fail():
    odd = docs.test_taker_list_item(
        brand_new_field={"x": 1},            # unknown: kept in raw only
        invitation_id="1234612346",          # type drift: string where int expected
        invitation_created_at="yesterday",   # unparseable timestamp
        team="Recruiting",                   # nested object became a string
        first_name=42,                       # int where string expected
    )
    del odd["email"]                         # missing field
    tables = flatten_entity("test_takers", [odd])
    row = one_row(tables["test_takers"])
    assert row["invitation_id"] is None and row["invitation_created_at"] is None
    assert row["team_id"] is None and row["first_name"] is None and row["email"] is None
    assert '"brand_new_field":{"x":1}' in row["_raw"] and '"invitation_id":"1234612346"' in row["_raw"]
    assert "brand_new_field" not in tables["test_takers"].column_names


def test_objects_without_a_usable_key_are_left_out():
    tables = flatten_entity("teams", [docs.team(id=None), docs.team(id="328"), docs.team(id=True), docs.team()])
    assert tables["teams"].column("id").to_pylist() == [328]
