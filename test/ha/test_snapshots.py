"""Every platform's entities (registry entry and state) and the diagnostics, as snapshots.

A change to what users see (names, ids, device classes, categories, states, attributes) shows
up as a snapshot diff to review; `scripts/test-ha.sh --snapshot-update` writes the new ones.
"""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.zigbee2mqtt_ha import PLATFORMS


@pytest.fixture
def platform() -> Platform:
    """The platform a test loads (all of them unless parametrized)."""
    return Platform.SENSOR


@pytest.fixture
def only_platform(platform: Platform) -> Generator[None]:
    """Load only one platform, as snapshot_platform wants."""
    with patch("custom_components.zigbee2mqtt_ha.PLATFORMS", [platform]):
        yield


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.usefixtures("entity_registry_enabled_by_default", "only_platform")
async def test_platform_entities(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The active/standby/unreachable mix, as each platform shows it."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """The whole download, token redacted (the fake's port changes from run to run)."""
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    assert diagnostics == snapshot(exclude=props("url"))
