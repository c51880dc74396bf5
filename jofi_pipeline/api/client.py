"""JofiClient: the one door through which every JOFI record enters the pipeline.

It refuses to start with a missing key or a key of the other mode, sends only GETs, checks the
`mode` of every response before handing data back, and returns each object's raw JSON whole
(new, missing or null fields are the warehouse's business, never a reason to fail here).
Retries, rate limit and concurrency live in `transport.py`; list paging in `lists.py`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from jofi_pipeline import entities, settings
from jofi_pipeline.api import errors
from jofi_pipeline.api.config import ClientConfig
from jofi_pipeline.api.errors import ApiKeyError, ApiUnreachableError, ConfigError, InvalidIdError, JofiApiError
from jofi_pipeline.api.fanout import InFlight, Outcome, fan_out
from jofi_pipeline.api.lists import ListResult, OnPage, check_list_envelope, read_list
from jofi_pipeline.api.redact import SecretKey, safe_url
from jofi_pipeline.api.transport import RequestCounts, ResponseCheck, Transport

__all__ = ["ClientConfig", "JofiClient", "ListResult", "Outcome"]

T = TypeVar("T")
R = TypeVar("R")

_PRINTABLE_KEY = re.compile(r"[\x21-\x7e]+")
HEALTHCHECK_ROUTE = "/healthcheck"
_ANY_KEY_ENV = f"{settings.ENV_LIVE_KEY} or {settings.ENV_TEST_KEY}"


class JofiClient:
    """Async, read-only JOFI API v2 client. Use as `async with JofiClient(...) as client:`."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        mode: settings.Mode | str | None = None,
        base_url: str | None = None,
        config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`mode` defaults to the key's prefix; `api_key` (when None) to the env var of `mode`;
        `base_url` to JOFI_API_BASE_URL or JOFI's production URL."""
        # Wrap the raw key at once and drop the parameter, so not even a traceback that captures
        # local variables (rich, sentry, pytest --showlocals) can show it.
        secret = SecretKey(api_key) if api_key is not None else None
        del api_key
        self.mode, key = _resolve_key(secret, mode)
        self.key_env_var = settings.KEY_ENV_VAR[self.mode]
        self.base_url = _validate_base_url(base_url if base_url is not None else settings.base_url())
        self.config = config or ClientConfig()
        self._transport = Transport(
            base_url=self.base_url, key=key, key_env_var=self.key_env_var, config=self.config, transport=transport
        )

    @classmethod
    def from_env(
        cls, mode: settings.Mode | str, *, base_url: str | None = None, config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> JofiClient:
        """A client for `mode` with the key from the environment, and the base URL too unless given."""
        return cls(None, mode=mode, base_url=base_url, config=config, transport=transport)

    def __repr__(self) -> str:
        mode, base_url = getattr(self, "mode", None), getattr(self, "base_url", None)
        return f"JofiClient(mode={mode!r}, base_url={safe_url(base_url) if base_url else None!r})"

    async def __aenter__(self) -> JofiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # --- bookkeeping -------------------------------------------------------------------------

    def request_counts(self) -> dict[str, int]:
        """HTTP requests sent so far per route template (retries included); sum = total."""
        return dict(self._transport.counts.by_route)

    @property
    def requests_total(self) -> int:
        return self._transport.counts.total

    @property
    def counts(self) -> RequestCounts:
        """Live counters: requests per route and retries per reason."""
        return self._transport.counts

    # --- routes ------------------------------------------------------------------------------

    async def healthcheck(self) -> dict[str, Any]:
        """GET /healthcheck without the key. Any 2xx is healthy; returns the body if it is a JSON object."""
        try:
            return await self._transport.get_json(
                HEALTHCHECK_ROUTE, HEALTHCHECK_ROUTE, authenticated=False, check=None,
                max_retries=self.config.healthcheck_retries, lenient_body=True,
            )
        except ApiUnreachableError:
            raise
        except JofiApiError as exc:
            raise errors.unhealthy(HEALTHCHECK_ROUTE, self._transport.host, exc) from None

    async def list(self, entity: str, on_page: OnPage | None = None) -> ListResult:
        """GET the list route the entity registry gives `entity` (every page the server hands out).

        `on_page`: hand each page's items to it as read, instead of holding them all (lists.py)."""
        record = entities.entity(entity)
        if record.list_route is None:
            raise ValueError(f"{entity} has no list route; read it with get()")
        return await self._list(record.list_route, on_page)

    async def get(self, entity: str, key: Any = None) -> dict[str, Any]:
        """GET one object by the by-id route the entity registry gives `entity`.

        `key` is the record's id (an int, or a str for career navigation profiles); for a scorecard
        the pair (test_taker_id, score profile short name); nothing for the account. It is checked
        against the registry's id rule before any request (InvalidIdError: nothing is sent).
        """
        record = entities.entity(entity)
        if record.by_id is None:
            raise ValueError(f"{entity} has no by-id route; read it with list()")
        path, params = _request_of(record, key)
        return await self._object(record.by_id.template, path, params=params)

    # --- fan-out -----------------------------------------------------------------------------

    def fan_out(
        self,
        func: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        concurrency: int | None = None,
        in_flight: InFlight | None = None,
    ) -> AsyncIterator[Outcome[T, R]]:
        """`fan_out` at this client's `max_concurrency` (its rate limit applies per request)."""
        return fan_out(func, items, concurrency=concurrency or self.config.max_concurrency, in_flight=in_flight)

    # --- plumbing ----------------------------------------------------------------------------

    async def _object(self, route: str, path: str, *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self._transport.get_json(route, path, params=params, check=self._mode_check(route))

    async def _list(self, route: str, on_page: OnPage | None = None) -> ListResult:
        check = self._mode_check(route, then=check_list_envelope)

        async def fetch_page(params: Mapping[str, Any] | None) -> dict[str, Any]:
            return await self._transport.get_json(route, route, params=params, check=check)

        return await read_list(
            fetch_page, route, page_limit=self.config.page_limit, max_pages=self.config.max_pages, on_page=on_page
        )

    def _mode_check(self, route: str, then: ResponseCheck | None = None) -> ResponseCheck:
        """Raise ModeMismatchError unless the body's top-level `mode` is ours; then check its shape."""
        expected = self.mode

        def check(body: dict[str, Any]) -> None:
            actual = body.get("mode")
            if actual != expected:
                raise errors.mode_mismatch(route, expected, actual, self.key_env_var)
            if then is not None:
                then(body)

        return check


def _resolve_key(secret: SecretKey | None, mode: str | None) -> tuple[settings.Mode, SecretKey]:
    """Validate mode and key together; errors name the env var to fix, never the key.

    The raw key is only ever used inline (`secret.reveal()`), never bound to a local name.
    """
    wanted: settings.Mode | None = None
    if mode is not None:
        try:
            wanted = settings.parse_mode(mode)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    env_var = settings.KEY_ENV_VAR[wanted] if wanted else _ANY_KEY_ENV
    if secret is None and wanted is not None:
        secret = SecretKey(settings.api_key(wanted) or "")
    secret = SecretKey((secret.reveal() if secret is not None else "").strip())
    for_mode = f"{wanted} mode" if wanted else "the JOFI client"
    if not secret.reveal():
        raise ApiKeyError(f"no API key for {for_mode}: set {env_var}")
    if not _PRINTABLE_KEY.fullmatch(secret.reveal()):
        raise ApiKeyError(f"the API key for {for_mode} contains spaces or non-ASCII characters: check {env_var}")
    key_mode = settings.mode_of_key(secret.reveal())
    if key_mode is None:
        prefixes = " or ".join(settings.KEY_PREFIX.values())
        raise ApiKeyError(f"the API key for {for_mode} does not start with {prefixes}: check {env_var}")
    if wanted is not None and key_mode != wanted:
        raise ApiKeyError(
            f"{wanted} mode needs a {settings.KEY_PREFIX[wanted]}... key but was given a {key_mode} key "
            f"({settings.KEY_PREFIX[key_mode]}...); refusing to mix modes: check {env_var}"
        )
    return key_mode, secret


def _validate_base_url(raw: str) -> str:
    """http(s)://host[:port]/path with no credentials, query or fragment; trailing slash removed."""
    where = f"the JOFI base URL ({settings.ENV_BASE_URL})"
    try:
        url = httpx.URL(raw.strip())
    except Exception:
        raise ConfigError(f"{where} is not a valid URL: {safe_url(raw)!r}") from None
    if url.scheme not in ("http", "https"):
        raise ConfigError(f"{where} must start with http:// or https://, got {safe_url(raw)!r}")
    if not url.host:
        raise ConfigError(f"{where} has no host: {safe_url(raw)!r}")
    if url.userinfo:
        raise ConfigError(f"{where} must not contain credentials; the key goes in {_ANY_KEY_ENV}")
    if url.query or url.fragment:
        raise ConfigError(f"{where} must not have a query string or fragment: {safe_url(raw)!r}")
    return str(url).rstrip("/")


def sendable_query_value(value: Any) -> bool:
    """Whether a by-id route's query value (a scorecard's score profile short name) can be sent:
    text with something besides whitespace (Python's strip(): SQL's trim() leaves tabs)."""
    return isinstance(value, str) and bool(value.strip())


def _request_of(record: entities.Entity, key: Any) -> tuple[str, dict[str, str] | None]:
    """(path, query params) of `record`'s by-id route for `key`; InvalidIdError before any request."""
    route = record.by_id
    assert route is not None
    if route.param is None:
        if key is not None:
            raise InvalidIdError(f"{record.name} is read without an id, got {key!r}", route=route.template)
        return route.template, None
    params = None
    if route.query is not None:
        if not isinstance(key, tuple) or len(key) != 2:
            raise InvalidIdError(
                f"{record.name} is keyed by ({route.param}, {route.query}), got {type(key).__name__}", route=route.template
            )
        key, value = key
        if not sendable_query_value(value):
            raise InvalidIdError(f"{record.name} needs a non-empty `{route.query}`", route=route.template)
        params = {route.query: value}
    try:
        typed = record.parse_id(key)
    except entities.InvalidIdError as exc:
        raise InvalidIdError(f"{exc}; no request was sent", route=route.template) from None
    return route.template.format(**{route.param: quote(str(typed), safe="")}), params
