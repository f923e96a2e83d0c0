"""A stand-in for the sidecar's HTTP API on loopback, with the real wire format.

The integration talks to it over real HTTP and a real Server-Sent Events stream, so the tests
exercise the client, the stream parser and the reconnects. `test_live_sidecar.py` runs the same
integration against the real sidecar.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import json
from typing import Any

from aiohttp import web

INSTANCE_ID = "5f0c3a52-6d1e-4a8e-9d7c-2b1f0e9a7c11"
TOKEN = "s3cr3t-token-0123456789abcdef"


def operation(
    kind: str,
    status: str = "running",
    *,
    op_id: str = "op-1",
    params: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
    mutating: bool = True,
) -> dict[str, Any]:
    """An operation record as the API sends it."""
    record: dict[str, Any] = {
        "id": op_id,
        "kind": kind,
        "status": status,
        "mutating": mutating,
        "started_at": "2026-05-01T10:00:00.000Z",
        "trigger": "api",
        "params": params or {},
        "steps": steps or [],
    }
    if status != "running":
        record["finished_at"] = "2026-05-01T10:01:00.000Z"
        record["duration_ms"] = 60000
    if result is not None:
        record["result"] = result
    if error is not None:
        record["error"] = error
    return record


def node(node_id: str, role: str, health: str, **fields: Any) -> dict[str, Any]:
    """A NodeStatus as the API sends it."""
    return {
        "id": node_id,
        "role": role,
        "health": health,
        "reason": fields.pop("reason", health),
        "reachable": fields.pop("reachable", True),
        "zigbee2mqtt_running": fields.pop("zigbee2mqtt_running", role == "active"),
        "coordinator_port_present": True,
        "tools_present": True,
        "checked_at": "2026-05-01T09:59:00.000Z",
        "checks": [],
        **fields,
    }


def mixed_status() -> dict[str, Any]:
    """node1 active and healthy, node2 a ready standby, node3 unreachable."""
    return {
        "cluster_name": "home",
        "active": "node1",
        "automation": {"automatic_failover": True, "maintenance": False},
        "bridge": {
            "broker_connected": True,
            "state": "online",
            "publishing_node": "node1",
        },
        "nodes": [
            node("node1", "active", "active-healthy"),
            node("node2", "standby", "standby-ready"),
            node(
                "node3",
                "standby",
                "unreachable",
                reachable=False,
                zigbee2mqtt_running=None,
                reason="ssh: connect ECONNREFUSED",
            ),
        ],
        "last_sync": {"at": "2026-05-01T09:55:00.000Z", "operation_id": "op-sync"},
        "last_switchover": {
            "at": "2026-04-28T03:00:00.000Z",
            "operation_id": "op-so",
            "from": "node2",
            "to": "node1",
            "kind": "switchover",
        },
        "last_nvram_snapshot": {
            "at": "2026-04-28T02:59:30.000Z",
            "id": "nv-1",
            "node": "node2",
        },
        "fenced": {},
        "running_operation": None,
        "alerts": [],
    }


@dataclass
class Request:
    """One request the fake received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeSidecar:
    """Serves /api/v1 like the sidecar, records requests, pushes events on demand."""

    def __init__(self) -> None:
        """Start empty; `start()` listens."""
        self.token = TOKEN
        self.info: dict[str, Any] = {
            "instance_id": INSTANCE_ID,
            "name": "zigbee2mqtt-ha",
            "cluster_name": "home",
            "version": "0.1.0",
            "api_version": 1,
            "nodes": ["node1", "node2", "node3"],
        }
        self.status = mixed_status()
        self.requests: list[Request] = []
        # (method, path) -> (http status, error code, message, details): answered once.
        self.errors: dict[tuple[str, str], tuple[int, str, str, dict[str, Any]]] = {}
        # (method, path) -> (http status, body, content type): what a proxy in front says.
        self.raw: dict[tuple[str, str], tuple[int, str, str]] = {}
        self.port = 0
        self._seq = 0
        self._streams: list[asyncio.Queue[str | None]] = []
        self._runner: web.AppRunner | None = None
        self.stream_connections = 0
        # True: the open streams send nothing, not even keep-alive comments (a dead host).
        self.silent = False

    @property
    def url(self) -> str:
        """The base URL to configure."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_streams(self) -> int:
        """How many event streams are connected now."""
        return len(self._streams)

    def calls(self, method: str, path: str) -> list[Request]:
        """The requests made to one endpoint."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        code: str,
        message: str,
        **details: Any,
    ) -> None:
        """Answer the next request to an endpoint with an API error (status 0: hang up)."""
        self.errors[(method, path)] = (status, code, message, details)

    def answer_next_raw(
        self,
        method: str,
        path: str,
        status: int,
        body: str,
        content_type: str = "text/html",
    ) -> None:
        """Answer the next request to an endpoint with this body, as a reverse proxy would."""
        self.raw[(method, path)] = (status, body, content_type)

    async def start(self) -> None:
        """Listen on loopback (on the same port as before, after a stop)."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v1/info", self._info)
        app.router.add_get("/api/v1/status", self._status)
        app.router.add_post("/api/v1/switchover", self._takeover)
        app.router.add_post("/api/v1/sync", self._sync)
        app.router.add_post("/api/v1/check", self._check)
        app.router.add_post("/api/v1/nodes/{node}/stop", self._stop_node)
        app.router.add_put("/api/v1/automation", self._automation)
        app.router.add_get("/api/v1/events", self._events)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close every stream and stop listening, as a sidecar that exits."""
        for queue in self._streams:
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def push(self, event_type: str, **payload: Any) -> None:
        """Publish one event to every connected stream."""
        self._seq += 1
        data = {
            "type": event_type,
            **payload,
            "seq": self._seq,
            "ts": "2026-05-01T10:00:00Z",
        }
        frame = f"id: {self._seq}\nevent: {event_type}\ndata: {json.dumps(data)}\n\n"
        for queue in self._streams:
            queue.put_nowait(frame)
        # Let the frame reach the integration and be handled.
        for _ in range(5):
            await asyncio.sleep(0)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        body = await request.json() if request.body_exists else None
        self.requests.append(
            Request(request.method, request.path, body, dict(request.headers))
        )
        if raw := self.raw.pop((request.method, request.path), None):
            status, text, content_type = raw
            return web.Response(status=status, text=text, content_type=content_type)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "invalid token")
        if failure := self.errors.pop((request.method, request.path), None):
            status, code, message, details = failure
            if status == 0:  # the connection drops without an answer
                assert request.transport is not None
                request.transport.abort()
                raise ConnectionResetError
            return _error(status, code, message, details)
        response: web.StreamResponse = await handler(request)
        return response

    async def _info(self, _request: web.Request) -> web.Response:
        return web.json_response(self.info)

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(self.status)

    async def _takeover(self, request: web.Request) -> web.Response:
        body = await request.json() if request.body_exists else {}
        return web.json_response(operation("switchover", params=body), status=202)

    async def _sync(self, request: web.Request) -> web.Response:
        body = await request.json() if request.body_exists else {}
        return web.json_response(
            operation("sync", op_id="op-sync-2", params=body), status=202
        )

    async def _check(self, _request: web.Request) -> web.Response:
        return web.json_response(
            operation("check", op_id="op-check", mutating=False), status=202
        )

    async def _stop_node(self, request: web.Request) -> web.Response:
        body = await request.json() if request.body_exists else {}
        params = {"node": request.match_info["node"], "active": self.status["active"]}
        return web.json_response(
            operation("fence", op_id="op-fence", params={**params, **body}), status=202
        )

    async def _automation(self, request: web.Request) -> web.Response:
        patch = await request.json()
        self.status["automation"].update(patch)
        return web.json_response(self.status["automation"])

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"retry: 3000\n: connected\n\n")
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams.append(queue)
        self.stream_connections += 1
        try:
            while True:
                try:
                    async with asyncio.timeout(0.2):
                        frame = await queue.get()
                except TimeoutError:
                    # Like the sidecar's keep-alive comments; also notices a client gone.
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    if not self.silent:
                        await response.write(b": keep-alive\n\n")
                    continue
                if frame is None:
                    break
                await response.write(frame.encode())
        except ConnectionResetError:
            pass
        finally:
            self._streams.remove(queue)
        return response


def _error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)
