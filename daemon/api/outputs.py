"""Door outputs in the Application: build them from config, start/stop them with the app, /health.

No routes: the events store (the door pipeline) finds the outputs under ``app[OUTPUTS]`` and registers
``outputs.enqueue`` as an in-transaction hook and ``outputs.on_committed`` as a post-commit listener.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from daemon.appkeys import CONFIG, STATUS
from daemon.services.outputs import Outputs, build_outputs

OUTPUTS = web.AppKey("outputs", Outputs)


def setup_outputs(app: web.Application) -> None:
    outputs = build_outputs(app[CONFIG])
    app[OUTPUTS] = outputs
    if outputs.configured:
        app[STATUS].add_reporter("outputs", outputs.status)
        app.cleanup_ctx.append(_outputs_ctx)


async def _outputs_ctx(app: web.Application) -> AsyncIterator[None]:
    outputs = app[OUTPUTS]
    await outputs.start()
    yield
    await outputs.close()
