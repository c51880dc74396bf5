"""Everything one running simulator holds: both worlds, the keys, faults, stats, a response cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from .auth import KeyRing
from .faults import FaultInjector, FaultSettings
from .keys import LIVE_PREFIX, TEST_PREFIX, check_key, default_live_key, default_test_key
from .stats import Stats
from .webhooks import WebhookSender
from .activity import advance
from .history import build_world
from .world import TEST_WORLD_TEST_TAKERS, World


@dataclass
class SimulatorConfig:
    seed: int = 42
    test_takers: int = 200
    test_world_test_takers: int = TEST_WORLD_TEST_TAKERS
    pagination: str = "none"  # "none" (documented: capped, params ignored) | "cursor"
    live_key: str | None = None
    test_key: str | None = None
    advance_days: int = 0  # move the live clock this far before serving
    faults: FaultSettings = field(default_factory=FaultSettings)
    webhook_url: str | None = None  # live events are POSTed here when a secret is set too
    webhook_secret: str | None = None
    daily_invitations: float | None = None  # live activity rate for advance(); None = the world's default

    def __post_init__(self) -> None:
        if self.pagination not in ("none", "cursor"):
            raise ValueError("pagination must be 'none' or 'cursor'")
        if self.test_takers < 0 or self.test_world_test_takers < 0:
            raise ValueError("test taker counts must not be negative")
        self.live_key = check_key(self.live_key or default_live_key(self.seed), LIVE_PREFIX)
        self.test_key = check_key(self.test_key or default_test_key(self.seed), TEST_PREFIX)
        if self.live_key == self.test_key:
            raise ValueError("the live and test keys must differ")


class ResponseCache:
    """Encoded GET answers, dropped whenever the world they came from changes."""

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._entries: dict[tuple, bytes] = {}
        self._versions: dict[str, int] = {}

    def get(self, world: World, key: tuple) -> bytes | None:
        if self._versions.get(world.kind) != world.version:
            self._versions[world.kind] = world.version
            self._entries = {k: v for k, v in self._entries.items() if k[0] != world.kind}
            return None
        return self._entries.get((world.kind, *key))

    def put(self, world: World, key: tuple, body: bytes) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._versions[world.kind] = world.version
        self._entries[(world.kind, *key)] = body


class SimulatorState:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.ring = KeyRing(config.live_key, config.test_key)  # type: ignore[arg-type]
        self.faults = FaultInjector(config.faults)
        self.stats = Stats()
        self.cache = ResponseCache()
        self.webhooks = WebhookSender(config.webhook_url, config.webhook_secret)
        self.worlds = self._build_worlds()

    def _build_worlds(self) -> dict[str, World]:
        config = self.config
        worlds = {
            "live": build_world(config.seed, config.test_takers, "live"),
            "test": build_world(config.seed, config.test_world_test_takers, "test"),
        }
        if config.daily_invitations is not None:
            worlds["live"].daily_invitations = config.daily_invitations
        if config.advance_days:
            advance(worlds["live"], 24 * config.advance_days)
        worlds["live"].on_event = self.webhooks.emit  # live only: test keys never trigger events
        return worlds

    def reset(self) -> None:
        """Back to the state right after start: fresh worlds, no faults, no counts."""
        self.worlds = self._build_worlds()
        self.cache = ResponseCache()
        self.faults.clear()
        self.stats.reset()

    @property
    def cursor_pagination(self) -> bool:
        return self.config.pagination == "cursor"
