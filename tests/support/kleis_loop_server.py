"""Run a Kleis process with the loopback test provider (for multi-process tests): prints `PORT <n>` when ready.

Configuration comes from KLEIS_* like `kleis.py serve`, plus LOOP_MESSAGES_URL, LOOP_OPENAI_URL and LOOP_TOKEN_URL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from addons.server import bound_address, run_dump  # noqa: E402
from core.config import load_config  # noqa: E402
from core.protocol import Protocol  # noqa: E402
from store.db import open_store  # noqa: E402
from tests.fakes.loopback_provider import LoopbackProvider


def main() -> None:
    config = load_config()
    store = open_store(config)
    provider = LoopbackProvider(
        config,
        {
            Protocol.MESSAGES: os.environ["LOOP_MESSAGES_URL"],
            Protocol.CHAT: os.environ["LOOP_OPENAI_URL"],
            Protocol.RESPONSES: os.environ["LOOP_OPENAI_URL"],
        },
        token_url=os.environ["LOOP_TOKEN_URL"],
    )
    providers = {"loop": provider}
    asyncio.run(
        run_dump(store, config, providers=providers, port=0, on_ready=lambda master: print(f"PORT {bound_address(master)[1]}", flush=True))
    )


if __name__ == "__main__":
    main()
