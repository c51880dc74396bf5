"""Every table, view and column of the published database explains itself, where analysts look.

DuckDB's DESCRIBE leaves comments out; `jofi-pipeline describe` (analyst.describe_text) and
duckdb_columns() show them. A column added without a comment fails here.
"""

from __future__ import annotations

import pytest

import jofi_pipeline_tests.warehouse.docs_shapes as docs
from jofi_pipeline.analyst import QueryError, describe_text
from jofi_pipeline.warehouse import PublishedWarehouse, WarehouseStore
from jofi_pipeline.warehouse.tables import ENTITY_TABLES, TABLES
from jofi_pipeline.warehouse.views import VIEWS
from jofi_pipeline_tests.warehouse.conftest import T0


@pytest.fixture
def published(store: WarehouseStore) -> PublishedWarehouse:
    with store.open_run("r1", T0) as run:
        run.upsert("test_takers", [docs.test_taker()], T0)
        run.upsert("scorecards", [docs.scorecard()], T0)
        run.publish()
    return PublishedWarehouse("live", store.data_dir)


def test_every_table_view_and_column_has_a_comment(published):
    with published.open() as reader:
        objects = reader.objects()
        assert {o.name for o in objects} == set(TABLES) | {v.name for v in VIEWS}
        undocumented = [o.name for o in objects if not o.comment.strip()]
        for obj in objects:
            doc = reader.describe(obj.name)
            assert doc is not None and doc.columns, obj.name
            undocumented += [f"{obj.name}.{c.name}" for c in doc.columns if not c.comment.strip()]
        assert undocumented == []
        for table in ENTITY_TABLES:
            deleted = next(c for c in reader.describe(table).columns if c.name == "_deleted_at")
            assert "404" in deleted.comment


def test_describe_shows_each_column_with_its_type_and_comment(published, store):
    text = describe_text("invitations", "live", data_dir=store.data_dir, width=100)
    assert text.startswith("invitations (table, live): ")
    for column in TABLES["invitations"].all_columns:
        line = next(line for line in text.splitlines() if line.split()[:1] == [column.name])
        assert column.comment.split()[0] in line, line
    assert all(len(line) <= 100 for line in text.splitlines())

    listing = describe_text(None, "live", data_dir=store.data_dir, width=80)
    for name in [*TABLES, *(v.name for v in VIEWS)]:
        assert f"  {name}" in listing
    assert all(len(line) <= 80 for line in listing.splitlines())


def test_describe_of_an_unknown_name_lists_the_known_ones(published, store):
    with pytest.raises(QueryError, match="no table or view 'invitation'.*invitations"):
        describe_text("invitation", "live", data_dir=store.data_dir)
    with pytest.raises(QueryError, match="sync --mode test"):
        describe_text("invitations", "test", data_dir=store.data_dir)
