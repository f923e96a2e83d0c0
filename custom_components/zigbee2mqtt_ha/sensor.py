"""Sensors: active node, current operation, last sync / switchover / snapshot, node health."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .api import ClusterStatus, NodeStatus
from .coordinator import Zigbee2mqttHaConfigEntry
from .entity import Zigbee2mqttHaEntity, async_add_node_entities

PARALLEL_UPDATES = 0

OPERATION_KINDS = [
    "idle",
    "switchover",
    "failover",
    "sync",
    "check",
    "restart",
    "recovery",
    "restore_snapshot",
    "decision",
    "fence",
]
NODE_HEALTH = [
    "active_healthy",
    "active_degraded",
    "active_down",
    "standby_ready",
    "standby_not_ready",
    "unreachable",
    "fenced",
    "unknown",
]


def _state_key(value: str) -> str:
    """The API's words ("standby-ready") as translation state keys ("standby_ready")."""
    return value.replace("-", "_")


def _current_operation(status: ClusterStatus) -> str:
    operation = status.running_operation
    return "idle" if operation is None else _state_key(operation.kind)


def _current_operation_attributes(status: ClusterStatus) -> Mapping[str, Any]:
    operation = status.running_operation
    if operation is None:
        return {}
    return {
        "operation_id": operation.id,
        "step": operation.current_step,
        "trigger": operation.trigger,
        "started_at": operation.started_at,
    }


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of the hub."""

    value_fn: Callable[[ClusterStatus], StateType | datetime]
    options_fn: Callable[[ClusterStatus], list[str]] | None = None
    attributes_fn: Callable[[ClusterStatus], Mapping[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class Zigbee2mqttHaNodeSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of each node."""

    value_fn: Callable[[NodeStatus], StateType]
    attributes_fn: Callable[[NodeStatus], Mapping[str, Any]] | None = None


SENSORS: tuple[Zigbee2mqttHaSensorEntityDescription, ...] = (
    Zigbee2mqttHaSensorEntityDescription(
        key="active_node",
        translation_key="active_node",
        device_class=SensorDeviceClass.ENUM,
        # The sidecar's nodes now: the list grows and shrinks with its configuration.
        options_fn=lambda status: list(status.nodes),
        value_fn=lambda status: status.state.active,
    ),
    Zigbee2mqttHaSensorEntityDescription(
        key="current_operation",
        translation_key="current_operation",
        device_class=SensorDeviceClass.ENUM,
        options=OPERATION_KINDS,
        value_fn=_current_operation,
        attributes_fn=_current_operation_attributes,
    ),
    Zigbee2mqttHaSensorEntityDescription(
        key="last_sync",
        translation_key="last_sync",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: (
            status.state.last_sync.at if status.state.last_sync else None
        ),
    ),
    Zigbee2mqttHaSensorEntityDescription(
        key="last_switchover",
        translation_key="last_switchover",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: (
            status.state.last_switchover.at if status.state.last_switchover else None
        ),
        attributes_fn=lambda status: (
            {
                "from": status.state.last_switchover.from_node,
                "to": status.state.last_switchover.to_node,
                "kind": status.state.last_switchover.kind,
            }
            if status.state.last_switchover
            else {}
        ),
    ),
    Zigbee2mqttHaSensorEntityDescription(
        key="last_coordinator_snapshot",
        translation_key="last_coordinator_snapshot",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: (
            status.state.coordinator_snapshot.at
            if status.state.coordinator_snapshot
            else None
        ),
        attributes_fn=lambda status: (
            {"node": status.state.coordinator_snapshot.node}
            if status.state.coordinator_snapshot
            else {}
        ),
    ),
)

NODE_SENSORS: tuple[Zigbee2mqttHaNodeSensorEntityDescription, ...] = (
    Zigbee2mqttHaNodeSensorEntityDescription(
        key="health",
        translation_key="health",
        device_class=SensorDeviceClass.ENUM,
        entity_category=EntityCategory.DIAGNOSTIC,
        options=NODE_HEALTH,
        value_fn=lambda node: _state_key(node.health),
        attributes_fn=lambda node: {"reason": node.reason},
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Zigbee2mqttHaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the sensors of the hub and of every node."""
    async_add_entities(
        Zigbee2mqttHaSensorEntity(entry=entry, description=description)
        for description in SENSORS
    )
    async_add_node_entities(
        entry,
        async_add_entities,
        lambda node_id: (
            Zigbee2mqttHaNodeSensorEntity(
                entry=entry, description=description, node_id=node_id
            )
            for description in NODE_SENSORS
        ),
    )


class Zigbee2mqttHaSensorEntity(Zigbee2mqttHaEntity, SensorEntity):
    """A sensor of the hub."""

    entity_description: Zigbee2mqttHaSensorEntityDescription

    @property
    def options(self) -> list[str] | None:
        """The enum's states: fixed, or (the active node) the sidecar's nodes now."""
        if self.entity_description.options_fn is not None:
            return self.entity_description.options_fn(self.coordinator.data)
        return self.entity_description.options

    @property
    def native_value(self) -> StateType | datetime:
        """The sensor's state."""
        value = self.entity_description.value_fn(self.coordinator.data)
        options = self.options
        if options is not None and value not in options:
            # E.g. an operation kind newer than this integration: unknown, not an error.
            return None
        return value

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Details that help an automation or a person read the state."""
        if self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(self.coordinator.data)


class Zigbee2mqttHaNodeSensorEntity(Zigbee2mqttHaEntity, SensorEntity):
    """A sensor of one node."""

    entity_description: Zigbee2mqttHaNodeSensorEntityDescription

    @property
    def native_value(self) -> StateType:
        """The sensor's state."""
        node = self.node
        return None if node is None else self.entity_description.value_fn(node)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """Details that help an automation or a person read the state."""
        node = self.node
        if node is None or self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(node)
