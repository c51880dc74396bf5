"""Publishing to object storage against a real S3 server (moto, in server mode, on loopback)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from jofi_pipeline.analyst import status_text
from jofi_pipeline.settings import ENV_TEST_KEY
from jofi_pipeline.warehouse import WarehouseError
from jofi_pipeline.warehouse.paths import CURRENT_LINK
from jofi_pipeline.warehouse.publish import VERSION_PREFIX
from jofi_pipeline.warehouse.remote import (
    MANIFEST_NAME, PublishUrl, RemoteConfigError, RemotePublisher, local_files, publish_keep,
)
from jofi_pipeline_tests.deploy.services import REPO
from jofi_pipeline_tests.e2e.helpers import sync


def local_current(data_dir: Path, mode: str) -> Path:
    link = data_dir / mode / CURRENT_LINK
    return link.parent / os.readlink(link)


def token(version_dir: Path) -> str:
    return version_dir.name.removeprefix(VERSION_PREFIX)


def readme_reader() -> str:
    """The Python reader the README gives analysts (the block after its `tested:` marker)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- tested: jofi_pipeline_tests/deploy/test_remote.py -->\n```python\n(.*?)```", text, re.S)
    assert block, "the README's S3 reader block is missing"
    return block.group(1)


def run_readme_reader(pointer_url: str, workdir: Path, monkeypatch) -> dict:
    code = readme_reader()
    assert '"s3://my-bucket/jofi/live/current.json"' in code
    monkeypatch.chdir(workdir)
    namespace: dict = {}
    exec(compile(code.replace('"s3://my-bucket/jofi/live/current.json"', repr(pointer_url)), "README", "exec"), namespace)
    namespace["con"].close()
    return namespace


