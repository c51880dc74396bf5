"""What a sync reads from the published copy for the asset pages (defs/metadata.py)."""

from __future__ import annotations

import duckdb

from jofi_pipeline.defs.metadata import relation_metadata
from jofi_pipeline.warehouse import PublishedReader, readonly


def test_the_funnel_is_computed_once_for_its_preview_its_count_and_its_charts(tmp_path):
    """A view is a query, computed by every read: the funnel's page reads it three times (preview
    and count, the charts' totals and weeks). A funnel whose every computation differs shows
    whether they all read one computation."""
    path = tmp_path / "jofi.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE VIEW invitation_funnel AS SELECT DATE '2026-11-23' + i::INT AS week_start, "
            "(random() * 1e9)::BIGINT AS invited, 1::BIGINT AS accepted, 1::BIGINT AS all_assessments_completed, "
            "0::BIGINT AS with_profile FROM range(3) t(i)"
        )
    with PublishedReader(readonly.connect(path)) as reader:
        metadata = relation_metadata(reader, "invitation_funnel", "live")
        rows = [line.split(" | ") for line in metadata["preview"].value.splitlines()[2:]]
        invited = [int(row[1]) for row in rows]
        assert metadata["dagster/row_count"] == 3 and len(invited) == 3
        assert reader.funnel_totals()[0] == ("invited", sum(invited))
        assert [week[1] for week in reader.funnel_by_week()] == invited
    with duckdb.connect(str(path), read_only=True) as con:  # the file itself is unchanged
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
