"""Finished switchovers and failovers fire Home Assistant events for automations."""

from __future__ import annotations

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.zigbee2mqtt_ha.const import (
    CONF_EVENTS,
    EVENT_FAILOVER,
    EVENT_SWITCHOVER,
)

from .conftest import entity_id, wait_for
from .fake_sidecar import FakeSidecar, operation


async def test_switchover_finished_fires_event(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """A switchover that succeeded: outcome, from, to and the operation id."""
    events = async_capture_events(hass, EVENT_SWITCHOVER)
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "switchover",
            "succeeded",
            op_id="op-42",
            params={"target": "node2"},
            result={"from": "node1", "to": "node2"},
        ),
    )
    await wait_for(lambda: len(events) == 1)
    data = events[0].data
    assert data["outcome"] == "succeeded"
    assert data["succeeded"] is True
    assert data["from"] == "node1"
    assert data["to"] == "node2"
    assert data["operation_id"] == "op-42"
    assert data["config_entry_id"] == init_integration.entry_id
    assert data["error"] is None


async def test_failed_failover_fires_event_with_error(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """A failover that rolled back says so, with the failed step and message."""
    failovers = async_capture_events(hass, EVENT_FAILOVER)
    switchovers = async_capture_events(hass, EVENT_SWITCHOVER)
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "failover",
            "rolled_back",
            op_id="op-43",
            params={"target": "node2"},
            error={"step": "nvram-write", "message": "nvram_write exited 1"},
        ),
    )
    await wait_for(lambda: len(failovers) == 1)
    data = failovers[0].data
    assert data["outcome"] == "rolled_back"
    assert data["succeeded"] is False
    assert data["to"] == "node2"
    assert data["error"] == "nvram_write exited 1"
    assert data["failed_step"] == "nvram-write"
    assert switchovers == []


async def test_other_operations_and_repeats_fire_nothing_more(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Syncs fire no event; an operation.finished seen twice fires once.

    A last switchover is the sentinel: the stream is ordered, so once its event is seen,
    everything pushed before it was handled.
    """
    events = async_capture_events(hass, EVENT_SWITCHOVER)
    await sidecar.push("operation.finished", operation=operation("sync", "succeeded"))
    finished = operation("switchover", "succeeded", op_id="op-44")
    await sidecar.push("operation.finished", operation=finished)
    await sidecar.push("operation.finished", operation=finished)
    await sidecar.push("operation.finished", operation=operation("check", "failed"))
    await sidecar.push(
        "operation.finished",
        operation=operation("switchover", "failed", op_id="op-sentinel"),
    )
    await wait_for(lambda: any(e.data["operation_id"] == "op-sentinel" for e in events))
    assert [e.data["operation_id"] for e in events] == ["op-44", "op-sentinel"]


async def test_options_turn_an_event_off(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """With only failover events chosen, a switchover fires nothing."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry,
        options={CONF_EVENTS: ["failover"]},
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(lambda: sidecar.open_streams == 1)
    switchovers = async_capture_events(hass, EVENT_SWITCHOVER)
    failovers = async_capture_events(hass, EVENT_FAILOVER)
    await sidecar.push(
        "operation.finished", operation=operation("switchover", "succeeded", op_id="a")
    )
    await sidecar.push(
        "operation.finished", operation=operation("failover", "succeeded", op_id="b")
    )
    await wait_for(lambda: len(failovers) == 1)
    assert switchovers == []
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


def event_state(hass: HomeAssistant, key: str) -> State:
    """The state of the event entity with unique id `{instance}_{key}`."""
    found = hass.states.get(entity_id(hass, "event", key))
    assert found is not None
    return found


async def test_event_entities_show_the_last_takeover(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Each takeover's end shows on its event entity: outcome, nodes, error."""
    assert event_state(hass, "switchover_finished").state == STATE_UNKNOWN
    assert event_state(hass, "switchover_finished").attributes["event_types"] == [
        "succeeded",
        "failed",
        "rolled_back",
        "interrupted",
    ]
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "switchover",
            "succeeded",
            op_id="op-50",
            result={"from": "node1", "to": "node2"},
        ),
    )
    await wait_for(
        lambda: event_state(hass, "switchover_finished").state != STATE_UNKNOWN
    )
    switchover = event_state(hass, "switchover_finished")
    assert switchover.attributes["event_type"] == "succeeded"
    assert switchover.attributes["operation_id"] == "op-50"
    assert (switchover.attributes["from"], switchover.attributes["to"]) == (
        "node1",
        "node2",
    )
    assert event_state(hass, "failover_finished").state == STATE_UNKNOWN

    await sidecar.push(
        "operation.finished",
        operation=operation(
            "failover",
            "rolled_back",
            op_id="op-51",
            params={"target": "node3"},
            error={"step": "nvram-write", "message": "nvram_write exited 1"},
        ),
    )
    await wait_for(
        lambda: event_state(hass, "failover_finished").state != STATE_UNKNOWN
    )
    failover = event_state(hass, "failover_finished")
    assert failover.attributes["event_type"] == "rolled_back"
    assert failover.attributes["error"] == "nvram_write exited 1"
    assert failover.attributes["failed_step"] == "nvram-write"
    assert failover.attributes["to"] == "node3"


async def test_event_entities_hear_takeovers_whose_bus_events_are_off(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """The options choose bus events only; the entities show every takeover."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(mock_config_entry, options={CONF_EVENTS: []})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(lambda: sidecar.open_streams == 1)
    bus = async_capture_events(hass, EVENT_SWITCHOVER)
    await sidecar.push(
        "operation.finished",
        operation=operation("switchover", "failed", op_id="op-52"),
    )
    await wait_for(
        lambda: event_state(hass, "switchover_finished").state != STATE_UNKNOWN
    )
    assert event_state(hass, "switchover_finished").attributes["event_type"] == "failed"
    assert bus == []
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


async def test_options_changed_in_the_ui_take_effect(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """The user turns switchover events off in Configure: the entry reloads without them."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_EVENTS: ["failover"]}
    )
    await hass.async_block_till_done()
    await wait_for(lambda: sidecar.open_streams == 1)
    switchovers = async_capture_events(hass, EVENT_SWITCHOVER)
    failovers = async_capture_events(hass, EVENT_FAILOVER)
    await sidecar.push(
        "operation.finished", operation=operation("switchover", "succeeded", op_id="c")
    )
    await sidecar.push(
        "operation.finished", operation=operation("failover", "succeeded", op_id="d")
    )
    await wait_for(lambda: len(failovers) == 1)
    assert switchovers == []