def test_a_sync_uploads_its_version_then_the_pointer_and_the_readme_reader_reads_it(
    sim, aws_env, tmp_path, monkeypatch, capsys
):
    bucket = aws_env.new_bucket()
    url = f"s3://{bucket}/team/jofi"
    report = sync(sim, "live", tmp_path / "data", publish_url=url)

    assert report.remote is not None and report.remote.ok, report.remote
    version_dir = local_current(tmp_path / "data", "live")
    pointer = aws_env.get_json(bucket, "team/jofi/live/current.json")
    assert pointer["version"] == token(version_dir) == report.remote.version
    assert pointer["duckdb"] == f"{url}/live/{pointer['version']}/jofi.duckdb"
    objects = aws_env.objects(bucket)
    assert all(key.startswith("team/jofi/live/") for key in objects), "nothing outside prefix/live/"

    # The manifest lists exactly the local files, and the store holds their exact bytes.
    manifest = aws_env.get_json(bucket, f"team/jofi/live/{pointer['version']}/{MANIFEST_NAME}")
    assert manifest["files"] == local_files(version_dir)
    assert {f["path"] for f in manifest["files"]} >= {"jofi.duckdb", "parquet/test_takers/part-0.parquet"}
    client = aws_env.client()
    for entry in manifest["files"]:
        body = client.get_object(Bucket=bucket, Key=f"team/jofi/live/{pointer['version']}/{entry['path']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] == hashlib.sha256((version_dir / entry["path"]).read_bytes()).hexdigest()
    assert set(objects) == {f"team/jofi/live/{pointer['version']}/{f['path']}" for f in manifest["files"]} | {
        f"team/jofi/live/{pointer['version']}/{MANIFEST_NAME}", "team/jofi/live/current.json"}

    # An analyst elsewhere, with only the README's code, sees what the local warehouse holds.
    reader = run_readme_reader(f"{url}/live/current.json", tmp_path, monkeypatch)
    with duckdb.connect(str(tmp_path / "data" / "live" / "jofi.duckdb"), read_only=True) as local:
        assert len(reader["test_takers"]) == local.execute("SELECT count(*) FROM test_takers").fetchone()[0] > 0
        assert manifest["row_counts"]["test_takers"] == len(reader["test_takers"])
        assert str(pointer["version"]) in capsys.readouterr().out
        funnel = local.execute("SELECT count(*) FROM invitation_funnel").fetchone()
    with duckdb.connect(str(tmp_path / "jofi-live.duckdb"), read_only=True) as downloaded:
        assert downloaded.execute("SELECT count(*) FROM invitation_funnel").fetchone() == funnel

    status = status_text(data_dir=tmp_path / "data")
    assert f"object store {url}/live/: current.json -> {pointer['version']}" in status
    assert "BEHIND" not in status and "FAILED" not in status


@pytest.fixture(scope="module")
def a_version(tmp_path_factory, small_world) -> Path:
    """One real published version directory (a test-mode sync, no upload), to copy under new names."""
    data = tmp_path_factory.mktemp("one-version")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(ENV_TEST_KEY, small_world.test_key)
        sync(small_world, "test", data)
    return local_current(data, "test")


def version_named(source: Path, root: Path, stamp: str) -> Path:
    target = root / f"{VERSION_PREFIX}{stamp}"
    shutil.copytree(source, target)
    return target


def stamp(n: int) -> str:
    return f"20270101T0000{n:02d}000000Z-{n:08x}"


def test_unchanged_files_are_copied_in_the_store_and_old_versions_pruned(a_version, aws_env, tmp_path):
    bucket = aws_env.new_bucket()
    client = aws_env.client()
    publisher = RemotePublisher(PublishUrl.parse(f"s3://{bucket}/p"), keep=3)
    # State the project did not create: files beside the versions, and an unknown newer "version".
    foreign = ["p/test/README.txt", "p/test/backup/jofi.duckdb", "p/testing/x", "p/test/20270101T000099000000Z-00000063/parquet/a"]
    for key in foreign:
        client.put_object(Bucket=bucket, Key=key, Body=b"not ours")
    # An older incomplete version (a killed upload): no manifest.
    client.put_object(Bucket=bucket, Key=f"p/test/{stamp(0)}/parquet/users/part-0.parquet", Body=b"partial")

    outcomes = [publisher.publish("test", version_named(a_version, tmp_path, stamp(n)), {"users": 1}) for n in range(1, 6)]
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    files = len(local_files(a_version))
    assert (outcomes[0].uploaded, outcomes[0].copied) == (files, 0)
    for later in outcomes[1:]:  # same bytes as the version the pointer named: copied, nothing sent
        assert (later.uploaded, later.copied, later.bytes_sent) == (0, files, 0)

    versions = {key.split("/")[2] for key in aws_env.objects(bucket, "p/test/") if key.count("/") >= 3}
    assert versions == {stamp(3), stamp(4), stamp(5), "20270101T000099000000Z-00000063", "backup"}
    assert stamp(0) in outcomes[0].pruned, "an incomplete version older than the pointer goes at once"
    assert aws_env.get_json(bucket, "p/test/current.json")["version"] == stamp(5)
    objects = aws_env.objects(bucket)
    for key in foreign:
        assert key in objects, f"{key} was not ours to delete"
    # Every kept version is complete: its manifest names files that are all there.
    for version in (stamp(3), stamp(4), stamp(5)):
        manifest = aws_env.get_json(bucket, f"p/test/{version}/{MANIFEST_NAME}")
        assert all(f"p/test/{version}/{f['path']}" in objects for f in manifest["files"])


def test_a_pointer_this_project_did_not_write_is_left_alone(a_version, aws_env, tmp_path):
    bucket = aws_env.new_bucket()
    client = aws_env.client()
    client.put_object(Bucket=bucket, Key="x/test/current.json", Body=b'{"version": "../../etc", "mode": "test"}')
    outcome = RemotePublisher(PublishUrl.parse(f"s3://{bucket}/x")).publish("test", version_named(a_version, tmp_path, stamp(7)))
    assert not outcome.ok and "is not a pointer this project wrote" in outcome.error
    assert set(aws_env.objects(bucket)) == {"x/test/current.json"}, "nothing uploaded beside a foreign pointer"

    client.put_object(Bucket=bucket, Key="y/test/current.json", Body=json.dumps({"version": stamp(8), "mode": "live"}).encode())
    outcome = RemotePublisher(PublishUrl.parse(f"s3://{bucket}/y")).publish("test", version_named(a_version, tmp_path, stamp(9)))
    assert not outcome.ok and "for mode 'test'" in outcome.error


def test_an_older_version_never_moves_the_pointer_back(a_version, aws_env, tmp_path):
    bucket = aws_env.new_bucket()
    publisher = RemotePublisher(PublishUrl.parse(f"s3://{bucket}"))
    assert publisher.publish("live", version_named(a_version, tmp_path, stamp(20))).ok
    older = publisher.publish("live", version_named(a_version, tmp_path, stamp(10)))
    assert not older.ok and "newer version" in older.error and older.previous == stamp(20)
    assert aws_env.get_json(bucket, "live/current.json")["version"] == stamp(20)


def test_a_bad_publish_url_stops_the_sync_before_any_request(sim, tmp_path):
    # The store is built with its publisher before the sync is handed it: the URL fails there.
    with pytest.raises(WarehouseError, match=r"JOFI_PUBLISH_URL must look like s3://bucket/prefix.*gs://"):
        sync(sim, "live", tmp_path, publish_url="gs://bucket/jofi")
    assert sim.stats()["total"] == 0
    assert not (tmp_path / "live").exists(), "nothing written"


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b"),
        ("  s3://bkt/jofi  ", "bkt", "jofi"),
    ],
)
def test_publish_urls_that_work(text, bucket, prefix):
    url = PublishUrl.parse(text)
    assert (url.bucket, url.prefix) == (bucket, prefix)
    assert url.mode_prefix("live") == (f"{prefix}/live/" if prefix else "live/")


