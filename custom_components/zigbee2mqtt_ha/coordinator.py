"""The cluster status, kept current by the sidecar's event stream and a periodic full refresh."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import (
    Automation,
    ClusterStatus,
    Operation,
    SidecarAuthenticationError,
    SidecarClient,
    SidecarConnectionError,
    SidecarError,
    SidecarEvent,
    SidecarInfo,
)
from .const import (
    CONF_EVENTS,
    DEFAULT_EVENTS,
    DOMAIN,
    EVENT_TYPES,
    FULL_REFRESH_INTERVAL,
    LOGGER,
)
from .helpers import sidecar_errors


@dataclass(kw_only=True)
class Zigbee2mqttHaRuntimeData:
    """What a loaded entry holds."""

    client: SidecarClient
    coordinator: Zigbee2mqttHaCoordinator
    info: SidecarInfo


type Zigbee2mqttHaConfigEntry = ConfigEntry[Zigbee2mqttHaRuntimeData]


class Zigbee2mqttHaCoordinator(DataUpdateCoordinator[ClusterStatus]):
    """Holds the sidecar's status; every call that changes the cluster goes through here."""

    config_entry: Zigbee2mqttHaConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: Zigbee2mqttHaConfigEntry,
        client: SidecarClient,
        info: SidecarInfo,
    ) -> None:
        """Set up the coordinator; the first refresh is the caller's."""
        self.client = client
        self.info = info
        # Operation ids whose end was already announced: a stream that reconnects with
        # Last-Event-ID can deliver an operation.finished a second time.
        self._announced: deque[str] = deque(maxlen=64)
        self._takeover_listeners: list[
            Callable[[Operation, Mapping[str, Any]], None]
        ] = []
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"zigbee2mqtt-ha {entry.title}",
            update_interval=FULL_REFRESH_INTERVAL,
        )

    @override
    async def _async_update_data(self) -> ClusterStatus:
        """Fetch the whole status."""
        try:
            status = await self.client.status()
        except SidecarAuthenticationError as error:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from error
        except SidecarConnectionError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(error)},
            ) from error
        except SidecarError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="unknown_error",
                translation_placeholders={"error": str(error)},
            ) from error
        return status

    @callback
    def async_handle_event(self, event: SidecarEvent) -> None:
        """Fold one event from the stream into the status, and announce finished takeovers."""
        if event.type == "operation.finished":
            self._async_announce(event.data.get("operation"))
        if not self.last_update_success:
            # Nothing trustworthy to patch: the stream's caller refreshes after connecting.
            return
        updated = self.data.apply(event)
        if updated is None:
            self.config_entry.async_create_task(
                self.hass, self.async_request_refresh(), eager_start=False
            )
            return
        if updated is not self.data:
            # Set without async_set_updated_data: that would push the periodic full refresh
            # back on every event, and a busy stream would then never get one.
            self.data = updated
            self.async_update_listeners()

    @callback
    def async_add_takeover_listener(
        self, listener: Callable[[Operation, Mapping[str, Any]], None]
    ) -> CALLBACK_TYPE:
        """Call `listener(operation, data)` when a switchover or failover ends; undo with the result.

        `data` is what the zigbee2mqtt_ha_switchover / _failover event carries. Listeners hear
        every takeover, whichever bus events the options turned off.
        """
        self._takeover_listeners.append(listener)
        return lambda: self._takeover_listeners.remove(listener)

    @callback
    def _async_announce(self, raw: Any) -> None:
        """Tell the takeover listeners and fire the bus event for a takeover that ended."""
        if not isinstance(raw, dict) or raw.get("kind") not in EVENT_TYPES:
            return
        try:
            operation = Operation.from_dict(raw)
        except KeyError, TypeError, ValueError:
            return
        if operation.id in self._announced:
            return
        self._announced.append(operation.id)
        data = {
            "config_entry_id": self.config_entry.entry_id,
            "instance_id": self.info.instance_id,
            "operation_id": operation.id,
            "outcome": operation.status,
            "succeeded": operation.status == "succeeded",
            "from": operation.from_node,
            "to": operation.to_node,
            "trigger": operation.trigger,
            "reason": raw.get("reason"),
            "error": operation.error,
            "failed_step": (raw.get("error") or {}).get("step"),
            "started_at": raw.get("started_at"),
            "finished_at": raw.get("finished_at"),
        }
        for listener in list(self._takeover_listeners):
            listener(operation, data)
        if operation.kind in self.config_entry.options.get(CONF_EVENTS, DEFAULT_EVENTS):
            self.hass.bus.async_fire(EVENT_TYPES[operation.kind], data)

    @callback
    def _async_show_operation(self, operation: Operation) -> None:
        """Show a just-started operation before its event arrives on the stream."""
        if operation.finished or not operation.raw.get("mutating", True):
            return
        self.data = replace(self.data, running_operation=operation)
        self.async_update_listeners()

    @sidecar_errors
    async def async_switchover(
        self, target: str | None = None, reason: str | None = None
    ) -> Operation:
        """Start a planned switchover."""
        operation = await self.client.switchover(target=target, reason=reason)
        self._async_show_operation(operation)
        return operation

    @sidecar_errors
    async def async_sync(self, reason: str | None = None) -> Operation:
        """Start a config sync."""
        operation = await self.client.sync(reason=reason)
        self._async_show_operation(operation)
        return operation

    @sidecar_errors
    async def async_check(self) -> Operation:
        """Start a preflight check of every node."""
        operation = await self.client.check()
        self._async_show_operation(operation)
        return operation

    @sidecar_errors
    async def async_stop_node(
        self, node_id: str, reason: str | None = None
    ) -> Operation:
        """Stop zigbee2mqtt on a node that must not run it, and park its coordinator."""
        operation = await self.client.stop_node(node_id, reason=reason)
        self._async_show_operation(operation)
        return operation

    @sidecar_errors
    async def async_set_automation(
        self, *, automatic_failover: bool | None = None, maintenance: bool | None = None
    ) -> Automation:
        """Turn automatic failover or maintenance mode on or off."""
        automation = await self.client.set_automation(
            automatic_failover=automatic_failover, maintenance=maintenance
        )
        self.data = replace(
            self.data, state=replace(self.data.state, automation=automation)
        )
        self.async_update_listeners()
        return automation
