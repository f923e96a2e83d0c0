"""Switches: automatic failover and maintenance mode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import Automation, ClusterStatus
from .coordinator import Zigbee2mqttHaConfigEntry, Zigbee2mqttHaCoordinator
from .entity import Zigbee2mqttHaEntity

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaSwitchEntityDescription(SwitchEntityDescription):
    """Describes a switch of the hub."""

    value_fn: Callable[[ClusterStatus], bool]
    set_fn: Callable[[Zigbee2mqttHaCoordinator, bool], Awaitable[Automation]]


SWITCHES: tuple[Zigbee2mqttHaSwitchEntityDescription, ...] = (
    Zigbee2mqttHaSwitchEntityDescription(
        key="automatic_failover",
        translation_key="automatic_failover",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda status: status.state.automation.automatic_failover,
        set_fn=lambda coordinator, on: coordinator.async_set_automation(
            automatic_failover=on
        ),
    ),
    Zigbee2mqttHaSwitchEntityDescription(
        key="maintenance",
        translation_key="maintenance",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda status: status.state.automation.maintenance,
        set_fn=lambda coordinator, on: coordinator.async_set_automation(maintenance=on),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Zigbee2mqttHaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the switches."""
    async_add_entities(
        Zigbee2mqttHaSwitchEntity(entry=entry, description=description)
        for description in SWITCHES
    )


class Zigbee2mqttHaSwitchEntity(Zigbee2mqttHaEntity, SwitchEntity):
    """A switch of the hub."""

    entity_description: Zigbee2mqttHaSwitchEntityDescription

    @property
    def is_on(self) -> bool:
        """The switch's state."""
        return self.entity_description.value_fn(self.coordinator.data)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn on."""
        await self.entity_description.set_fn(self.coordinator, True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn off."""
        await self.entity_description.set_fn(self.coordinator, False)
