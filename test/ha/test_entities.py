"""Entities for a cluster with an active node, a ready standby and an unreachable node."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.const import DOMAIN
from custom_components.zigbee2mqtt_ha.devices import node_device_info

from .conftest import device, entity_id
from .fake_sidecar import INSTANCE_ID, FakeSidecar


def state(hass: HomeAssistant, platform: str, suffix: str) -> str:
    """The state of the entity with unique id `{instance}_{suffix}`."""
    found = hass.states.get(entity_id(hass, platform, suffix))
    assert found is not None
    return found.state


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_hub_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The hub shows the active node, the bridge, the automation and the history."""
    active = hass.states.get("sensor.zigbee2mqtt_ha_active_node")
    assert active is not None
    assert active.state == "node1"
    assert active.attributes["options"] == ["node1", "node2", "node3"]
    assert state(hass, "sensor", "current_operation") == "idle"
    assert state(hass, "sensor", "last_sync") == "2026-05-01T09:55:00+00:00"
    switchover = hass.states.get(entity_id(hass, "sensor", "last_switchover"))
    assert switchover is not None
    assert switchover.state == "2026-04-28T03:00:00+00:00"
    assert switchover.attributes["from"] == "node2"
    assert switchover.attributes["to"] == "node1"
    assert (
        state(hass, "sensor", "last_coordinator_snapshot")
        == "2026-04-28T02:59:30+00:00"
    )
    assert state(hass, "binary_sensor", "bridge_online") == STATE_ON
    # node2 is a ready standby: a failover could happen now.
    assert state(hass, "binary_sensor", "protected") == STATE_ON
    assert state(hass, "binary_sensor", "broker_connected") == STATE_ON
    assert state(hass, "switch", "automatic_failover") == STATE_ON
    assert state(hass, "switch", "maintenance") == STATE_OFF


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_node_entities_for_the_mix(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Active, ready standby and unreachable node each read as such."""
    expected = {
        # node: (reachable, zigbee2mqtt running, standby ready, health)
        "node1": (STATE_ON, STATE_ON, STATE_OFF, "active_healthy"),
        "node2": (STATE_ON, STATE_OFF, STATE_ON, "standby_ready"),
        "node3": (STATE_OFF, STATE_UNKNOWN, STATE_OFF, "unreachable"),
    }
    for node, (reachable, running, ready, health) in expected.items():
        assert state(hass, "binary_sensor", f"{node}_reachable") == reachable, node
        assert state(hass, "binary_sensor", f"{node}_zigbee2mqtt_running") == running, (
            node
        )
        assert state(hass, "binary_sensor", f"{node}_standby_ready") == ready, node
        assert state(hass, "sensor", f"{node}_health") == health, node
    health3 = hass.states.get(entity_id(hass, "sensor", "node3_health"))
    assert health3 is not None
    assert health3.attributes["reason"] == "ssh: connect ECONNREFUSED"
    # Entity ids read like the devices: the hub and "zigbee2mqtt <node>".
    assert hass.states.get("binary_sensor.zigbee2mqtt_node2_standby_ready") is not None
    assert hass.states.get("button.zigbee2mqtt_node2_make_active") is not None


async def test_devices_and_registry(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """One hub device, one device per node under it; ids and categories as documented."""
    hub = device(hass, init_integration, INSTANCE_ID)
    assert hub is not None
    assert hub.sw_version == "0.1.0"
    for node in ("node1", "node2", "node3"):
        node_device = device(hass, init_integration, f"{INSTANCE_ID}_{node}")
        assert node_device is not None
        assert node_device.via_device_id == hub.id
        assert node_device.name == f"zigbee2mqtt {node}"

    entries = er.async_entries_for_config_entry(
        entity_registry, init_integration.entry_id
    )
    unique_ids = {e.unique_id.removeprefix(f"{INSTANCE_ID}_") for e in entries}
    assert unique_ids == {
        "active_node",
        "current_operation",
        "last_sync",
        "last_switchover",
        "last_coordinator_snapshot",
        "protected",
        "bridge_online",
        "broker_connected",
        "automatic_failover",
        "maintenance",
        "switchover",
        "sync",
        "check",
        "switchover_finished",
        "failover_finished",
        *(
            f"{node}_{key}"
            for node in ("node1", "node2", "node3")
            for key in (
                "reachable",
                "zigbee2mqtt_running",
                "standby_ready",
                "health",
                "make_active",
            )
        ),
    }
    categories = {
        e.unique_id.removeprefix(f"{INSTANCE_ID}_"): e.entity_category for e in entries
    }
    assert categories["automatic_failover"] is EntityCategory.CONFIG
    assert categories["check"] is EntityCategory.DIAGNOSTIC
    assert categories["node1_health"] is EntityCategory.DIAGNOSTIC
    assert categories["switchover"] is None
    assert categories["node1_zigbee2mqtt_running"] is EntityCategory.DIAGNOSTIC
    assert all(e.translation_key for e in entries)


async def test_niche_diagnostics_are_disabled_by_default(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The broker connection and each node's zigbee2mqtt process: registered, not shown.

    The bridge-online and health entities already say what matters; these help only when
    digging, and the user can enable them.
    """
    disabled = {
        e.unique_id.removeprefix(f"{INSTANCE_ID}_")
        for e in er.async_entries_for_config_entry(
            entity_registry, init_integration.entry_id
        )
        if e.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == {
        "broker_connected",
        *(f"node{n}_zigbee2mqtt_running" for n in (1, 2, 3)),
    }
    assert hass.states.get(entity_id(hass, "binary_sensor", "broker_connected")) is None
    assert hass.states.get(entity_id(hass, "binary_sensor", "node1_reachable"))


async def test_node_device_names_are_translated(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A node device's name comes from the translations, with the node id filled in."""
    strings = json.loads(
        (
            Path(__file__).parents[2]
            / "custom_components"
            / DOMAIN
            / "translations"
            / "en.json"
        ).read_text()
    )
    template = strings["device"]["node"]["name"]
    assert "{node_id}" in template
    node_device = device(hass, init_integration, f"{INSTANCE_ID}_node2")
    assert node_device is not None
    assert node_device.name == template.replace("{node_id}", "node2")
    info = node_device_info(hass, init_integration, "node2")
    assert info.get("translation_key") == "node"
    assert "name" not in info


async def test_unique_ids_survive_a_restart(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    entity_registry: er.EntityRegistry,
) -> None:
    """Reloading the entry keeps every entity id and unique id."""
    before = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(
            entity_registry, init_integration.entry_id
        )
    }
    assert await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    after = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(
            entity_registry, init_integration.entry_id
        )
    }
    assert after == before
    assert state(hass, "sensor", "active_node") == "node1"
