"""Diagnostics hold everything useful for a bug report, and not the token."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from .fake_sidecar import INSTANCE_ID, TOKEN


async def test_diagnostics_redact_the_token(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
) -> None:
    """The entry's token is redacted; the cluster's state is all there."""
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    assert TOKEN not in json.dumps(diagnostics, default=str)
    assert diagnostics["entry"]["data"]["token"] == "**REDACTED**"
    assert diagnostics["entry"]["data"]["url"].startswith("http://127.0.0.1:")
    assert diagnostics["info"]["instance_id"] == INSTANCE_ID
    assert diagnostics["status"]["state"]["active"] == "node1"
    assert diagnostics["status"]["nodes"]["node3"]["health"] == "unreachable"
    assert diagnostics["last_update_success"] is True
