"""Diagnostics for the zigbee2mqtt-ha integration, secrets redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant

from .coordinator import Zigbee2mqttHaConfigEntry

# The token, and anything secret-looking the sidecar might one day put in its status.
TO_REDACT = {
    CONF_TOKEN,
    "password",
    "private_key",
    "community",
    "secret",
    "authorization",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry
) -> dict[str, Any]:
    """Everything the integration knows, for a bug report."""
    runtime_data = entry.runtime_data
    coordinator = runtime_data.coordinator
    status = coordinator.data
    return async_redact_data(
        {
            "entry": {"data": dict(entry.data), "options": dict(entry.options)},
            "info": asdict(runtime_data.info),
            "last_update_success": coordinator.last_update_success,
            "status": {
                "cluster_name": status.cluster_name,
                "state": asdict(status.state),
                "bridge": asdict(status.bridge),
                "nodes": {
                    node_id: asdict(node) for node_id, node in status.nodes.items()
                },
                "running_operation": dict(status.running_operation.raw)
                if status.running_operation
                else None,
                "alerts": [asdict(alert) for alert in status.alerts],
            },
        },
        TO_REDACT,
    )
