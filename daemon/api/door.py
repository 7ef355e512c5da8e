"""The door's HTTP side: events (list, snapshot, live SSE) and the door's settings.

Routes (docs/API.md, "Door: events and settings"), in the device API's envelope and conventions:

* ``GET /api/events?since=&until=&decision=&faceToken=&group=&pageOffset=&pageSize=``
* ``GET /api/events/{id}/snapshot`` → image/jpeg
* ``GET /api/events/stream`` → text/event-stream, resumable with ``Last-Event-ID``
* ``GET /api/door/settings``, ``PUT /api/door/settings`` (a JSON object of keys to change),
  ``DELETE /api/door/settings`` (back to the config file)

``setup_door_api(app, engine_factory)`` is the one call build_app makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from daemon.api.device_errors import InvalidParameter, device_endpoint
from daemon.api.device_keys import LIBRARY
from daemon.api.device_params import paging, parse_object
from daemon.api.families import CODE_NOT_FOUND, CODE_OVERLOADED, device_ok, device_response
from daemon.api.outputs import OUTPUTS
from daemon.appkeys import CONFIG, STATUS
from daemon.errors import ConfigError
from daemon.library.events import DECISIONS, EventFilter
from daemon.services.door_service import DoorService
from daemon.services.door_settings import FIXED_KEYS, runtime_view
from daemon.services.event_broker import TooManyClients
from daemon.vision.engine import VisionEngine

DOOR = web.AppKey("door", DoorService)
RESUME_CHUNK = 500  # events read per query while an SSE client catches up
_ID = re.compile(r"[0-9]{1,18}")


def setup_door_api(app: web.Application, engine_factory: Callable[[], VisionEngine]) -> None:
    """Create the door service (events store always; the pipeline when checkin.enabled)."""
    from daemon.api.stream import STREAM  # the stream owns the camera's one capture

    def capture() -> Any:
        stream = app.get(STREAM)
        return stream.pipeline.capture if stream is not None and stream.pipeline is not None else None

    service = DoorService(app[CONFIG], engine_factory, app[LIBRARY], capture)
    if OUTPUTS in app:  # webhooks, MQTT, the relay: started before the door (setup_outputs comes first)
        service.events_openers.append(app[OUTPUTS].attach)
    app[DOOR] = service
    app[STATUS].add_reporter("door", service.health)
    app.cleanup_ctx.append(_door_ctx)
    app.on_shutdown.append(_close_streams)
    app.router.add_get("/api/events", list_events)
    app.router.add_get("/api/events/stream", event_stream)
    app.router.add_get("/api/events/{id}/snapshot", event_snapshot)
    app.router.add_get("/api/door/settings", get_settings)
    app.router.add_put("/api/door/settings", put_settings)
    app.router.add_delete("/api/door/settings", delete_settings)


async def _door_ctx(app: web.Application) -> AsyncIterator[None]:
    service = app[DOOR]
    await service.start(asyncio.get_running_loop())
    yield
    await service.stop()


async def _close_streams(app: web.Application) -> None:
    broker = app[DOOR].broker
    if broker is not None:
        broker.close()


# -- events ----------------------------------------------------------------------------------------


def _float_param(request: web.Request, key: str) -> float | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameter(
            f"{key} must be a number of seconds since the epoch, not {raw[:20]!r}"
        ) from None
    if not math.isfinite(value):
        raise InvalidParameter(f"{key} must be finite")
    return value


def _text_param(request: web.Request, key: str, max_len: int = 64) -> str | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len:
        raise InvalidParameter(f"{key} is longer than {max_len} characters")
    return raw


def _event_filter(request: web.Request) -> EventFilter:
    decision = _text_param(request, "decision")
    if decision is not None and decision not in DECISIONS:
        raise InvalidParameter(f"decision must be one of {', '.join(DECISIONS)}")
    return EventFilter(
        since=_float_param(request, "since"),
        until=_float_param(request, "until"),
        decision=decision,
        face_token=_text_param(request, "faceToken"),
        group=_text_param(request, "group"),
    )


@device_endpoint
async def list_events(request: web.Request) -> web.Response:
    """Events newest first: {"total", "events": [...]}."""
    flt = _event_filter(request)
    offset, size = paging(request)
    door = request.app[DOOR]
    events = door.events
    assert events is not None
    total, page = await door.run_io(lambda: events.query(flt, offset, size))
    return device_ok({"total": total, "events": page})


@device_endpoint
async def event_snapshot(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not _ID.fullmatch(raw):
        raise InvalidParameter("the event id must be a positive integer")
    door = request.app[DOOR]
    events = door.events
    assert events is not None
    jpeg = await door.run_io(lambda: events.snapshot(int(raw)))
    if jpeg is None:
        return device_response(404, CODE_NOT_FOUND, "NOT_FOUND:no snapshot for this event")
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _sse(event: dict[str, Any]) -> bytes:
    return f"id: {event['id']}\nevent: checkin\ndata: {json.dumps(event)}\n\n".encode()


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    if raw is None or raw.strip() == "":
        return None
    if not _ID.fullmatch(raw.strip()):
        raise InvalidParameter("Last-Event-ID must be an event id (a non-negative integer)")
    return int(raw.strip())


@device_endpoint
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the events missed since Last-Event-ID (if given), then live ones."""
    door = request.app[DOOR]
    broker, events = door.broker, door.events
    assert broker is not None and events is not None
    last = _last_event_id(request)
    try:
        subscriber = broker.subscribe()  # before the backlog query, so nothing falls in between
    except TooManyClients as exc:
        return device_response(503, CODE_OVERLOADED, f"OVERLOADED:{exc}", {"Retry-After": "5"})
    heartbeat = request.app[CONFIG].checkin.sse_heartbeat
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        sent = -1
        while last is not None and not subscriber.dropped:
            backlog = await door.run_io(functools.partial(events.after, last, RESUME_CHUNK))
            for event in backlog:
                await response.write(_sse(event))
                sent = last = event["id"]
            if len(backlog) < RESUME_CHUNK:
                break
        while not subscriber.dropped:
            try:
                live = await asyncio.wait_for(subscriber.queue.get(), heartbeat)
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if live is None or subscriber.dropped:
                break
            if live["id"] <= sent:
                continue  # already sent from the backlog
            await response.write(_sse(live))
            sent = live["id"]
    except ConnectionResetError:
        pass
    finally:
        broker.unsubscribe(subscriber)
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


# -- settings --------------------------------------------------------------------------------------


def _settings_body(door: DoorService) -> dict[str, Any]:
    return {
        "settings": runtime_view(door.settings),
        "overridden": sorted(door.settings_store.overrides),
        "fixed": sorted(FIXED_KEYS),
    }


@device_endpoint
async def get_settings(request: web.Request) -> web.Response:
    return device_ok(_settings_body(request.app[DOOR]))


@device_endpoint
async def put_settings(request: web.Request) -> web.Response:
    body = parse_object(await request.read())
    door = request.app[DOOR]
    try:
        await door.update_settings(body)
    except ConfigError as exc:
        raise InvalidParameter(str(exc)) from None
    return device_ok(_settings_body(door))


@device_endpoint
async def delete_settings(request: web.Request) -> web.Response:
    door = request.app[DOOR]
    await door.reset_settings()
    return device_ok(_settings_body(door))
