"""A small client for the zigbee2mqtt-ha sidecar's REST API and event stream.

It knows nothing of Home Assistant: it takes an aiohttp session, speaks the API's JSON and
raises its own exceptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
import json
import socket
from typing import Any, Self
from urllib.parse import quote

import aiohttp
from yarl import URL

API_PREFIX = "/api/v1"

# The sidecar comments on its event stream every 15 s; a minute of silence is a dead connection
# (a sidecar host that lost power sends no FIN).
EVENT_STREAM_READ_TIMEOUT = 45.0

# Not an event the sidecar sends: `SidecarClient.events` yields it once the stream is open, so a
# caller can catch up on what it missed while disconnected.
STREAM_CONNECTED = "stream.connected"


class SidecarError(Exception):
    """Any failure talking to the sidecar."""


class SidecarConnectionError(SidecarError):
    """The sidecar could not be reached, or did not answer in time."""


class SidecarAuthenticationError(SidecarError):
    """The sidecar rejected the token."""


class SidecarCertificateError(SidecarConnectionError):
    """The sidecar's TLS certificate is not the one pinned, or (unpinned) not trusted."""

    def __init__(self, message: str, *, pinned: bool) -> None:
        """Say whether a pinned fingerprint did not match, or verification failed."""
        super().__init__(message)
        self.pinned = pinned


def normalize_fingerprint(value: str) -> str:
    """The fingerprint as the sidecar logs it (SHA256:AB:CD:…), from that, lower case or bare hex.

    Raises ValueError unless it is a SHA-256 fingerprint.
    """
    text = value.strip()
    if text.upper().startswith("SHA256:"):
        text = text[len("SHA256:") :]
    hex_digits = text.replace(":", "").replace(" ", "").upper()
    if len(hex_digits) != 64 or any(c not in "0123456789ABCDEF" for c in hex_digits):
        raise ValueError(f"not a SHA-256 fingerprint: {value!r}")
    pairs = (hex_digits[i : i + 2] for i in range(0, 64, 2))
    return "SHA256:" + ":".join(pairs)


def _ssl_for(fingerprint: str | None) -> aiohttp.Fingerprint | bool:
    """Pin the certificate by fingerprint (no CA check), or verify it as usual."""
    if fingerprint is None:
        return True
    hex_digits = normalize_fingerprint(fingerprint).removeprefix("SHA256:")
    return aiohttp.Fingerprint(bytes.fromhex(hex_digits.replace(":", "")))


def _connection_error(url: URL, err: Exception) -> SidecarConnectionError:
    """The client's error for a failed connection; certificate problems told apart."""
    if isinstance(err, aiohttp.ServerFingerprintMismatch):
        return SidecarCertificateError(
            f"{url}: its TLS certificate is not the pinned one "
            f"(got SHA256:{err.got.hex(':').upper()})",
            pinned=True,
        )
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return SidecarCertificateError(
            f"{url}: its TLS certificate is not trusted ({err.certificate_error})",
            pinned=False,
        )
    return SidecarConnectionError(f"cannot reach {url}: {err}")


