"""The integration against the REAL sidecar process (nodes unreachable: no SSH behind them).

A user adds the sidecar in the UI, sees its devices and entities, flips automatic failover,
presses a button, sees a change made elsewhere arrive over the event stream, and lives through
a sidecar restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    CONF_TOKEN,
    CONF_URL,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .conftest import wait_for
from .live_sidecar import LiveSidecar


@pytest.fixture
async def live_sidecar(
    socket_enabled: None, tmp_path: Path
) -> AsyncGenerator[LiveSidecar]:
    """The real sidecar, built from this repository, on a free loopback port."""
    sidecar = LiveSidecar(tmp_path)
    await sidecar.start()
    try:
        yield sidecar
    finally:
        await sidecar.stop()


def as_binary(value: bool | None) -> str:
    """The binary sensor state for the API's true / false / null."""
    return {True: STATE_ON, False: STATE_OFF, None: "unknown"}[value]


def node_entities(hass: HomeAssistant, instance: str, node: str) -> tuple[str, ...]:
    """Reachable, zigbee2mqtt running, standby ready and health of a node's entities."""
    return tuple(
        state_of(hass, platform, f"{instance}_{node}_{key}")
        for platform, key in (
            ("binary_sensor", "reachable"),
            ("binary_sensor", "zigbee2mqtt_running"),
            ("binary_sensor", "standby_ready"),
            ("sensor", "health"),
        )
    )


def expected_from(node: dict[str, Any]) -> tuple[str, ...]:
    """What a node's entities should show for the sidecar's NodeStatus."""
    health = node["health"]
    return (
        as_binary(node["reachable"]),
        as_binary(node["zigbee2mqtt_running"]),
        "unknown" if health == "unknown" else as_binary(health == "standby-ready"),
        health.replace("-", "_"),
    )


def state_of(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    """The state now of the entity registered with `unique_id`."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, f"no {platform} entity {unique_id}"
    state = hass.states.get(found)
    return state.state if state is not None else "missing"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_real_sidecar_end_to_end(
    hass: HomeAssistant, live_sidecar: LiveSidecar
) -> None:
    """Config flow, entities, a switch and a button reaching the API, SSE, restart."""
    info = await live_sidecar.api("GET", "/info")
    instance = info["instance_id"]

    # The user adds the sidecar with its URL and the token from its state dir.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: live_sidecar.url, CONF_TOKEN: live_sidecar.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry = result["result"]
    assert entry.unique_id == instance
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    # One hub device and one device per configured node, with their entities.
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert sorted(d.name or "" for d in devices) == [
        "zigbee2mqtt node1",
        "zigbee2mqtt node2",
        "zigbee2mqtt-ha",
    ]
    # Nobody is active yet. The nodes' entities say what the sidecar says of them (its
    # monitoring decides; the integration must only carry it faithfully, events included).
    assert state_of(hass, "sensor", f"{instance}_active_node") == "unknown"

    async def nodes_match() -> bool:
        status = await live_sidecar.api("GET", "/status")
        assert [n["id"] for n in status["nodes"]] == ["node1", "node2"]
        return all(
            node_entities(hass, instance, n["id"]) == expected_from(n)
            for n in status["nodes"]
        )

    for _ in range(100):
        if await nodes_match():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the node entities never matched the sidecar's /status")

    switch = f"{instance}_automatic_failover"
    assert state_of(hass, "switch", switch) == STATE_ON
    switch_entity = er.async_get(hass).async_get_entity_id("switch", DOMAIN, switch)

    # Turning the switch off reaches the sidecar: its own status says so.
    await hass.services.async_call(
        Platform.SWITCH, "turn_off", {ATTR_ENTITY_ID: switch_entity}, blocking=True
    )
    status = await live_sidecar.api("GET", "/status")
    assert status["automation"]["automatic_failover"] is False
    assert state_of(hass, "switch", switch) == STATE_OFF

    # Someone turns it back on with the CLI/API: the change arrives over the event stream
    # (the periodic full refresh is a minute away).
    await live_sidecar.api("PUT", "/automation", {"automatic_failover": True})
    await wait_for(lambda: state_of(hass, "switch", switch) == STATE_ON)

    # Pressing "Check nodes" reaches the API: the sidecar records a check operation started
    # by Home Assistant.
    check = er.async_get(hass).async_get_entity_id(
        "button", DOMAIN, f"{instance}_check"
    )
    await hass.services.async_call(
        Platform.BUTTON, "press", {ATTR_ENTITY_ID: check}, blocking=True
    )
    history = await live_sidecar.api("GET", "/operations?limit=5")
    assert any(
        op["kind"] == "check" and op["trigger"] == "home-assistant"
        for op in history["operations"]
    )

    # The sidecar stops: everything goes unavailable.
    await live_sidecar.stop()
    await wait_for(
        lambda: state_of(hass, "switch", switch) == STATE_UNAVAILABLE, within=30
    )
    assert state_of(hass, "sensor", f"{instance}_active_node") == STATE_UNAVAILABLE

    # It comes back (same state dir, same token): entities recover by themselves.
    await live_sidecar.start()
    await wait_for(lambda: state_of(hass, "switch", switch) == STATE_ON, within=60)
    assert state_of(hass, "sensor", f"{instance}_active_node") == "unknown"

    # And the stream is live again: another outside change shows up.
    await live_sidecar.api("PUT", "/automation", {"maintenance": True})
    await wait_for(
        lambda: state_of(hass, "switch", f"{instance}_maintenance") == STATE_ON
    )

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