@pytest.mark.parametrize(
    "text",
    ["", "my-bucket/jofi", "s3:/bucket", "s3://", "gs://bucket/x", "file:///tmp/x", "s3://Bucket/x", "s3://ab/x",
     "s3://bucket/a/../b", "s3://bucket/a//b", "s3://bucket/./a", "s3://user:pw@bucket/x", "s3://bucket:9000/x",
     "s3://bucket/x?versionId=1", "s3://bucket/x#y", "s3://bucket/a b", "s3://bu..cket/x", "s3://bucket/é"],
)
def test_publish_urls_that_are_refused_with_one_clear_line(text):
    with pytest.raises(RemoteConfigError) as caught:
        PublishUrl.parse(text)
    assert str(caught.value).startswith("JOFI_PUBLISH_URL must look like s3://bucket/prefix")
    assert "\n" not in str(caught.value)


@hyp_settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.builds(lambda a, b: f"s3://{a}/{b}", st.text(max_size=20), st.text(max_size=40)))
def test_any_text_parses_to_a_safe_prefix_or_a_config_error(text):
    try:
        url = PublishUrl.parse(text)
    except RemoteConfigError:
        return
    key = url.mode_prefix("test")
    assert key.endswith("test/") and not key.startswith("/")
    assert "//" not in key and ".." not in key.split("/") and "." not in key.split("/")
    assert PublishUrl.parse(str(url)) == url


@pytest.mark.parametrize(("text", "keep"), [(None, 3), ("", 3), ("2", 2), (" 10 ", 10)])
def test_keep_setting(text, keep):
    assert publish_keep(text) == keep


@pytest.mark.parametrize("text", ["1", "0", "-3", "three", "2.5"])
def test_keep_setting_refused(text):
    with pytest.raises(RemoteConfigError, match="JOFI_PUBLISH_KEEP"):
        publish_keep(text)
