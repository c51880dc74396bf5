"""The entity registry: its id rules (property-tested), and that the rooms agree with it.

Expectations are written out by hand on purpose: a registry edit that changes what the pipeline
reads, accepts or keeps history of has to change a line here too.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jofi_pipeline import entities
from jofi_pipeline.entities import ENTITIES, InvalidIdError, parse_id, parse_int_id, parse_profile_id
from jofi_pipeline.warehouse.tables import ENTITY_TABLES, TABLES

MAX = 2**63 - 1


@given(st.integers(min_value=1, max_value=MAX))
def test_every_bigint_id_is_accepted_as_int_or_digits(number):
    assert parse_int_id(number) == number
    assert parse_int_id(str(number)) == number
    assert parse_int_id(f" {number}\n") == number


@given(st.integers().filter(lambda n: n < 1 or n > MAX))
def test_ids_outside_one_to_two_to_the_63_are_refused(number):
    with pytest.raises(InvalidIdError, match="from 1 to"):
        parse_int_id(number)
    with pytest.raises(InvalidIdError):
        parse_int_id(str(number))


@given(st.text())
def test_any_text_is_an_integer_id_only_if_it_is_ascii_digits_in_range(text):
    try:
        number = parse_int_id(text)
    except InvalidIdError as exc:
        assert "must be an integer" in str(exc) and len(str(exc)) < 200
        return
    assert text.strip().isascii() and text.strip().isdigit() and 1 <= number <= MAX


@pytest.mark.parametrize("value", [True, False, 1.0, None, b"12", [1], "1_000", "+5", "٣", "²", "0x10", "1e3"])
def test_values_that_only_look_numeric_are_refused(value):
    with pytest.raises(InvalidIdError):
        parse_int_id(value)


@given(st.text(max_size=80))
def test_an_accepted_profile_id_is_a_safe_path_segment(text):
    try:
        value = parse_profile_id(text)
    except InvalidIdError as exc:
        assert "letter" in str(exc) and len(str(exc)) < 250
        return
    assert value == text.strip() and 1 <= len(value) <= 64
    assert quote(value, safe="") == value, "nothing in it needs escaping in a URL path"
    assert value not in (".", "..") and "/" not in value and not value.isdigit()


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,63}", fullmatch=True))
def test_every_id_of_the_documented_pattern_is_accepted(value):
    assert parse_profile_id(value) == value


@pytest.mark.parametrize("value", ["CNP1234567890", "CP8ABC123HIJ", "CP1ABC234DEF"])
def test_jofis_documented_profile_ids_are_accepted(value):
    assert parse_id("career_navigation_profiles", value) == value


@pytest.mark.parametrize("value", ["..", ".", "a/b", "CNP.1", "has space", "1234", "", "-x", "C" * 65, 12, None])
def test_profile_ids_that_could_leave_their_segment_or_are_not_text_are_refused(value):
    with pytest.raises(InvalidIdError):
        parse_id("career_navigation_profiles", value)


def test_errors_name_the_entity_and_shorten_the_value():
    with pytest.raises(InvalidIdError) as info:
        parse_id("test_takers", "x" * 500)
    assert "test_takers id" in str(info.value) and len(str(info.value)) < 120


def test_the_lists_the_sync_reads():
    assert entities.WHOLE_LISTS == ("users", "teams", "email_templates", "assessments", "score_profiles")
    assert entities.CAPPED_LISTS == ("invitations", "test_takers", "career_navigation_profiles")
    assert entities.INBOX_ENTITIES == entities.CAPPED_LISTS
    assert [n for n, e in ENTITIES.items() if e.listing == "derived"] == ["scorecards", "job_fit_reports"]


def test_reference_data_is_not_versioned_and_every_mutable_entity_is():
    assert [n for n, e in ENTITIES.items() if not e.versioned] == ["assessments"]


def test_import_kinds_accept_both_spellings_and_name_the_documented_ones():
    assert entities.entity_of_import_kind("test-takers").name == "test_takers"
    assert entities.entity_of_import_kind("test_takers").name == "test_takers"
    assert entities.entity_of_import_kind("Profiles ").name == "career_navigation_profiles"
    assert entities.entity_of_import_kind("career-navigation-profiles").name == "career_navigation_profiles"
    with pytest.raises(ValueError, match="use one of invitations, test-takers, profiles"):
        entities.entity_of_import_kind("scorecards")
    assert ENTITIES["career_navigation_profiles"].import_id_columns == ("id", "career_navigation_profile_id", "profile_id")


def test_event_types_map_to_one_entity_each():
    assert entities.ENTITY_OF_EVENT == {
        "invitation.created": "invitations",
        "invitation.accepted": "invitations",
        "test_taker.created": "test_takers",
        "test_taker.assessment_completed": "test_takers",
        "career_navigation_profile.created": "career_navigation_profiles",
    }


def test_routes_are_well_formed_and_name_their_parameter():
    list_routes = [e.list_route for e in ENTITIES.values() if e.list_route]
    assert len(set(list_routes)) == len(list_routes)
    for e in ENTITIES.values():
        assert e.by_id or e.list_route, e.name
        if e.by_id and e.by_id.param:
            assert e.by_id.template.count("{") == 1 and "{" + e.by_id.param + "}" in e.by_id.template


def test_every_entity_has_its_warehouse_table_with_the_id_type_of_the_registry():
    assert set(ENTITY_TABLES) == {name for name, spec in TABLES.items() if spec.kind == "entity"} == set(ENTITIES)
    sql_type = {"int": "BIGINT", "profile": "VARCHAR"}
    for name, e in ENTITIES.items():
        spec = ENTITY_TABLES[name]
        id_column = spec.key[0]  # derived objects are keyed by their test taker's id first
        assert spec.column(id_column).type == sql_type[e.id_type], name
        if e.by_id and e.by_id.param and e.listing != "derived":
            assert spec.key == ("id",)


def test_unknown_entities_are_named_with_the_known_ones():
    with pytest.raises(entities.UnknownEntityError, match="known: account, users"):
        entities.entity("test_taker")
