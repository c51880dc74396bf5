"""`jofi-pipeline webhooks`: run the receiver for the live endpoint under uvicorn.

The endpoint secret comes from JOFI_WEBHOOK_SECRET only (never a flag: flags show up in `ps`).
Webhooks are live-only: JOFI sends automatic events to the live endpoint only, so events go to
the live inbox.
"""

from __future__ import annotations

import os
from pathlib import Path

from jofi_pipeline import settings
from jofi_pipeline.warehouse import ModePaths, identity
from jofi_pipeline.warehouse.identity import IdentityError
from jofi_pipeline.webhooks.inbox import Inbox

ENV_WEBHOOK_SECRET = settings.ENV_WEBHOOK_SECRET
MODE = "live"


class ReceiverConfigError(Exception):
    """The receiver cannot start; the message says what to set."""


def webhook_secret() -> str:
    secret = os.environ.get(ENV_WEBHOOK_SECRET, "").strip()
    if not secret:
        raise ReceiverConfigError(
            f"{ENV_WEBHOOK_SECRET} is not set: export the live webhook endpoint secret JOFI gave you "
            "(the receiver never accepts unsigned events; webhooks are live-only, test keys never send any)"
        )
    return secret


def check_receiver(data_dir: Path | None = None) -> None:
    """Everything the receiver needs before it starts: the secret, and a live folder that is live's."""
    webhook_secret()
    try:
        identity.guard_folder(ModePaths.of(MODE, data_dir))
    except IdentityError as exc:
        raise ReceiverConfigError(str(exc)) from None


def serve(host: str, port: int, data_dir: Path | None = None, log_level: str = "info") -> None:
    import uvicorn

    from jofi_pipeline.webhooks.app import PATH, build_app

    secret = webhook_secret()
    path = ModePaths.of(MODE, data_dir).inbox
    inbox = Inbox.open(path)
    app = build_app(secret, inbox)
    print(f"jofi webhooks: POST http://{host}:{port}{PATH} -> {path}", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False, lifespan="off")
    finally:
        inbox.close()
