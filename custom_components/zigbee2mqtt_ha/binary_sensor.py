"""Binary sensors: protected, bridge online, broker connected; per node reachable, running, standby ready."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import ClusterStatus, NodeStatus
from .compat import BinarySensorDeviceClass
from .coordinator import Zigbee2mqttHaConfigEntry
from .entity import Zigbee2mqttHaEntity, async_add_node_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaBinarySensorEntityDescription(BinarySensorEntityDescription):
    """Describes a binary sensor of the hub."""

    value_fn: Callable[[ClusterStatus], bool | None]


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaNodeBinarySensorEntityDescription(BinarySensorEntityDescription):
    """Describes a binary sensor of each node."""

    value_fn: Callable[[NodeStatus], bool | None]


def _protected(status: ClusterStatus) -> bool:
    """Whether a failover could happen now: an active node and a standby ready to take over.

    The sidecar's status says so too, but events do not carry it: derived here from what they do.
    """
    return status.state.active is not None and any(
        node.health == "standby-ready" for node in status.nodes.values()
    )


BINARY_SENSORS: tuple[Zigbee2mqttHaBinarySensorEntityDescription, ...] = (
    Zigbee2mqttHaBinarySensorEntityDescription(
        key="protected",
        translation_key="protected",
        value_fn=_protected,
    ),
    Zigbee2mqttHaBinarySensorEntityDescription(
        key="bridge_online",
        translation_key="bridge_online",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        value_fn=lambda status: (
            None
            if status.bridge.state == "unknown"
            else status.bridge.state == "online"
        ),
    ),
    Zigbee2mqttHaBinarySensorEntityDescription(
        key="broker_connected",
        translation_key="broker_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        # Bridge online says what matters; the broker link only helps when digging.
        entity_registry_enabled_default=False,
        value_fn=lambda status: status.bridge.broker_connected,
    ),
)

NODE_BINARY_SENSORS: tuple[Zigbee2mqttHaNodeBinarySensorEntityDescription, ...] = (
    Zigbee2mqttHaNodeBinarySensorEntityDescription(
        key="reachable",
        translation_key="reachable",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        value_fn=lambda node: node.reachable,
    ),
    Zigbee2mqttHaNodeBinarySensorEntityDescription(
        key="zigbee2mqtt_running",
        translation_key="zigbee2mqtt_running",
        device_class=BinarySensorDeviceClass.RUNNING,
        entity_category=EntityCategory.DIAGNOSTIC,
        # The health sensor already tells an active node that is down; this is the detail.
        entity_registry_enabled_default=False,
        value_fn=lambda node: node.zigbee2mqtt_running,
    ),
    Zigbee2mqttHaNodeBinarySensorEntityDescription(
        key="standby_ready",
        translation_key="standby_ready",
        value_fn=lambda node: (
            None if node.health == "unknown" else node.health == "standby-ready"
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Zigbee2mqttHaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the binary sensors of the hub and of every node."""
    async_add_entities(
        Zigbee2mqttHaBinarySensorEntity(entry=entry, description=description)
        for description in BINARY_SENSORS
    )
    async_add_node_entities(
        entry,
        async_add_entities,
        lambda node_id: (
            Zigbee2mqttHaNodeBinarySensorEntity(
                entry=entry, description=description, node_id=node_id
            )
            for description in NODE_BINARY_SENSORS
        ),
    )


class Zigbee2mqttHaBinarySensorEntity(Zigbee2mqttHaEntity, BinarySensorEntity):
    """A binary sensor of the hub."""

    entity_description: Zigbee2mqttHaBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """The sensor's state."""
        return self.entity_description.value_fn(self.coordinator.data)


class Zigbee2mqttHaNodeBinarySensorEntity(Zigbee2mqttHaEntity, BinarySensorEntity):
    """A binary sensor of one node."""

    entity_description: Zigbee2mqttHaNodeBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """The sensor's state."""
        node = self.node
        return None if node is None else self.entity_description.value_fn(node)
