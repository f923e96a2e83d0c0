"""Nodes added to or removed from the sidecar's configuration: devices follow, no reload."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .conftest import device, entity_id, wait_for
from .fake_sidecar import INSTANCE_ID, FakeSidecar, node


def node_entity_ids(
    hass: HomeAssistant, entry: MockConfigEntry, node_id: str
) -> set[str]:
    """The registered entities of a node."""
    return {
        e.entity_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.unique_id.startswith(f"{INSTANCE_ID}_{node_id}_")
    }


async def test_a_node_added_to_the_sidecar_gets_its_device_without_a_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """node4 joins the sidecar's configuration: its device and entities appear at once."""
    sidecar.info["nodes"] = ["node1", "node2", "node3", "node4"]
    sidecar.status["nodes"].append(node("node4", "standby", "standby-not-ready"))
    await sidecar.push("resync")
    await wait_for(
        lambda: hass.states.get("binary_sensor.zigbee2mqtt_node4_reachable") is not None
    )
    node4 = device(hass, init_integration, f"{INSTANCE_ID}_node4")
    assert node4 is not None
    assert node4.name == "zigbee2mqtt node4"
    assert hass.states.get("sensor.zigbee2mqtt_node4_health") is not None
    assert hass.states.get("button.zigbee2mqtt_node4_make_active") is not None
    # The active-node sensor can now show it.
    active = hass.states.get(entity_id(hass, "sensor", "active_node"))
    assert active is not None
    assert active.attributes["options"] == ["node1", "node2", "node3", "node4"]
    # Not a reload: the same stream stayed connected, /info was read once.
    assert sidecar.stream_connections == 1
    assert len(sidecar.calls("GET", "/api/v1/info")) == 1


async def test_a_node_removed_from_the_sidecar_loses_its_device_and_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """node3 leaves the configuration: its device, entities and states go."""
    gone = node_entity_ids(hass, init_integration, "node3")
    assert len(gone) == 5
    sidecar.status["nodes"] = [n for n in sidecar.status["nodes"] if n["id"] != "node3"]
    await sidecar.push("resync")
    await wait_for(
        lambda: device(hass, init_integration, f"{INSTANCE_ID}_node3") is None
    )
    await hass.async_block_till_done()
    assert node_entity_ids(hass, init_integration, "node3") == set()
    assert [e for e in gone if hass.states.get(e) is not None] == []
    assert device(hass, init_integration, f"{INSTANCE_ID}_node2") is not None
    assert device(hass, init_integration, INSTANCE_ID) is not None
    assert sidecar.stream_connections == 1

    # It comes back, the sidecar restarted with it in its configuration: new again.
    sidecar.status["nodes"].append(node("node3", "standby", "standby-ready"))
    await sidecar.stop()
    await sidecar.start()
    await wait_for(
        lambda: (
            hass.states.get("binary_sensor.zigbee2mqtt_node3_standby_ready") is not None
        )
    )
    assert node_entity_ids(hass, init_integration, "node3") == gone
    assert device(hass, init_integration, f"{INSTANCE_ID}_node3") is not None


async def test_a_node_removed_while_home_assistant_was_down(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """The registry still holds node9 from before: it goes at setup, the hub and nodes stay."""
    mock_config_entry.add_to_hass(hass)
    registry = dr.async_get(hass)
    registry.async_get_or_create(
        config_entry_id=mock_config_entry.entry_id,
        identifiers={(DOMAIN, f"{INSTANCE_ID}_node9")},
        name="zigbee2mqtt node9",
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert device(hass, mock_config_entry, f"{INSTANCE_ID}_node9") is None
    devices = dr.async_entries_for_config_entry(registry, mock_config_entry.entry_id)
    assert sorted(d.name or "" for d in devices) == [
        "zigbee2mqtt node1",
        "zigbee2mqtt node2",
        "zigbee2mqtt node3",
        "zigbee2mqtt-ha",
    ]
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


async def test_an_unreachable_sidecar_removes_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """While the sidecar is down nothing is known of its nodes: every device stays."""
    await sidecar.stop()
    await wait_for(
        lambda: not init_integration.runtime_data.coordinator.last_update_success
    )
    devices = dr.async_entries_for_config_entry(
        dr.async_get(hass), init_integration.entry_id
    )
    assert len(devices) == 4


async def test_the_user_may_delete_only_a_node_the_sidecar_no_longer_has(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Settings → device → Delete: refused for the hub and current nodes, allowed for a stale one."""
    assert await async_setup_component(hass, "config", {})
    registry = dr.async_get(hass)
    # A device of a node the sidecar does not have, left over with the sidecar down.
    await sidecar.stop()
    await wait_for(
        lambda: not init_integration.runtime_data.coordinator.last_update_success
    )
    stale = registry.async_get_or_create(
        config_entry_id=init_integration.entry_id,
        identifiers={(DOMAIN, f"{INSTANCE_ID}_node9")},
        name="zigbee2mqtt node9",
    )
    client = await hass_ws_client(hass)

    async def delete(device_id: str) -> bool:
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": init_integration.entry_id,
                "device_id": device_id,
            }
        )
        response = await client.receive_json()
        return bool(response["success"])

    hub = device(hass, init_integration, INSTANCE_ID)
    node2 = device(hass, init_integration, f"{INSTANCE_ID}_node2")
    assert hub is not None
    assert node2 is not None
    assert await delete(hub.id) is False
    assert await delete(node2.id) is False
    assert await delete(stale.id) is True
    assert registry.async_get(stale.id) is None
    assert registry.async_get(node2.id) is not None
