"""Event entities: a switchover or a failover finished, with its outcome.

They show the last takeover in the UI and make it a trigger in the automation editor; the
zigbee2mqtt_ha_switchover / _failover bus events stay for existing automations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import Operation
from .const import LOGGER
from .coordinator import Zigbee2mqttHaConfigEntry
from .entity import Zigbee2mqttHaEntity

PARALLEL_UPDATES = 0

# An operation's end states (docs/api.md); the event type is the outcome.
OUTCOMES = ["succeeded", "failed", "rolled_back", "interrupted"]
# The bus event's fields an event entity keeps as attributes (the entry's ids it has already).
ATTRIBUTES = (
    "operation_id",
    "from",
    "to",
    "trigger",
    "reason",
    "error",
    "failed_step",
    "started_at",
    "finished_at",
)


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaEventEntityDescription(EventEntityDescription):
    """Describes the event entity of one operation kind."""

    kind: str


EVENTS: tuple[Zigbee2mqttHaEventEntityDescription, ...] = (
    Zigbee2mqttHaEventEntityDescription(
        key="switchover_finished",
        translation_key="switchover_finished",
        event_types=OUTCOMES,
        kind="switchover",
    ),
    Zigbee2mqttHaEventEntityDescription(
        key="failover_finished",
        translation_key="failover_finished",
        event_types=OUTCOMES,
        kind="failover",
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Zigbee2mqttHaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the hub's event entities."""
    async_add_entities(
        Zigbee2mqttHaEventEntity(entry=entry, description=description)
        for description in EVENTS
    )


class Zigbee2mqttHaEventEntity(Zigbee2mqttHaEntity, EventEntity):
    """The last switchover (or failover) that finished."""

    entity_description: Zigbee2mqttHaEventEntityDescription

    async def async_added_to_hass(self) -> None:
        """Listen for finished takeovers."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_takeover_listener(self._async_takeover_finished)
        )

    @callback
    def _async_takeover_finished(
        self, operation: Operation, data: Mapping[str, Any]
    ) -> None:
        if operation.kind != self.entity_description.kind:
            return
        if operation.status not in OUTCOMES:
            # A status newer than this integration; the bus event still carries it.
            LOGGER.debug(
                "No event type for %s outcome %s", operation.id, operation.status
            )
            return
        self._trigger_event(operation.status, {key: data[key] for key in ATTRIBUTES})
        self.async_write_ha_state()
