"""The zigbee2mqtt-ha integration: control a zigbee2mqtt high-availability sidecar."""

from __future__ import annotations

from homeassistant.const import CONF_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import (
    SidecarAuthenticationError,
    SidecarClient,
    SidecarConnectionError,
    SidecarError,
)
from .const import CONF_FINGERPRINT, DOMAIN
from .coordinator import (
    Zigbee2mqttHaConfigEntry,
    Zigbee2mqttHaCoordinator,
    Zigbee2mqttHaRuntimeData,
)
from .devices import async_remove_stale_node_devices, hub_device_info, node_of_device
from .event_stream import EventStreamListener
from .issues import async_track_alert_issues
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which exist whether or not an entry is loaded."""
    async_setup_services(hass)
    return True


async def async_setup_entry(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry
) -> bool:
    """Connect to the sidecar, load its status and follow its events."""
    client = SidecarClient(
        entry.data[CONF_URL],
        entry.data[CONF_TOKEN],
        async_get_clientsession(hass),
        fingerprint=entry.data.get(CONF_FINGERPRINT),
    )
    try:
        info = await client.info()
    except SidecarAuthenticationError as error:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from error
    except SidecarConnectionError as error:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(error)},
        ) from error
    except SidecarError as error:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="unknown_error",
            translation_placeholders={"error": str(error)},
        ) from error

    coordinator = Zigbee2mqttHaCoordinator(hass, entry, client, info)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = Zigbee2mqttHaRuntimeData(
        client=client, coordinator=coordinator, info=info
    )

    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(entry)
    )
    async_remove_stale_node_devices(hass, entry)
    async_track_alert_issues(hass, entry)
    listener = EventStreamListener(hass, entry, coordinator)
    entry.async_create_background_task(
        hass, listener.async_run(), name=f"zigbee2mqtt-ha {entry.title} event stream"
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_migrate_entry(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry
) -> bool:
    """Bring an entry saved by an older version up to date."""
    if entry.version > 1:
        # Saved by a newer version of the integration: nothing here can read it.
        return False
    if entry.minor_version < 2:
        # 1.2: the full-refresh interval is no longer an option.
        options = {k: v for k, v in entry.options.items() if k != "refresh_interval"}
        hass.config_entries.async_update_entry(entry, options=options, minor_version=2)
    return True


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow deleting a node's device once the sidecar no longer has the node."""
    node_id = node_of_device(entry, device)
    return (
        node_id is not None and node_id not in entry.runtime_data.coordinator.data.nodes
    )


async def async_unload_entry(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry
) -> bool:
    """Unload the entry; the event stream task ends with it."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
