"""What differs between the Home Assistant releases the integration supports (hacs.json).

Each shim names the release that made it unnecessary; it goes once that release is the oldest
supported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

if TYPE_CHECKING:
    from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
    import probatio as vol
else:
    # binary_sensor/const.py is newer than 2026.6; the package exports the class in all.
    from homeassistant.components.binary_sensor import BinarySensorDeviceClass

    # Newer Home Assistant validates with probatio and aliases `voluptuous` to it (2026.10
    # does); older releases use voluptuous itself. Both have the few names used here.
    import voluptuous as vol

__all__ = ["BinarySensorDeviceClass", "link_to_hub", "vol"]


def link_to_hub(
    hass: HomeAssistant,
    device: DeviceInfo,
    hub: tuple[str, str],
    *,
    config_entry_id: str,
) -> DeviceInfo:
    """The device connected via the hub device `hub` (already registered)."""
    find_hub = getattr(dr, "async_get_device_id_by_identifier", None)
    if find_hub is not None:
        # Home Assistant 2026.8 links by device id; `via_device` is deprecated there.
        device["via_device_id"] = find_hub(hass, hub, config_entry_id=config_entry_id)
    else:
        device["via_device"] = hub  # type: ignore[typeddict-unknown-key]
    return device
