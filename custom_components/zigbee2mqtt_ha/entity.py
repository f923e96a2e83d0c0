"""Base entity for the zigbee2mqtt-ha integration, and the adding of nodes' entities."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import NodeStatus
from .coordinator import Zigbee2mqttHaConfigEntry, Zigbee2mqttHaCoordinator
from .devices import hub_device_info, node_device_info


class Zigbee2mqttHaEntity(CoordinatorEntity[Zigbee2mqttHaCoordinator]):
    """An entity of the hub (the sidecar), or of one node when `node_id` is given."""

    _attr_has_entity_name = True

    def __init__(
        self,
        *,
        entry: Zigbee2mqttHaConfigEntry,
        description: EntityDescription,
        node_id: str | None = None,
    ) -> None:
        """Initialize the entity and its device."""
        super().__init__(coordinator=entry.runtime_data.coordinator)
        self.entity_description = description
        self.node_id = node_id
        if node_id is None:
            self._attr_unique_id = f"{entry.unique_id}_{description.key}"
            self._attr_device_info = hub_device_info(entry)
        else:
            self._attr_unique_id = f"{entry.unique_id}_{node_id}_{description.key}"
            self._attr_device_info = node_device_info(
                self.coordinator.hass, entry, node_id
            )

    @property
    def node(self) -> NodeStatus | None:
        """This entity's node as last reported, if it is a node's entity and still known."""
        if self.node_id is None:
            return None
        return self.coordinator.data.nodes.get(self.node_id)

    @property
    def available(self) -> bool:
        """Available while the sidecar answers, and for a node's entity, knows the node."""
        return super().available and (self.node_id is None or self.node is not None)


@callback
def async_add_node_entities(
    entry: Zigbee2mqttHaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[str], Iterable[Entity]],
) -> None:
    """Add every node's entities now, and those of each node the sidecar gains later.

    Without reloading the entry: a node added to the sidecar's configuration shows up in the
    next status, and gets its entities then. A removed node's go with its device
    (devices.async_remove_stale_node_devices); should it come back, it is new again.
    """
    coordinator = entry.runtime_data.coordinator
    added: set[str] = set()

    @callback
    def _add_new_nodes() -> None:
        added.intersection_update(coordinator.data.nodes)
        new = [node_id for node_id in coordinator.data.nodes if node_id not in added]
        if not new:
            return
        added.update(new)
        async_add_entities(
            entity for node_id in new for entity in entities_for(node_id)
        )

    _add_new_nodes()
    entry.async_on_unload(coordinator.async_add_listener(_add_new_nodes))
