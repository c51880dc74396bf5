"""Copy each published version of a mode to object storage, behind a pointer that readers follow.

With `JOFI_PUBLISH_URL=s3://bucket/prefix`, every successful local publish of mode M is uploaded as

    prefix/M/<version>/jofi.duckdb
    prefix/M/<version>/parquet/<table>/part-0.parquet
    prefix/M/<version>/manifest.json     every file with size and sha256, written after the files
    prefix/M/current.json                names <version>; written last, the only object ever replaced

Object stores have no rename, so the pointer is the switch: readers read `current.json`, then only
that version's objects, which never change. An upload that fails or is killed never reaches the
pointer, so readers stay on the previous complete version; the next successful publish uploads a
complete new one. A file whose bytes equal the same file of the pointer's version is copied
server-side instead of sent again. After the switch, versions older than the current one are
pruned beyond `keep` complete versions (incomplete ones go at once); keys that are not our
versions are never touched, and nothing outside `prefix/M/` is ever listed or written.

The local warehouse stays the system of record: the upload runs after the local switch, under the
mode's writer lock, and its outcome is written to `ModePaths.remote_state` for `status`.
boto3 is imported only when a URL is set, so a run without one pays nothing for it.

Why boto3: it reads credentials and the endpoint exactly as every AWS tool does (`AWS_PROFILE`,
`AWS_ACCESS_KEY_ID`, web-identity/IRSA in Kubernetes, instance roles, `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_S3` for S3-compatible stores), and its transfer manager does multipart uploads
and copies of large files. pyarrow's S3 filesystem (already a dependency) ignores
`AWS_ENDPOINT_URL`, which the deployment contract relies on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jofi_pipeline import settings
from jofi_pipeline.warehouse.errors import WarehouseError
from jofi_pipeline.warehouse.paths import DB_NAME, ModePaths
from jofi_pipeline.warehouse.publish import VERSION_PREFIX

POINTER_NAME = "current.json"
MANIFEST_NAME = "manifest.json"
POINTER_FORMAT = 1
DEFAULT_KEEP = 3
# A reader that just followed the pointer may still be reading the previous version.
MIN_KEEP = 2
# The local version token (publish.py): UTC timestamp first, so names sort by age.
VERSION_NAME = re.compile(r"^\d{8}T\d{6,12}Z-[0-9a-f]{6,32}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9!_.*'()=+,@-]+$")
_HASH_CHUNK = 1 << 20
_DELETE_BATCH = 1000
# Timeouts for one request (boto3 retries on top, per AWS_MAX_ATTEMPTS / AWS_RETRY_MODE).
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120


class RemoteConfigError(WarehouseError):
    """JOFI_PUBLISH_URL or JOFI_PUBLISH_KEEP is not usable; nothing was read or written."""


class RemotePublishError(WarehouseError):
    """An upload failed; the pointer still names the previous complete version."""


@dataclass(frozen=True)
class PublishUrl:
    """`s3://bucket/prefix`, checked: a bad value must stop the run before it fetches anything."""

    bucket: str
    prefix: str = ""  # without leading or trailing '/'

    @classmethod
    def parse(cls, text: str) -> PublishUrl:
        hint = f"{settings.ENV_PUBLISH_URL} must look like s3://bucket/prefix"
        text = text.strip()
        if not text.startswith("s3://"):
            raise RemoteConfigError(f"{hint} (only s3:// is supported, for AWS or any S3-compatible store), got {text!r}")
        bucket, _, path = text.removeprefix("s3://").partition("/")
        if any(c in text for c in "?#@") or ":" in bucket:
            raise RemoteConfigError(f"{hint}, without credentials, port, query or fragment; got {text!r}")
        if not _BUCKET_NAME.match(bucket) or ".." in bucket:
            raise RemoteConfigError(f"{hint}; {bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')")
        pieces = path.strip("/").split("/") if path.strip("/") else []
        for piece in pieces:
            if piece in ("", ".", "..") or not _PREFIX_PART.match(piece):
                raise RemoteConfigError(
                    f"{hint}; the prefix {path!r} has an empty, '.', '..' or unusual segment {piece!r} "
                    "(use letters, digits and - _ . between single slashes)"
                )
        return cls(bucket=bucket, prefix="/".join(pieces))

    def mode_prefix(self, mode: str) -> str:
        """The key prefix of one mode, with its trailing slash (so `live/` never matches `lively/`)."""
        return f"{self.prefix}/{mode}/" if self.prefix else f"{mode}/"

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def __str__(self) -> str:
        return self.url(self.prefix)


def publish_keep(text: str | None) -> int:
    """JOFI_PUBLISH_KEEP: complete versions kept per mode (default 3, at least 2)."""
    if text is None or not text.strip():
        return DEFAULT_KEEP
    try:
        keep = int(text)
    except ValueError:
        raise RemoteConfigError(f"{settings.ENV_PUBLISH_KEEP} must be a whole number, got {text!r}") from None
    if keep < MIN_KEEP:
        raise RemoteConfigError(
            f"{settings.ENV_PUBLISH_KEEP} must be at least {MIN_KEEP} (a reader may still be reading the "
            f"previous version), got {keep}"
        )
    return keep


@dataclass(frozen=True)
class RemoteOutcome:
    """What one upload did; `ok` is False when the pointer was not moved to `version`."""

    mode: str
    url: str                 # s3://bucket/prefix/M/
    version: str
    ok: bool
    previous: str | None = None   # the version the pointer named before (readers' view on failure)
    error: str | None = None
    uploaded: int = 0             # files sent
    copied: int = 0               # files copied server-side from the previous version (same bytes)
    skipped: int = 0              # files already uploaded under this version (a resumed upload)
    bytes_sent: int = 0
    pruned: tuple[str, ...] = ()
    prune_error: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        if self.ok:
            text = (f"uploaded {self.version} to {self.url} ({self.uploaded} files sent, {self.copied} copied "
                    f"unchanged, " + (f"{self.skipped} already there, " if self.skipped else "")
                    + f"{self.bytes_sent / 1e6:.1f} MB) in {self.seconds:.1f}s")
            return text + (f"; pruning old versions failed: {self.prune_error}" if self.prune_error else "")
        return (f"published locally, but the upload of version {self.version} to {self.url} failed: {self.error}. "
                f"Readers of {self.url}{POINTER_NAME} still see {self.previous or 'nothing (no complete version yet)'}; "
                "the next successful sync uploads a complete new version "
                f"(or upload this one now: {settings.CLI} publish-remote --mode {self.mode})")


@dataclass
class _Plan:
    """The files of one version and how each reaches the store."""

    files: list[dict[str, Any]] = field(default_factory=list)  # {path, size, sha256}
    copy_from: dict[str, str] = field(default_factory=dict)    # path -> source key (same bytes)


class RemotePublisher:
    """Uploads versions of one warehouse (every mode) under one `s3://bucket/prefix`."""

    def __init__(self, url: PublishUrl, keep: int = DEFAULT_KEEP, client: Any = None) -> None:
        self.url = url
        self.keep = keep
        self._client = client

    @classmethod
    def from_settings(cls, url_text: str, keep_text: str | None = None) -> RemotePublisher | None:
        """None when `url_text` is empty; RemoteConfigError when it is set but unusable."""
        if not url_text.strip():
            return None
        return cls(PublishUrl.parse(url_text), publish_keep(keep_text))

    @classmethod
    def from_env(cls) -> RemotePublisher | None:
        return cls.from_settings(settings.publish_url(), os.environ.get(settings.ENV_PUBLISH_KEEP))

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client()
        return self._client

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, mode: str, version_dir: Path, row_counts: Mapping[str, int] | None = None,
                *, resume: bool = False) -> RemoteOutcome:
        """Upload one local version, then move the pointer to it. Never raises for store errors:
        the outcome says what happened (the local publish it follows has already succeeded).

        `resume`: skip files already uploaded under this version (a re-push of the same version).
        """
        started = time.perf_counter()
        version = local_version_name(version_dir)
        previous: str | None = None
        try:
            pointer = self.read_pointer(mode)
            previous = pointer.get("version") if pointer else None
            counts = self._upload(mode, version_dir, version, pointer, dict(row_counts or {}), resume=resume)
        except Exception as exc:
            return RemoteOutcome(
                mode=mode, url=self.url.url(self.url.mode_prefix(mode)), version=version, ok=False, previous=previous,
                error=describe_error(exc), seconds=time.perf_counter() - started,
            )
        pruned: list[str] = []
        prune_error = None
        try:
            pruned = self.prune(mode, version)
        except Exception as exc:  # the new version is already current; pruning can wait for the next run
            prune_error = describe_error(exc)
        return RemoteOutcome(
            mode=mode, url=self.url.url(self.url.mode_prefix(mode)), version=version, ok=True, previous=previous,
            uploaded=counts[0], copied=counts[1], skipped=counts[2], bytes_sent=counts[3], pruned=tuple(pruned),
            prune_error=prune_error, seconds=time.perf_counter() - started,
        )

    def _upload(self, mode: str, version_dir: Path, version: str, pointer: dict | None,
                row_counts: dict[str, int], *, resume: bool) -> tuple[int, int, int, int]:
        base = self.url.mode_prefix(mode) + version + "/"
        if pointer is not None and pointer["version"] > version:
            raise RemotePublishError(
                f"the store already points at a newer version {pointer['version']} (published from elsewhere?); "
                "not moving the pointer back"
            )
        plan = self._plan(version_dir, pointer)
        present = self._present(base) if resume else {}
        sent = copied = skipped = sent_bytes = 0
        for entry in plan.files:
            key = base + entry["path"]
            if present.get(key) == entry["size"] and self._same_sha(key, entry["sha256"]):
                skipped += 1
                continue
            extra = {"Metadata": {"sha256": entry["sha256"]}}
            source = plan.copy_from.get(entry["path"])
            if source is not None:
                self.client.copy({"Bucket": self.url.bucket, "Key": source}, self.url.bucket, key, ExtraArgs=extra)
                copied += 1
            else:
                self.client.upload_file(str(version_dir / entry["path"]), self.url.bucket, key, ExtraArgs=extra)
                sent += 1
                sent_bytes += entry["size"]
        self._verify(base, plan.files)
        manifest = {
            "format": POINTER_FORMAT, "mode": mode, "version": version, "created_at": _now(),
            "files": plan.files, "row_counts": row_counts,
        }
        self._put_json(base + MANIFEST_NAME, manifest)
        self._put_json(self.url.mode_prefix(mode) + POINTER_NAME, self.pointer_for(mode, version))
        return sent, copied, skipped, sent_bytes

    def pointer_for(self, mode: str, version: str) -> dict[str, Any]:
        base = self.url.mode_prefix(mode) + version + "/"
        return {
            "format": POINTER_FORMAT,
            "mode": mode,
            "version": version,
            "published_at": _now(),
            "duckdb": self.url.url(base + DB_NAME),
            "parquet": self.url.url(base + "parquet/"),
            "manifest": self.url.url(base + MANIFEST_NAME),
        }

    def _plan(self, version_dir: Path, pointer: dict | None) -> _Plan:
        plan = _Plan(files=local_files(version_dir))
        if pointer is None:
            return plan
        try:
            old = self._get_json(self.url.mode_prefix(pointer["mode"]) + pointer["version"] + "/" + MANIFEST_NAME)
        except Exception:  # no usable manifest: send everything
            return plan
        old_files = {f.get("path"): f for f in old.get("files", []) if isinstance(f, dict)}
        old_base = self.url.mode_prefix(pointer["mode"]) + pointer["version"] + "/"
        for entry in plan.files:
            match = old_files.get(entry["path"])
            if match and match.get("sha256") == entry["sha256"] and match.get("size") == entry["size"]:
                plan.copy_from[entry["path"]] = old_base + entry["path"]
        return plan

    def _present(self, base: str) -> dict[str, int]:
        return {obj["Key"]: obj["Size"] for obj in self._list(base)}

    def _same_sha(self, key: str, sha256: str) -> bool:
        head = self.client.head_object(Bucket=self.url.bucket, Key=key)
        return head.get("Metadata", {}).get("sha256") == sha256

    def _verify(self, base: str, files: list[dict[str, Any]]) -> None:
        """Every file is there with its size before the manifest says the version is complete."""
        present = self._present(base)
        wrong = [f["path"] for f in files if present.get(base + f["path"]) != f["size"]]
        if wrong:
            raise RemotePublishError(f"after upload {len(wrong)} object(s) are missing or have the wrong size, e.g. {wrong[0]}")

    # -- reading --------------------------------------------------------------------------------

    def read_pointer(self, mode: str) -> dict[str, Any] | None:
        """The mode's current.json, or None when nothing was published there yet."""
        try:
            pointer = self._get_json(self.url.mode_prefix(mode) + POINTER_NAME)
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise
        if not isinstance(pointer, dict) or pointer.get("mode") != mode or not VERSION_NAME.match(str(pointer.get("version", ""))):
            raise RemotePublishError(
                f"{self.url.url(self.url.mode_prefix(mode) + POINTER_NAME)} is not a pointer this project wrote "
                f"for mode {mode!r}; refusing to publish over it. Move it aside or point {settings.ENV_PUBLISH_URL} elsewhere"
            )
        return pointer

    # -- pruning --------------------------------------------------------------------------------

    def prune(self, mode: str, current: str) -> list[str]:
        """Delete versions older than `current`: incomplete ones, and complete ones beyond `keep`."""
        base = self.url.mode_prefix(mode)
        keys_by_version: dict[str, list[str]] = {}
        for obj in self._list(base):
            name, _, rest = obj["Key"][len(base):].partition("/")
            if rest and VERSION_NAME.match(name):
                keys_by_version.setdefault(name, []).append(obj["Key"])
        older = sorted((v for v in keys_by_version if v < current), reverse=True)
        complete = [v for v in older if f"{base}{v}/{MANIFEST_NAME}" in keys_by_version[v]]
        kept = set(complete[: self.keep - 1])
        doomed = [v for v in older if v not in kept]
        # Manifests first: a version that is half deleted must not look complete.
        keys = [k for v in doomed for k in sorted(keys_by_version[v], key=lambda k: not k.endswith(MANIFEST_NAME))]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start:start + _DELETE_BATCH]
            answer = self.client.delete_objects(
                Bucket=self.url.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RemotePublishError(f"could not delete {first.get('Key')}: {first.get('Code')} {first.get('Message')}")
        return doomed

    # -- small helpers --------------------------------------------------------------------------

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[dict[str, Any]] = []
        for page in paginator.paginate(Bucket=self.url.bucket, Prefix=prefix):
            found.extend(page.get("Contents", []))
        return found

    def _get_json(self, key: str) -> Any:
        body = self.client.get_object(Bucket=self.url.bucket, Key=key)["Body"].read()
        return json.loads(body)

    def _put_json(self, key: str, value: Any) -> None:
        self.client.put_object(
            Bucket=self.url.bucket, Key=key, Body=json.dumps(value, indent=2).encode(),
            ContentType="application/json", CacheControl="no-cache",
        )


def make_client() -> Any:
    """An S3 client configured only by the standard AWS variables and files.

    With a custom endpoint (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3: MinIO, Ceph, R2, moto) it uses
    path-style addressing, which every S3-compatible store serves; AWS itself keeps the default.
    """
    import boto3
    from botocore.config import Config

    custom_endpoint = bool(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        s3={"addressing_style": "path"} if custom_endpoint else None,
    )
    return boto3.session.Session().client("s3", config=config)


def local_version_name(version_dir: Path) -> str:
    """`published.<token>` -> `<token>`: the remote version is named like the local one."""
    name = version_dir.name.removeprefix(VERSION_PREFIX)
    if not VERSION_NAME.match(name):
        raise RemotePublishError(f"{version_dir} is not a published version directory")
    return name


def local_files(version_dir: Path) -> list[dict[str, Any]]:
    """Every file of a local version (symlinks followed) with size and sha256, in upload order:
    the Parquet tables first, the database last, so a partial upload is easy to recognise."""
    files = []
    for directory, dirnames, names in os.walk(version_dir, followlinks=True):
        dirnames.sort()
        for name in sorted(names):
            path = Path(directory) / name
            files.append({"path": path.relative_to(version_dir).as_posix(), "size": path.stat().st_size, "sha256": sha256_of(path)})
    if not any(f["path"] == DB_NAME for f in files):
        raise RemotePublishError(f"{version_dir} holds no {DB_NAME}; nothing to upload")
    return sorted(files, key=lambda f: (f["path"] == DB_NAME, f["path"]))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_error(exc: BaseException) -> str:
    """One line: what the store said, and for the usual causes what to do."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    name = type(exc).__name__
    if name == "NoCredentialsError":
        text += " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the pod an IAM role)"
    elif "NoSuchBucket" in text:
        text += " (create the bucket, or fix JOFI_PUBLISH_URL)"
    elif name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        text += " (check AWS_ENDPOINT_URL and the network)"
    text = f"{name}: {text}" if name not in text else text
    for secret in (os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN")):
        if secret and len(secret) >= settings.MIN_REDACTED_SECRET_LENGTH:  # defence in depth: no store error should quote one
            text = text.replace(secret, settings.REDACTED)
    return settings.redact_keys(text)


def _is_not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in ("NoSuchKey", "404", "NotFound")


def _now() -> str:
    return datetime.now(UTC).isoformat()


# -- the local record of the last upload (for `status` and Dagster) -----------------------------

def write_state(path: Path, **state: Any) -> None:
    """Replace the record atomically; a crash leaves the old or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({**state, "at": _now()}, indent=2))
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def outcome_state(outcome: RemoteOutcome) -> dict[str, Any]:
    state = asdict(outcome)
    state["state"] = "uploaded" if outcome.ok else "failed"
    state["pruned"] = list(outcome.pruned)
    return state


