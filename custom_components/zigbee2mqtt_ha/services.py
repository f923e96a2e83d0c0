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
import probatio

from .api import Operation
from .const import DOMAIN
from .coordinator import Zigbee2mqttHaConfigEntry

SERVICE_SWITCHOVER = "switchover"
SERVICE_SYNC = "sync"
SERVICE_CHECK = "check"

ATTR_TARGET = "target"
ATTR_REASON = "reason"

# Without a config entry id the action goes to the only loaded sidecar, as most homes have one.
BASE_SCHEMA = probatio.Schema({probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
REASON = probatio.All(cv.string, probatio.Length(max=500))
SWITCHOVER_SCHEMA = BASE_SCHEMA.extend(
    {probatio.Optional(ATTR_TARGET): cv.string, probatio.Optional(ATTR_REASON): REASON}
)
SYNC_SCHEMA = BASE_SCHEMA.extend({probatio.Optional(ATTR_REASON): REASON})


def _entry(hass: HomeAssistant, call: ServiceCall) -> Zigbee2mqttHaConfigEntry:
    entry: Zigbee2mqttHaConfigEntry = async_get_config_entry(
        hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
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
        nodes = entry.runtime_data.info.nodes
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
