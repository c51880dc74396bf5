"""`jofi-pipeline webhooks` in a thread: the real receiver app under uvicorn, on a free port."""

from __future__ import annotations

from pathlib import Path

from jofi_pipeline.harness.threaded_server import ThreadedServer
from jofi_pipeline.warehouse import ModePaths
from jofi_pipeline.webhooks.app import PATH, build_app
from jofi_pipeline.webhooks.inbox import Inbox

# A secret for simulated accounts only: the simulator signs with it, the receiver checks it.
SECRET = "whsec_test_only_0123456789abcdef"


class ReceiverThread(ThreadedServer):
    """The live receiver of `data_dir`, serving at `url` until the block ends."""

    def __init__(self, data_dir: Path, secret: str = SECRET) -> None:
        self.inbox = Inbox.open(ModePaths(data_dir, "live").inbox)
        self.app = build_app(secret, self.inbox)
        super().__init__(self.app)
        self.url = f"{self.root_url}{PATH}"

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.inbox.close()
