"""Base entity for the zigbee2mqtt-ha integration."""

from __future__ import annotations

from homeassistant.const import CONF_URL
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api import NodeStatus
from .compat import link_to_hub
from .const import DOMAIN
from .coordinator import Zigbee2mqttHaConfigEntry, Zigbee2mqttHaCoordinator


def hub_device_info(entry: Zigbee2mqttHaConfigEntry) -> DeviceInfo:
    """The sidecar's own device, parent of the nodes' devices."""
    info = entry.runtime_data.info
    return DeviceInfo(
        identifiers={(DOMAIN, info.instance_id)},
        name=info.name,
        manufacturer="zigbee2mqtt-ha",
        model="High-availability sidecar",
        sw_version=info.version,
        configuration_url=f"{entry.data[CONF_URL].rstrip('/')}/docs",
    )


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
        info = entry.runtime_data.info
        if node_id is None:
            self._attr_unique_id = f"{entry.unique_id}_{description.key}"
            self._attr_device_info = hub_device_info(entry)
        else:
            self._attr_unique_id = f"{entry.unique_id}_{node_id}_{description.key}"
            self._attr_device_info = link_to_hub(
                self.coordinator.hass,
                DeviceInfo(
                    identifiers={(DOMAIN, f"{info.instance_id}_{node_id}")},
                    name=f"zigbee2mqtt {node_id}",
                    manufacturer="zigbee2mqtt-ha",
                    model="zigbee2mqtt node",
                ),
                (DOMAIN, info.instance_id),
                config_entry_id=entry.entry_id,
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
