"""Actions: zigbee2mqtt_ha.switchover, .sync and .check."""

from __future__ import annotations

from typing import Any

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry

from .api import Operation
from .compat import vol
from .const import DOMAIN
from .coordinator import Zigbee2mqttHaConfigEntry

SERVICE_SWITCHOVER = "switchover"
SERVICE_SYNC = "sync"
SERVICE_CHECK = "check"

ATTR_TARGET = "target"
ATTR_REASON = "reason"

# Without a config entry id the action goes to the only loaded sidecar, as most homes have one.
BASE_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
REASON = vol.All(cv.string, vol.Length(max=500))
SWITCHOVER_SCHEMA = BASE_SCHEMA.extend(
    {vol.Optional(ATTR_TARGET): cv.string, vol.Optional(ATTR_REASON): REASON}
)
SYNC_SCHEMA = BASE_SCHEMA.extend({vol.Optional(ATTR_REASON): REASON})


def _entry(hass: HomeAssistant, call: ServiceCall) -> Zigbee2mqttHaConfigEntry:
    """The loaded entry the call names, or the only one when it names none."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    if entry_id is None:
        # Home Assistant's own fallback for a missing id is newer than 2026.6.
        entries = hass.config_entries.async_entries(
            DOMAIN, include_ignore=False, include_disabled=False
        )
        if len(entries) != 1:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="which_sidecar" if entries else "no_sidecar",
            )
        entry_id = entries[0].entry_id
    entry: Zigbee2mqttHaConfigEntry = async_get_config_entry(hass, DOMAIN, entry_id)
    return entry


def _response(operation: Operation) -> dict[str, Any]:
    """The operation as the sidecar described it: id, kind, status, steps, params, ..."""
    return dict(operation.raw)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions."""

    async def _switchover(call: ServiceCall) -> ServiceResponse:
        entry = _entry(hass, call)
        target: str | None = call.data.get(ATTR_TARGET)
        nodes = list(entry.runtime_data.coordinator.data.nodes)
        if target is not None and target not in nodes:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_node",
                translation_placeholders={"node": target, "nodes": ", ".join(nodes)},
            )
        operation = await entry.runtime_data.coordinator.async_switchover(
            target=target, reason=call.data.get(ATTR_REASON)
        )
        return _response(operation) if call.return_response else None

    async def _sync(call: ServiceCall) -> ServiceResponse:
        entry = _entry(hass, call)
        operation = await entry.runtime_data.coordinator.async_sync(
            reason=call.data.get(ATTR_REASON)
        )
        return _response(operation) if call.return_response else None

    async def _check(call: ServiceCall) -> ServiceResponse:
        entry = _entry(hass, call)
        operation = await entry.runtime_data.coordinator.async_check()
        return _response(operation) if call.return_response else None

    for name, handler, schema in (
        (SERVICE_SWITCHOVER, _switchover, SWITCHOVER_SCHEMA),
        (SERVICE_SYNC, _sync, SYNC_SCHEMA),
        (SERVICE_CHECK, _check, BASE_SCHEMA),
    ):
        hass.services.async_register(
            DOMAIN,
            name,
            handler,
            schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )
