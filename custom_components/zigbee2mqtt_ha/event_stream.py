"""Follows the sidecar's event stream for as long as the entry is loaded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from homeassistant.core import HomeAssistant

from .api import STREAM_CONNECTED, SidecarAuthenticationError, SidecarError
from .const import EVENT_STREAM_RETRY_MAXIMUM, EVENT_STREAM_RETRY_MINIMUM, LOGGER
from .coordinator import Zigbee2mqttHaConfigEntry, Zigbee2mqttHaCoordinator


class EventStreamListener:
    """Keeps a subscription to /api/v1/events up, feeding the coordinator.

    Pushed events make entities change as things happen. When the stream breaks, the status is
    fetched at once: a sidecar that went away makes the entities unavailable right then, rather
    than at the next periodic refresh, and reconnecting brings them back with a full refresh, so
    nothing missed while disconnected stays wrong.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: Zigbee2mqttHaConfigEntry,
        coordinator: Zigbee2mqttHaCoordinator,
    ) -> None:
        """Initialize the listener."""
        self._hass = hass
        self._entry = entry
        self._coordinator = coordinator
        self._retry = EVENT_STREAM_RETRY_MINIMUM
        self._last_event_id: str | None = None

    async def async_run(self) -> None:
        """Listen, and reconnect with a growing pause whenever the stream ends."""
        while True:
            try:
                await self._async_listen()
            except SidecarAuthenticationError:
                LOGGER.debug("Event stream for %s: token rejected", self._entry.title)
            except SidecarError as error:
                LOGGER.debug(
                    "Event stream for %s stopped: %s", self._entry.title, error
                )
            # Find out now whether the sidecar is gone or only the stream dropped.
            await self._coordinator.async_refresh()
            await self._async_pause(self._retry)
            self._retry = min(self._retry * 2, EVENT_STREAM_RETRY_MAXIMUM)

    async def _async_pause(self, delay: timedelta) -> None:
        """Wait before reconnecting (its own method: the tests record the pauses)."""
        await asyncio.sleep(delay.total_seconds())

    async def _async_listen(self) -> None:
        """Stay on the stream until it closes."""
        async for event in self._coordinator.client.events(self._last_event_id):
            if event.type == STREAM_CONNECTED:
                self._retry = EVENT_STREAM_RETRY_MINIMUM
                await self._coordinator.async_refresh()
                continue
            if event.id is not None:
                self._last_event_id = event.id
            self._coordinator.async_handle_event(event)
        LOGGER.debug("Event stream for %s closed by the sidecar", self._entry.title)
