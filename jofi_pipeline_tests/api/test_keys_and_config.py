"""Keys, modes and base URLs are refused at construction, with the env var named and the key not."""

from __future__ import annotations

import pickle

import pytest

from jofi_pipeline.api import ApiKeyError, ClientConfig, ConfigError, JofiClient
from jofi_pipeline.api.redact import SecretKey, redact_text, safe_url

from .helpers import BASE_URL

SECRETISH = "sk_live_DoNotPrintMe987"


@pytest.mark.parametrize(
    ("key", "mode", "env_var"),
    [
        (None, "live", "JOFI_LIVE_API_KEY"),
        ("", "live", "JOFI_LIVE_API_KEY"),
        ("   ", "test", "JOFI_TEST_API_KEY"),
        ("pk_live_abcdef", "live", "JOFI_LIVE_API_KEY"),
        ("sk_live_", "live", "JOFI_LIVE_API_KEY"),
        ("sk_test_abcdef", "live", "JOFI_LIVE_API_KEY"),
        ("sk_live_abcdef", "test", "JOFI_TEST_API_KEY"),
        ("sk_live_abc def", "live", "JOFI_LIVE_API_KEY"),
    ],
)
def test_bad_keys_are_refused_naming_the_env_var(monkeypatch, key, mode, env_var):
    monkeypatch.delenv("JOFI_LIVE_API_KEY", raising=False)
    monkeypatch.delenv("JOFI_TEST_API_KEY", raising=False)
    with pytest.raises(ApiKeyError) as info:
        JofiClient(api_key=key, mode=mode, base_url=BASE_URL)
    assert env_var in str(info.value)
    if key and len(key.strip()) > len("sk_live_"):  # a bare prefix is in every message by design
        assert key.strip() not in str(info.value)
        assert key.strip() not in repr(info.value)


def test_wrong_mode_key_error_names_neither_key():
    with pytest.raises(ApiKeyError) as info:
        JofiClient(api_key=SECRETISH, mode="test", base_url=BASE_URL)
    text = str(info.value) + repr(info.value) + repr(info.value.args)
    assert "DoNotPrintMe" not in text
    assert "JOFI_TEST_API_KEY" in text and "live key" in text


def test_mode_comes_from_the_key_prefix():
    assert JofiClient(api_key="sk_test_abc", base_url=BASE_URL).mode == "test"
    assert JofiClient(api_key="sk_live_abc", base_url=BASE_URL).mode == "live"


def test_key_without_mode_and_unknown_prefix_names_both_env_vars():
    with pytest.raises(ApiKeyError) as info:
        JofiClient(api_key="rk_live_abc", base_url=BASE_URL)
    assert "JOFI_LIVE_API_KEY" in str(info.value) and "JOFI_TEST_API_KEY" in str(info.value)


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown mode"):
        JofiClient(api_key="sk_live_abc", mode="prod", base_url=BASE_URL)


def test_key_read_from_env_when_not_given(monkeypatch):
    monkeypatch.setenv("JOFI_TEST_API_KEY", "sk_test_fromenv")
    monkeypatch.setenv("JOFI_API_BASE_URL", BASE_URL)
    client = JofiClient.from_env("test")
    assert client.mode == "test" and client.base_url == BASE_URL


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://jofi.example/api/v2", "http:// or https://"),
        ("jofi.example/api/v2", "http:// or https://"),
        ("http:///api/v2", "no host"),
        ("https://user:pw@jofi.example/api/v2", "credentials"),
        ("https://jofi.example/api/v2?token=abc", "query"),
    ],
)
def test_bad_base_urls_are_refused(url, why):
    with pytest.raises(ConfigError, match=why) as info:
        JofiClient(api_key="sk_live_abc", base_url=url)
    assert "JOFI_API_BASE_URL" in str(info.value)
    assert "pw@" not in str(info.value) and "token=abc" not in str(info.value)


def test_base_url_trailing_slash_is_trimmed():
    assert JofiClient(api_key="sk_live_abc", base_url="https://x.example/api/v2/").base_url == "https://x.example/api/v2"


def test_client_repr_shows_mode_and_host_only():
    client = JofiClient(api_key=SECRETISH, base_url=BASE_URL)
    assert "DoNotPrintMe" not in repr(client) and "live" in repr(client)
    assert "DoNotPrintMe" not in repr(vars(client))


def test_secret_key_hides_itself():
    key = SecretKey(SECRETISH)
    for text in (str(key), repr(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert "DoNotPrintMe" not in text
    assert "sk_live_" in repr(key)
    assert key.reveal() == SECRETISH
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_redaction_helpers():
    assert "DoNotPrintMe" not in redact_text(f"bad key {SECRETISH} given")
    assert "abc" not in redact_text("x abc y", "abc")
    assert safe_url("https://u:p@host.example:8443/api/v2/x?sp=1&token=secret") == "https://host.example:8443/api/v2/x"


@pytest.mark.parametrize(
    "kwargs",
    [{"max_concurrency": 0}, {"read_timeout": 0}, {"max_retries": -1}, {"requests_per_second": -1}, {"page_limit": 0}],
)
def test_config_rejects_nonsense(kwargs):
    with pytest.raises(ConfigError):
        ClientConfig(**kwargs)
