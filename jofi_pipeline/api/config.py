"""Every tunable of the client in one place, with the defaults and why they are what they are.

JOFI documents no rate limit, so the defaults are polite rather than fast; a sync that knows its
account's limit raises `requests_per_second` and `max_concurrency` together.
"""

from __future__ import annotations

from dataclasses import dataclass

# Timeouts (seconds). Connect is short: a host that does not answer a TCP handshake in 5 s is down.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_WRITE_TIMEOUT = 10.0
# A whole attempt (connect + send + receive) may not take longer than this, so a server that
# trickles bytes cannot hold a request forever even though each read is within the read timeout.
DEFAULT_ATTEMPT_TIMEOUT = 60.0

# Retries: attempts = 1 + max_retries. Backoff is "full jitter": uniform(0, min(max, initial * 2^n)).
DEFAULT_MAX_RETRIES = 6
DEFAULT_INITIAL_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 8.0
# 429s that come with a Retry-After are the server saying exactly when to come back: they get
# their own, larger budget, so a rate-limit storm slows a sync down instead of failing it.
DEFAULT_MAX_RATE_LIMITED_RETRIES = 30
# A Retry-After above this is not waited out: the request fails fast and says how long was asked.
DEFAULT_MAX_RETRY_AFTER = 60.0
# Healthcheck answers "is it up?" quickly; it does not need the full retry budget.
DEFAULT_HEALTHCHECK_RETRIES = 2

# Throughput: requests per second (0 = no proactive limit) and simultaneous requests in flight.
# The one default of the whole project: the sync, the Dagster resource and the CLI take it from here.
DEFAULT_REQUESTS_PER_SECOND = 0.0
DEFAULT_MAX_CONCURRENCY = 16
# The rate limiter allows a burst of at most this many seconds' worth of requests.
DEFAULT_RATE_BURST_SECONDS = 0.1

# Lists: page size asked for once a server paginates, and a hard stop against endless cursors.
DEFAULT_PAGE_LIMIT = 100
DEFAULT_MAX_PAGES = 1000

USER_AGENT = "jofi-pipeline/0.1 (+httpx)"


@dataclass(frozen=True)
class ClientConfig:
    """How patient and how fast the client is. Frozen: one config per client, shared safely."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    initial_backoff: float = DEFAULT_INITIAL_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    max_rate_limited_retries: int = DEFAULT_MAX_RATE_LIMITED_RETRIES
    healthcheck_retries: int = DEFAULT_HEALTHCHECK_RETRIES
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    rate_burst_seconds: float = DEFAULT_RATE_BURST_SECONDS
    page_limit: int = DEFAULT_PAGE_LIMIT
    max_pages: int = DEFAULT_MAX_PAGES
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        from jofi_pipeline.api.errors import ConfigError

        positive = ("connect_timeout", "read_timeout", "write_timeout", "attempt_timeout", "rate_burst_seconds")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"ClientConfig.{name} must be > 0, got {getattr(self, name)!r}")
        non_negative = ("max_retries", "max_rate_limited_retries", "initial_backoff", "max_backoff", "max_retry_after",
                        "healthcheck_retries", "requests_per_second")
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ConfigError(f"ClientConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("max_concurrency", "page_limit", "max_pages"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"ClientConfig.{name} must be an integer >= 1, got {value!r}")
