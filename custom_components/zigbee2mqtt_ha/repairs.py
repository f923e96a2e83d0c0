"""Repairs platform: the split-brain issue's fix flow stops zigbee2mqtt on the stray node."""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import (
    ConfirmRepairFlow,
    RepairsFlow,
    RepairsFlowResult,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .compat import vol
from .coordinator import Zigbee2mqttHaConfigEntry


class SplitBrainRepairFlow(RepairsFlow):
    """Confirm, then ask the sidecar to stop the node that should be a standby."""

    def __init__(self, entry_id: str, node: str, message: str) -> None:
        """Remember which sidecar and which node."""
        self._entry_id = entry_id
        self._node = node
        self._message = message

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """The fix flow opens on the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Say what will happen; on submit, start the sidecar's fence of the node."""
        entry: Zigbee2mqttHaConfigEntry | None = (
            self.hass.config_entries.async_get_entry(self._entry_id)
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        errors: dict[str, str] = {}
        error = ""
        if user_input is not None:
            try:
                await entry.runtime_data.coordinator.async_stop_node(
                    self._node,
                    reason="split brain: stopped from Home Assistant's repairs",
                )
            except HomeAssistantError as err:
                errors["base"] = "stop_refused"
                error = str(err)
            else:
                # The issue goes now; should the sidecar still see a split brain (the stop
                # failed after all), its alert brings the issue back.
                return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders={
                "title": entry.title,
                "node": self._node,
                "message": self._message,
                "error": error,
            },
            errors=errors,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow of one of the integration's fixable issues (issues.py says which)."""
    if data is not None and data.get("kind") == "split_brain":
        return SplitBrainRepairFlow(
            str(data["entry_id"]), str(data["node"]), str(data.get("message") or "")
        )
    return ConfirmRepairFlow()
