"""Env var names, defaults and the Mode type: the public contract every room shares.

Kept in one place so a rename cannot leave the client, the Dagster wiring and the CLI disagreeing.
"""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from pathlib import Path
from urllib.parse import quote
from typing import Literal, get_args

Mode = Literal["live", "test"]
MODES: tuple[Mode, ...] = get_args(Mode)

# How every message, help text and the README spell the command: the repo-root wrapper, which
# installs the project on first use and needs nothing on PATH (not even uv).
CLI = "./jofi-pipeline"

ENV_BASE_URL = "JOFI_API_BASE_URL"
ENV_LIVE_KEY = "JOFI_LIVE_API_KEY"
ENV_TEST_KEY = "JOFI_TEST_API_KEY"
ENV_DATA_DIR = "JOFI_DATA_DIR"
# s3://bucket/prefix: also upload each published version there (warehouse/remote.py).
ENV_PUBLISH_URL = "JOFI_PUBLISH_URL"
# How many complete versions per mode the object store keeps (the current one included).
ENV_PUBLISH_KEEP = "JOFI_PUBLISH_KEEP"
# IANA timezone of the nightly schedule's 02:00 (defs/automation.py).
ENV_SCHEDULE_TIMEZONE = "JOFI_SCHEDULE_TIMEZONE"
DEFAULT_SCHEDULE_TIMEZONE = "UTC"

DEFAULT_BASE_URL = "https://www.jofiscore.com/api/v2"
DEFAULT_DATA_DIR = "./data"

# DuckDB's memory limit for the work database: the run's merges and its publish. Past it DuckDB
# spills to disk where it can and fails where it cannot; the default keeps a sync of 10,000 test
# takers at ~450 MB peak. An account whose sync ran out of it raises it (never below the default:
# the publish's lanes are sized against it, warehouse/publish.py LANES_UP_TO_BYTES).
ENV_WORK_MEMORY = "JOFI_WORK_MEMORY"
DEFAULT_WORK_MEMORY = "128MB"
MIN_WORK_MEMORY_BYTES = 128 * 1000**2  # the default: DuckDB counts MB in powers of ten, MiB in two
MAX_WORK_MEMORY_BYTES = 1000**5  # 1PB; DuckDB refuses sizes far past it
_MEMORY_UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
                 "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4, "PIB": 1024**5}
# ASCII only: `\d` would take other scripts' digits, and IGNORECASE alone the Kelvin sign for K
# and a dotted İ for I, none of which DuckDB reads.
_MEMORY_SIZE = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,6})?) ?([KMGTP]I?B)", re.IGNORECASE | re.ASCII)

# The live webhook endpoint's signing secret (`jofi-pipeline webhooks`).
ENV_WEBHOOK_SECRET = "JOFI_WEBHOOK_SECRET"

KEY_PREFIX: dict[Mode, str] = {"live": "sk_live_", "test": "sk_test_"}
KEY_ENV_VAR: dict[Mode, str] = {"live": ENV_LIVE_KEY, "test": ENV_TEST_KEY}
# Anything shaped like a JOFI key, whoever it belongs to: what every redaction looks for (the
# client's errors and logs, and the warehouse's run log, which may not import the client). A key
# may hold any printable character (`.`, `~`, `+`, `/`, `=` ...), so the run ends only at a blank
# or a character that delimits text (quotes, brackets, commas), never inside the key. A run with no
# letter or digit is no key: "the current sk_live_... key" is a hint our own messages give, kept as written.
KEY_PATTERN = re.compile(
    "(" + "|".join(map(re.escape, KEY_PREFIX.values())) + r")(?=[^\s\"'`,;<>()\[\]{}\\]*[^\W_])[^\s\"'`,;<>()\[\]{}\\]+"
)
# The configured secrets themselves are redacted too, whatever their shape (redact_keys).
SECRET_ENV_VARS = (ENV_LIVE_KEY, ENV_TEST_KEY, ENV_WEBHOOK_SECRET)
# Shorter values are not searched for: replacing every "abc" in a message would hide the message,
# and a secret that short protects nothing anyway.
MIN_REDACTED_SECRET_LENGTH = 8


