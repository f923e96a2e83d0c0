"""Buttons: switch over, sync now, check nodes; per node make active."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import Zigbee2mqttHaConfigEntry, Zigbee2mqttHaCoordinator
from .entity import Zigbee2mqttHaEntity, async_add_node_entities

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaButtonEntityDescription(ButtonEntityDescription):
    """Describes a button of the hub."""

    press_fn: Callable[[Zigbee2mqttHaCoordinator], Awaitable[Any]]


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaNodeButtonEntityDescription(ButtonEntityDescription):
    """Describes a button of each node."""

    press_fn: Callable[[Zigbee2mqttHaCoordinator, str], Awaitable[Any]]


BUTTONS: tuple[Zigbee2mqttHaButtonEntityDescription, ...] = (
    Zigbee2mqttHaButtonEntityDescription(
        key="switchover",
        translation_key="switchover",
        press_fn=lambda coordinator: coordinator.async_switchover(
            reason="Home Assistant button"
        ),
    ),
    Zigbee2mqttHaButtonEntityDescription(
        key="sync",
        translation_key="sync",
        press_fn=lambda coordinator: coordinator.async_sync(
            reason="Home Assistant button"
        ),
    ),
    Zigbee2mqttHaButtonEntityDescription(
        key="check",
        translation_key="check",
        entity_category=EntityCategory.DIAGNOSTIC,
        press_fn=lambda coordinator: coordinator.async_check(),
    ),
)

NODE_BUTTONS: tuple[Zigbee2mqttHaNodeButtonEntityDescription, ...] = (
    Zigbee2mqttHaNodeButtonEntityDescription(
        key="make_active",
        translation_key="make_active",
        press_fn=lambda coordinator, node_id: coordinator.async_switchover(
            target=node_id, reason="Home Assistant button"
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Zigbee2mqttHaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the buttons of the hub and of every node."""
    async_add_entities(
        Zigbee2mqttHaButtonEntity(entry=entry, description=description)
        for description in BUTTONS
    )
    async_add_node_entities(
        entry,
        async_add_entities,
        lambda node_id: (
            Zigbee2mqttHaNodeButtonEntity(
                entry=entry, description=description, node_id=node_id
            )
            for description in NODE_BUTTONS
        ),
    )


class Zigbee2mqttHaButtonEntity(Zigbee2mqttHaEntity, ButtonEntity):
    """A button of the hub."""

    entity_description: Zigbee2mqttHaButtonEntityDescription

    async def async_press(self) -> None:
        """Ask the sidecar."""
        await self.entity_description.press_fn(self.coordinator)


class Zigbee2mqttHaNodeButtonEntity(Zigbee2mqttHaEntity, ButtonEntity):
    """A button of one node."""

    entity_description: Zigbee2mqttHaNodeButtonEntityDescription

    def __init__(
        self,
        *,
        entry: Zigbee2mqttHaConfigEntry,
        description: Zigbee2mqttHaNodeButtonEntityDescription,
        node_id: str,
    ) -> None:
        """Initialize the button of `node_id`."""
        super().__init__(entry=entry, description=description, node_id=node_id)
        self._target = node_id

    async def async_press(self) -> None:
        """Ask the sidecar."""
        await self.entity_description.press_fn(self.coordinator, self._target)