def remote_status_lines(paths: ModePaths) -> list[str]:
    """What `status` says about the object-store copy of one mode: read from the local record of
    the last upload (no network), compared with the version published locally now."""
    local = os.readlink(paths.current).removeprefix(VERSION_PREFIX) if paths.current.is_symlink() else None
    return status_lines(read_state(paths.remote_state), local)


def status_lines(state: dict[str, Any] | None, local_version: str | None) -> list[str]:
    if state is None:
        return []
    version = str(state.get("version", "")).removeprefix(VERSION_PREFIX)
    where = state.get("url", "?")
    if state.get("state") == "uploading":
        return [f"   object store {where}: the upload of {version} started at {state.get('at')} has not finished "
                "(still running, or interrupted); readers still see the previous complete version"]
    if state.get("state") == "failed":
        return [f"   object store {where}: upload of {version} FAILED at {state.get('at')}: {state.get('error')}",
                f"     readers still see {state.get('previous') or 'nothing'}; the next successful sync uploads a new "
                f"version, or now: {settings.CLI} publish-remote --mode {state.get('mode')}"]
    line = f"   object store {where}: current.json -> {version} (uploaded {state.get('at')})"
    if local_version and local_version != version:
        line += (f"; BEHIND the local version {local_version} (published without {settings.ENV_PUBLISH_URL}?): "
                 f"{settings.CLI} publish-remote --mode {state.get('mode')}")
    lines = [line]
    if state.get("prune_error"):
        lines.append(f"     pruning old versions failed: {state['prune_error']}")
    return lines
