"""The devices: the sidecar (the hub) and one per node, kept in step with the sidecar's nodes."""

from __future__ import annotations

from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from .compat import link_to_hub
from .const import DOMAIN, LOGGER
from .coordinator import Zigbee2mqttHaConfigEntry


def hub_identifier(entry: Zigbee2mqttHaConfigEntry) -> tuple[str, str]:
    """The sidecar's device identifier: its instance id."""
    return (DOMAIN, entry.runtime_data.info.instance_id)


def node_identifier(entry: Zigbee2mqttHaConfigEntry, node_id: str) -> tuple[str, str]:
    """A node's device identifier."""
    return (DOMAIN, f"{entry.runtime_data.info.instance_id}_{node_id}")


def hub_device_info(entry: Zigbee2mqttHaConfigEntry) -> DeviceInfo:
    """The sidecar's own device, parent of the nodes' devices."""
    info = entry.runtime_data.info
    return DeviceInfo(
        identifiers={hub_identifier(entry)},
        name=info.name,
        manufacturer="zigbee2mqtt-ha",
        model="High-availability sidecar",
        sw_version=info.version,
        configuration_url=f"{entry.data[CONF_URL].rstrip('/')}/docs",
    )


def node_device_info(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry, node_id: str
) -> DeviceInfo:
    """A node's device, connected via the hub (registered at setup, before any platform)."""
    return link_to_hub(
        hass,
        DeviceInfo(
            identifiers={node_identifier(entry, node_id)},
            translation_key="node",
            translation_placeholders={"node_id": node_id},
            manufacturer="zigbee2mqtt-ha",
            model="zigbee2mqtt node",
        ),
        hub_identifier(entry),
        config_entry_id=entry.entry_id,
    )


def node_of_device(
    entry: Zigbee2mqttHaConfigEntry, device: dr.DeviceEntry
) -> str | None:
    """The node id a device stands for; None for the hub or a device not ours."""
    prefix = f"{entry.runtime_data.info.instance_id}_"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return identifier.removeprefix(prefix)
    return None


@callback
def async_remove_stale_node_devices(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry
) -> None:
    """Remove the device (and so the entities) of every node the sidecar no longer has.

    Now, for nodes removed while Home Assistant was not running, and at every status that
    comes in while the entry is loaded. A sidecar that cannot be reached says nothing about
    its nodes: nothing is removed then.
    """
    coordinator = entry.runtime_data.coordinator
    registry = dr.async_get(hass)

    @callback
    def _remove() -> None:
        if not coordinator.last_update_success:
            return
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            node_id = node_of_device(entry, device)
            if node_id is None or node_id in coordinator.data.nodes:
                continue
            LOGGER.info(
                "Node %s is no longer in %s's configuration: removing its device",
                node_id,
                entry.title,
            )
            # Only this entry's: node devices belong to no other entry.
            registry.async_remove_device(device.id)

    _remove()
    entry.async_on_unload(coordinator.async_add_listener(_remove))