def configured_secrets() -> list[str]:
    """The configured keys and webhook secret, as written and as they appear percent- or JSON-encoded."""
    found: set[str] = set()
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if len(value) >= MIN_REDACTED_SECRET_LENGTH:
            found.update({value, quote(value, safe=""), json.dumps(value)[1:-1]})
    return sorted(found, key=len, reverse=True)  # longest first: no secret is left half-replaced


# What stands where a secret was, in every message, log line and stored error (client and warehouse alike).
REDACTED = "[redacted]"


def redact_keys(text: str, marker: str = REDACTED) -> str:
    """`text` without the configured secrets (replaced by `marker`) and with every key-shaped run
    replaced by its prefix and `marker` (the mode is not secret)."""
    for secret in configured_secrets():
        if secret in text:
            prefix = next((p for p in KEY_PREFIX.values() if secret.startswith(p)), "")
            text = text.replace(secret, prefix + marker)
    return KEY_PATTERN.sub(lambda m: m.group(1) + marker, text)


def parse_mode(value: str) -> Mode:
    """Turn user input into a Mode, or say which values are allowed."""
    if value not in MODES:
        raise ValueError(f"unknown mode {value!r}: use one of {', '.join(MODES)}")
    return value  # type: ignore[return-value]


def mode_of_key(key: str) -> Mode | None:
    """The mode a key's prefix selects, or None when it has neither prefix."""
    for mode, prefix in KEY_PREFIX.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return mode
    return None


def base_url() -> str:
    return os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL


def data_dir() -> Path:
    return Path(os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR)


def publish_url() -> str:
    """JOFI_PUBLISH_URL, or '' when unset (publishing to object storage is off)."""
    return os.environ.get(ENV_PUBLISH_URL, "").strip()


def api_key(mode: Mode) -> str | None:
    """The configured key for a mode; None when unset or blank."""
    value = os.environ.get(KEY_ENV_VAR[mode], "").strip()
    return value or None


def work_memory() -> int:
    """JOFI_WORK_MEMORY in bytes (the default when unset); ValueError saying what to write when it
    is not a size, or is below the default."""
    text = os.environ.get(ENV_WORK_MEMORY, "").strip()
    if not text:
        return MIN_WORK_MEMORY_BYTES
    size = _MEMORY_SIZE.fullmatch(text)
    if size is None:
        raise ValueError(f"{ENV_WORK_MEMORY}={text!r} is not a memory size: write a number and a unit, "
                         f"e.g. 512MB or 2GB (the default is {DEFAULT_WORK_MEMORY})")
    number, unit = size.groups()
    value = int(float(number) * _MEMORY_UNITS[unit.upper()])
    if value < MIN_WORK_MEMORY_BYTES:
        raise ValueError(f"{ENV_WORK_MEMORY}={text!r} is below the default {DEFAULT_WORK_MEMORY}: raise it, "
                         f"or unset it for the default")
    if value > MAX_WORK_MEMORY_BYTES:
        raise ValueError(f"{ENV_WORK_MEMORY}={text!r} is more than DuckDB takes: write at most 1PB")
    return value


def schedule_timezone() -> str:
    """JOFI_SCHEDULE_TIMEZONE when it names an IANA timezone, else UTC (see schedule_timezone_problem)."""
    return DEFAULT_SCHEDULE_TIMEZONE if schedule_timezone_problem() else _schedule_timezone_setting()


def schedule_timezone_problem() -> str | None:
    """What is wrong with JOFI_SCHEDULE_TIMEZONE, in one line that says what to do; None when fine."""
    value = _schedule_timezone_setting()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return (
            f"{ENV_SCHEDULE_TIMEZONE}={value!r} is not an IANA timezone (e.g. Europe/Berlin, America/New_York); "
            f"the nightly schedule runs at 02:00 {DEFAULT_SCHEDULE_TIMEZONE} until it is fixed"
        )
    return None


def _schedule_timezone_setting() -> str:
    return os.environ.get(ENV_SCHEDULE_TIMEZONE, "").strip() or DEFAULT_SCHEDULE_TIMEZONE
