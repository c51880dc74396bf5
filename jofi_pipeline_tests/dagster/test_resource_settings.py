"""The Dagster resource and the Dagster-free SyncSetup (the CLI's head start builds its sync with it)
declare the same settings twice, on purpose: these tests keep the two from drifting apart."""

from __future__ import annotations

import dataclasses

from jofi_pipeline.defs.resources import JofiSyncResource
from jofi_pipeline.sync.setup import SyncSetup


def test_the_resource_and_the_setup_declare_the_same_settings_with_the_same_defaults():
    in_resource = {name: field.default for name, field in JofiSyncResource.model_fields.items()}
    in_setup = {field.name: field.default for field in dataclasses.fields(SyncSetup)}
    assert in_resource == in_setup


def test_a_configured_resource_hands_every_setting_to_the_setup():
    values = {"base_url": "http://127.0.0.1:1/v2", "data_dir": "/srv/jofi", "max_concurrency": 3,
              "requests_per_second": 7.5, "batch_size": 11, "writer_wait_seconds": 2.0, "publish_url": "s3://b/p"}
    assert set(values) == {field.name for field in dataclasses.fields(SyncSetup)}
    assert dataclasses.asdict(JofiSyncResource(**values).setup()) == values