class SidecarResponseError(SidecarError):
    """The sidecar answered with an error body (`{"error": {code, message, details?}}`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep the API's error code, message and details."""
        super().__init__(f"{message} ({code})")
        self.status = status
        self.code = code
        self.message = message
        self.details: Mapping[str, Any] = details or {}


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, kw_only=True)
class SidecarInfo:
    """`GET /api/v1/info`: who the sidecar is."""

    instance_id: str
    name: str
    cluster_name: str
    version: str
    api_version: int
    nodes: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        try:
            return cls(
                instance_id=str(data["instance_id"]),
                name=str(data.get("name", "zigbee2mqtt-ha")),
                cluster_name=str(data.get("cluster_name", "zigbee2mqtt")),
                version=str(data.get("version", "")),
                api_version=int(data.get("api_version", 1)),
                nodes=tuple(str(node) for node in data.get("nodes", [])),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SidecarError(f"unexpected /info answer: {err}") from err


@dataclass(frozen=True, kw_only=True)
class NodeStatus:
    """One node's role and health."""

    id: str
    role: str
    health: str
    reason: str
    reachable: bool | None
    zigbee2mqtt_running: bool | None
    coordinator_port_present: bool | None
    tools_present: bool | None
    checked_at: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        return cls(
            id=str(data["id"]),
            role=str(data.get("role", "standby")),
            health=str(data.get("health", "unknown")),
            reason=str(data.get("reason", "")),
            reachable=_opt_bool(data.get("reachable")),
            zigbee2mqtt_running=_opt_bool(data.get("zigbee2mqtt_running")),
            coordinator_port_present=_opt_bool(data.get("coordinator_port_present")),
            tools_present=_opt_bool(data.get("tools_present")),
            checked_at=_parse_time(data.get("checked_at")),
        )


@dataclass(frozen=True, kw_only=True)
class BridgeStatus:
    """What the sidecar sees of zigbee2mqtt's bridge over MQTT."""

    broker_connected: bool
    state: str
    publishing_node: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        return cls(
            broker_connected=bool(data.get("broker_connected", False)),
            state=str(data.get("state", "unknown")),
            publishing_node=_opt_str(data.get("publishing_node")),
        )


@dataclass(frozen=True, kw_only=True)
class Automation:
    """Whether the sidecar fails over by itself, and whether it is in maintenance."""

    automatic_failover: bool
    maintenance: bool

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        return cls(
            automatic_failover=bool(data.get("automatic_failover", False)),
            maintenance=bool(data.get("maintenance", False)),
        )


@dataclass(frozen=True, kw_only=True)
class Alert:
    """A condition the sidecar wants someone to look at."""

    kind: str
    severity: str
    message: str
    node: str | None
    at: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        return cls(
            kind=str(data["kind"]),
            severity=str(data.get("severity", "warning")),
            message=str(data.get("message", "")),
            node=_opt_str(data.get("node")),
            at=_parse_time(data.get("at")),
        )


@dataclass(frozen=True, kw_only=True)
class Operation:
    """A switchover, failover, sync, check, ...: started, running or finished."""

    id: str
    kind: str
    status: str
    trigger: str
    started_at: datetime | None
    finished_at: datetime | None
    current_step: str | None
    error: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    """The operation exactly as the API sent it, for action responses and event data."""

    @property
    def finished(self) -> bool:
        """Whether the operation has ended, however it ended."""
        return self.status != "running"

    @property
    def from_node(self) -> str | None:
        """The node that was active before a switchover or failover."""
        return _first_str(self.raw, "from", "source")

    @property
    def to_node(self) -> str | None:
        """The node a switchover or failover made (or tried to make) active."""
        return _first_str(self.raw, "to", "target")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        steps = data.get("steps") or []
        running = [
            s for s in steps if isinstance(s, Mapping) and s.get("status") == "running"
        ]
        error = data.get("error")
        return cls(
            id=str(data["id"]),
            kind=str(data.get("kind", "")),
            status=str(data.get("status", "running")),
            trigger=str(data.get("trigger", "")),
            started_at=_parse_time(data.get("started_at")),
            finished_at=_parse_time(data.get("finished_at")),
            current_step=_opt_str(running[-1].get("name")) if running else None,
            error=_opt_str(error.get("message"))
            if isinstance(error, Mapping)
            else None,
            raw=data,
        )


def _first_str(operation: Mapping[str, Any], *keys: str) -> str | None:
    """A node named in the operation's result (what happened) or else its params (what was asked)."""
    for section in ("result", "params"):
        part = operation.get(section)
        if not isinstance(part, Mapping):
            continue
        for key in keys:
            if isinstance(value := part.get(key), str):
                return value
    return None


@dataclass(frozen=True, kw_only=True)
class LastSync:
    """The last successful config sync."""

    at: datetime | None
    operation_id: str


@dataclass(frozen=True, kw_only=True)
class LastSwitchover:
    """The last change of the active node."""

    at: datetime | None
    operation_id: str
    from_node: str | None
    to_node: str
    kind: str


@dataclass(frozen=True, kw_only=True)
class LastSnapshot:
    """A coordinator snapshot the sidecar holds (NVRAM, or a data snapshot's backup)."""

    at: datetime | None
    id: str
    node: str


@dataclass(frozen=True, kw_only=True)
class ClusterState:
    """The persisted part of the status, which `state.changed` events carry whole."""

    active: str | None
    automation: Automation
    fenced: Mapping[str, Any]
    last_sync: LastSync | None
    last_switchover: LastSwitchover | None
    last_nvram_snapshot: LastSnapshot | None
    # Newer sidecars: the newest coordinator state whatever the driver (z2m-backup clusters have
    # no NVRAM snapshots). Only in the full status, not in `state.changed` events.
    last_coordinator_snapshot: LastSnapshot | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON (a status or a `state.changed` event's state)."""
        sync = data.get("last_sync")
        switch = data.get("last_switchover")
        snap = data.get("last_nvram_snapshot")
        coordinator = data.get("last_coordinator_snapshot")
        return cls(
            active=_opt_str(data.get("active")),
            automation=Automation.from_dict(data.get("automation") or {}),
            fenced=dict(data.get("fenced") or {}),
            last_sync=LastSync(
                at=_parse_time(sync.get("at")),
                operation_id=str(sync.get("operation_id", "")),
            )
            if isinstance(sync, Mapping)
            else None,
            last_switchover=LastSwitchover(
                at=_parse_time(switch.get("at")),
                operation_id=str(switch.get("operation_id", "")),
                from_node=_opt_str(switch.get("from")),
                to_node=str(switch.get("to", "")),
                kind=str(switch.get("kind", "switchover")),
            )
            if isinstance(switch, Mapping)
            else None,
            last_nvram_snapshot=_snapshot(snap),
            last_coordinator_snapshot=_snapshot(coordinator),
        )

    @property
    def coordinator_snapshot(self) -> LastSnapshot | None:
        """The newest coordinator state known: the driver-neutral one, or the last NVRAM one."""
        candidates = [
            s
            for s in (self.last_coordinator_snapshot, self.last_nvram_snapshot)
            if s is not None
        ]
        if not candidates:
            return None
        return max(
            candidates,
            key=lambda s: s.at or datetime.min.replace(tzinfo=UTC),
        )


@dataclass(frozen=True, kw_only=True)
class ClusterStatus:
    """`GET /api/v1/status`: everything the entities show."""

    cluster_name: str
    state: ClusterState
    bridge: BridgeStatus
    nodes: Mapping[str, NodeStatus]
    running_operation: Operation | None
    alerts: tuple[Alert, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the API's JSON."""
        try:
            running = data.get("running_operation")
            return cls(
                cluster_name=str(data.get("cluster_name", "")),
                state=ClusterState.from_dict(data),
                bridge=BridgeStatus.from_dict(data.get("bridge") or {}),
                nodes={
                    node.id: node
                    for node in (NodeStatus.from_dict(n) for n in data.get("nodes", []))
                },
                running_operation=Operation.from_dict(running)
                if isinstance(running, Mapping)
                else None,
                alerts=tuple(Alert.from_dict(a) for a in data.get("alerts", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SidecarError(f"unexpected /status answer: {err!r}") from err

    def apply(self, event: SidecarEvent) -> ClusterStatus | None:
        """This status with the event's change made, or None when only a full refresh will do."""
        patch = _EVENT_PATCHES.get(event.type)
        if patch is None:
            # "resync", or a type newer than this client.
            return None
        try:
            return patch(self, event.data)
        except KeyError, TypeError, ValueError, AttributeError:
            return None

    def alerts_except(self, kind: str, node: str | None) -> tuple[Alert, ...]:
        """The alerts but the one of this kind and node."""
        return tuple(a for a in self.alerts if (a.kind, a.node) != (kind, node))


def _state_changed(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    state = ClusterState.from_dict(data["state"])
    if state.last_coordinator_snapshot is None:
        # The event carries the persisted state only: keep what the last full status said.
        state = replace(
            state, last_coordinator_snapshot=status.state.last_coordinator_snapshot
        )
    nodes = status.nodes
    if state.active != status.state.active:
        # Roles follow the active node; health follows in the nodes' own events.
        nodes = {
            node_id: replace(
                node, role="active" if node_id == state.active else "standby"
            )
            for node_id, node in nodes.items()
        }
    return replace(status, state=state, nodes=nodes)


def _node_changed(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    node = NodeStatus.from_dict(data["node"])
    return replace(status, nodes={**status.nodes, node.id: node})


def _bridge_changed(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    return replace(status, bridge=BridgeStatus.from_dict(data["bridge"]))


def _alert_raised(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    alert = Alert.from_dict(data["alert"])
    others = status.alerts_except(alert.kind, alert.node)
    return replace(status, alerts=(*others, alert))


def _alert_cleared(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    cleared = data["alert"]
    others = status.alerts_except(str(cleared["kind"]), _opt_str(cleared.get("node")))
    return replace(status, alerts=others)


def _operation_started(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    # The status shows only the mutating operation that holds the cluster.
    if not data["operation"].get("mutating", False):
        return status
    return replace(status, running_operation=Operation.from_dict(data["operation"]))


def _operation_step(status: ClusterStatus, data: Mapping[str, Any]) -> ClusterStatus:
    running, step = status.running_operation, data["step"]
    if running is None or running.id != data.get("operation_id"):
        return status
    if step.get("status") != "running":
        return status
    current = replace(running, current_step=str(step["name"]))
    return replace(status, running_operation=current)


def _operation_finished(
    status: ClusterStatus, data: Mapping[str, Any]
) -> ClusterStatus:
    running = status.running_operation
    if running is None or running.id != data["operation"].get("id"):
        return status
    return replace(status, running_operation=None)


_EVENT_PATCHES: dict[
    str, Callable[[ClusterStatus, Mapping[str, Any]], ClusterStatus]
] = {
    "state.changed": _state_changed,
    "node.changed": _node_changed,
    "bridge.changed": _bridge_changed,
    "alert.raised": _alert_raised,
    "alert.cleared": _alert_cleared,
    "operation.started": _operation_started,
    "operation.step": _operation_step,
    "operation.finished": _operation_finished,
}


@dataclass(frozen=True, kw_only=True)
class SidecarEvent:
    """One Server-Sent Event: its type, sequence number (id) and JSON payload."""

    type: str
    id: str | None
    data: Mapping[str, Any]


class SidecarClient:
    """Talks to one sidecar at `url` with a bearer `token`."""

    def __init__(
        self,
        url: str,
        token: str,
        session: aiohttp.ClientSession,
        *,
        fingerprint: str | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        """Use the given session (the caller owns it); pin the certificate by `fingerprint`."""
        self.url = URL(url.rstrip("/"))
        self._token = token
        self._session = session
        self._timeout = request_timeout
        self._ssl = _ssl_for(fingerprint)

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            # The sidecar records it as the trigger of the operations we start.
            "X-Z2MHA-Client": "home-assistant",
        }
        if extra:
            headers.update(extra)
        return headers

    async def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        url = self.url.joinpath(API_PREFIX.lstrip("/") + path, encoded=False)
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._session.request(
                    method,
                    url,
                    headers=self._headers(),
                    json=body,
                    allow_redirects=False,
                    ssl=self._ssl,
                )
                async with response:
                    text = await response.text()
        except TimeoutError as err:
            raise SidecarConnectionError(f"no answer from {self.url} in time") from err
        except (aiohttp.ClientError, socket.gaierror, OSError) as err:
            raise _connection_error(self.url, err) from err
        if response.status == 401:
            # Whatever the body: a reverse proxy in front answers 401 with its own HTML page.
            raise SidecarAuthenticationError("the sidecar rejected the token")
        try:
            payload = json.loads(text) if text else None
        except ValueError as err:
            raise SidecarError(
                f"{method} {path}: HTTP {response.status}, not JSON (is {self.url} the sidecar?)"
            ) from err
        if response.status >= 400:
            error = payload.get("error") if isinstance(payload, Mapping) else None
            if not isinstance(error, Mapping):
                raise SidecarError(f"{method} {path}: HTTP {response.status}")
            details = error.get("details")
            raise SidecarResponseError(
                response.status,
                str(error.get("code", "error")),
                str(error.get("message", "")),
                details if isinstance(details, Mapping) else None,
            )
        return payload

    async def info(self) -> SidecarInfo:
        """Instance id, name, version, node ids."""
        data = await self._request("GET", "/info")
        if not isinstance(data, Mapping):
            raise SidecarError("unexpected /info answer")
        return SidecarInfo.from_dict(data)

    async def status(self) -> ClusterStatus:
        """The whole cluster's status."""
        data = await self._request("GET", "/status")
        if not isinstance(data, Mapping):
            raise SidecarError("unexpected /status answer")
        return ClusterStatus.from_dict(data)

    async def _start(self, path: str, body: Mapping[str, Any]) -> Operation:
        data = await self._request("POST", path, body)
        if not isinstance(data, Mapping):
            raise SidecarError(f"unexpected {path} answer")
        return Operation.from_dict(data)

    async def switchover(
        self, target: str | None = None, reason: str | None = None
    ) -> Operation:
        """Start a planned switchover (to `target`, or the best ready standby)."""
        return await self._start("/switchover", _compact(target=target, reason=reason))

    async def sync(self, reason: str | None = None) -> Operation:
        """Start a config sync to every standby."""
        return await self._start("/sync", _compact(reason=reason))

    async def check(self) -> Operation:
        """Start a preflight check of every node."""
        return await self._start("/check", {})

    async def stop_node(self, node_id: str, reason: str | None = None) -> Operation:
        """Stop zigbee2mqtt on a node that is not the active one (a `fence` operation)."""
        return await self._start(
            f"/nodes/{quote(node_id, safe='')}/stop", _compact(reason=reason)
        )

    async def set_automation(
        self, *, automatic_failover: bool | None = None, maintenance: bool | None = None
    ) -> Automation:
        """Pause or resume automatic failover, enter or leave maintenance."""
        data = await self._request(
            "PUT",
            "/automation",
            _compact(automatic_failover=automatic_failover, maintenance=maintenance),
        )
        if not isinstance(data, Mapping):
            raise SidecarError("unexpected /automation answer")
        return Automation.from_dict(data)

    async def events(
        self, last_event_id: str | None = None
    ) -> AsyncIterator[SidecarEvent]:
        """Follow the event stream until it ends; raises SidecarConnectionError when it breaks."""
        extra = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            extra["Last-Event-ID"] = last_event_id
        url = self.url.joinpath(API_PREFIX.lstrip("/") + "/events", encoded=False)
        try:
            async with self._session.get(
                url,
                headers=self._headers(extra),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self._timeout,
                    sock_read=EVENT_STREAM_READ_TIMEOUT,
                ),
                allow_redirects=False,
                ssl=self._ssl,
            ) as response:
                if response.status == 401:
                    raise SidecarAuthenticationError("the sidecar rejected the token")
                if response.status != 200:
                    raise SidecarError(f"event stream: HTTP {response.status}")
                yield SidecarEvent(type=STREAM_CONNECTED, id=None, data={})
                parser = _EventParser()
                async for line in response.content:
                    if (event := parser.feed(line)) is not None:
                        yield event
        except TimeoutError as err:
            raise SidecarConnectionError("the event stream went silent") from err
        except (
            aiohttp.ServerFingerprintMismatch,
            aiohttp.ClientConnectorCertificateError,
        ) as err:
            raise _connection_error(self.url, err) from err
        except (aiohttp.ClientError, OSError) as err:
            raise SidecarConnectionError(f"event stream broke: {err}") from err


def _compact(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class _EventParser:
    """Server-Sent Events framing: fields until a blank line, comments start with ':'."""

    def __init__(self) -> None:
        self._type = ""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, raw: bytes) -> SidecarEvent | None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> SidecarEvent | None:
        event_type, data = self._type or "message", "\n".join(self._data)
        self._type, self._data = "", []
        if not data:
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        if not isinstance(payload, Mapping):
            return None
        return SidecarEvent(type=event_type, id=self._id, data=payload)


def _snapshot(data: Any) -> LastSnapshot | None:
    if not isinstance(data, Mapping):
        return None
    return LastSnapshot(
        at=_parse_time(data.get("at")),
        id=str(data.get("id", "")),
        node=str(data.get("node", "")),
    )
