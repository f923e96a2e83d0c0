"""Setup, push updates over the event stream, and the sidecar going away and coming back."""

from __future__ import annotations

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    CONF_TOKEN,
    CONF_URL,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.const import DOMAIN, FULL_REFRESH_INTERVAL

from .conftest import entity_id, wait_for
from .fake_sidecar import INSTANCE_ID, FakeSidecar, node, operation


def current(hass: HomeAssistant, platform: str, suffix: str) -> str:
    """The state now of the entity with unique id `{instance}_{suffix}`."""
    found = hass.states.get(entity_id(hass, platform, suffix))
    return found.state if found else "missing"


async def test_setup_waits_for_an_unreachable_sidecar(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """A sidecar that is down at start-up makes Home Assistant retry the entry."""
    await sidecar.stop()
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_setup_with_a_rejected_token_asks_for_a_new_one(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """A token the sidecar rejects starts the reauth flow."""
    sidecar.token = "rotated"
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]


async def test_events_update_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Node, state, bridge and operation events show up without a refresh."""
    status_calls = len(sidecar.calls("GET", "/api/v1/status"))

    await sidecar.push(
        "node.changed",
        node=node("node3", "standby", "standby-ready"),
        previous="unreachable",
    )
    await wait_for(
        lambda: current(hass, "binary_sensor", "node3_reachable") == STATE_ON
    )
    assert current(hass, "binary_sensor", "node3_standby_ready") == STATE_ON

    await sidecar.push(
        "state.changed",
        state={
            "version": 1,
            "active": "node2",
            "automation": {"automatic_failover": False, "maintenance": True},
            "fenced": {},
        },
    )
    await wait_for(lambda: current(hass, "sensor", "active_node") == "node2")
    assert current(hass, "switch", "automatic_failover") == STATE_OFF
    assert current(hass, "switch", "maintenance") == STATE_ON
    # state.changed carries the whole persisted state: no last sync any more.
    assert current(hass, "sensor", "last_sync") == "unknown"

    await sidecar.push(
        "bridge.changed",
        bridge={"broker_connected": True, "state": "offline", "publishing_node": None},
    )
    await wait_for(lambda: current(hass, "binary_sensor", "bridge_online") == STATE_OFF)

    await sidecar.push("operation.started", operation=operation("sync", op_id="op-9"))
    await wait_for(lambda: current(hass, "sensor", "current_operation") == "sync")
    await sidecar.push(
        "operation.step",
        operation_id="op-9",
        kind="sync",
        step={"name": "rsync node2", "status": "running", "started_at": "x"},
    )
    await wait_for(
        lambda: (
            (s := hass.states.get(entity_id(hass, "sensor", "current_operation")))
            is not None
            and s.attributes.get("step") == "rsync node2"
        )
    )
    # Everything so far came over the stream, not from polling.
    assert len(sidecar.calls("GET", "/api/v1/status")) == status_calls


async def test_resync_event_fetches_the_status(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """When the sidecar says events were lost, the integration reads the whole status."""
    sidecar.status["active"] = "node2"
    await sidecar.push("resync")
    await wait_for(lambda: current(hass, "sensor", "active_node") == "node2")


async def test_unavailable_while_the_sidecar_is_down_and_back_after(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """The sidecar stops: entities go unavailable; it returns: they recover by themselves."""
    await sidecar.stop()
    await wait_for(lambda: current(hass, "sensor", "active_node") == STATE_UNAVAILABLE)
    assert current(hass, "binary_sensor", "node1_reachable") == STATE_UNAVAILABLE
    assert current(hass, "button", "switchover") == STATE_UNAVAILABLE

    sidecar.status["active"] = "node2"  # it changed while we could not see it
    await sidecar.start()
    await wait_for(lambda: current(hass, "sensor", "active_node") == "node2", within=40)
    assert current(hass, "binary_sensor", "node1_reachable") == STATE_ON
    await wait_for(lambda: sidecar.open_streams == 1)


async def test_rejected_token_while_running_starts_reauth(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """The token is rotated on the sidecar while Home Assistant runs."""
    sidecar.token = "rotated"
    await sidecar.push("resync")
    await wait_for(
        lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    )
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flows[0]["context"]["source"] == SOURCE_REAUTH


PROXY_401 = "<html><head><title>401 Authorization Required</title></head></html>"


async def test_a_proxys_html_401_at_setup_asks_for_a_new_token(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """A reverse proxy in front of the sidecar refuses the token with an HTML page."""
    sidecar.answer_next_raw("GET", "/api/v1/info", 401, PROXY_401)
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]


async def test_an_html_error_page_is_not_taken_for_the_sidecar(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """A proxy's 502 page at setup: Home Assistant retries, saying what answered."""
    sidecar.answer_next_raw("GET", "/api/v1/info", 502, "<html>Bad Gateway</html>")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.error_reason_translation_key == "unknown_error"
    assert mock_config_entry.reason is not None
    assert "HTTP 502, not JSON" in mock_config_entry.reason


async def test_an_entry_from_before_drops_its_polling_interval(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """An entry saved with the old refresh-interval option loses it; the events stay."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="home",
        unique_id=INSTANCE_ID,
        version=1,
        minor_version=1,
        data={CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token},
        options={"events": ["failover"], "refresh_interval": 10},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == 2
    assert entry.options == {"events": ["failover"]}
    assert entry.runtime_data.coordinator.update_interval == FULL_REFRESH_INTERVAL
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_status_it_cannot_read_makes_entities_unavailable_until_fixed(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """The sidecar answers /status with something else: unavailable, then back."""
    good = sidecar.status
    sidecar.status = {"nodes": "not a list"}
    await sidecar.push("resync")
    await wait_for(lambda: current(hass, "sensor", "active_node") == STATE_UNAVAILABLE)
    assert not init_integration.runtime_data.coordinator.last_update_success
    sidecar.status = good
    await init_integration.runtime_data.coordinator.async_refresh()
    assert current(hass, "sensor", "active_node") == "node1"


async def test_unloading_stops_everything(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """Unloaded: NOT_LOADED, the stream closed, entities unavailable, actions refused."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(lambda: sidecar.open_streams == 1)
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.NOT_LOADED
    await wait_for(lambda: sidecar.open_streams == 0)
    assert current(hass, "sensor", "active_node") == STATE_UNAVAILABLE
    requests = len(sidecar.requests)
    await hass.async_block_till_done()
    assert len(sidecar.requests) == requests


async def test_protected_follows_the_standbys(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Protected goes off when the last ready standby stops being ready, and on again."""
    assert current(hass, "binary_sensor", "protected") == STATE_ON
    await sidecar.push(
        "node.changed",
        node=node("node2", "standby", "standby-not-ready"),
        previous="standby-ready",
    )
    await wait_for(lambda: current(hass, "binary_sensor", "protected") == STATE_OFF)
    await sidecar.push(
        "node.changed",
        node=node("node2", "standby", "standby-ready"),
        previous="standby-not-ready",
    )
    await wait_for(lambda: current(hass, "binary_sensor", "protected") == STATE_ON)


async def test_last_coordinator_snapshot_of_a_backup_cluster(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """A z2m-backup cluster has no NVRAM snapshot: the driver-neutral one is shown, and kept."""
    del sidecar.status["last_nvram_snapshot"]
    sidecar.status["last_coordinator_snapshot"] = {
        "at": "2026-05-01T09:55:00.000Z",
        "id": "data-20260501T095500000Z-1a2b3c4d",
        "node": "node1",
        "kind": "backup",
    }
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(lambda: sidecar.open_streams == 1)
    snapshot = entity_id(hass, "sensor", "last_coordinator_snapshot")
    await wait_for(
        lambda: current(hass, "sensor", "last_coordinator_snapshot") != "unknown"
    )
    assert (
        current(hass, "sensor", "last_coordinator_snapshot")
        == "2026-05-01T09:55:00+00:00"
    )
    found = hass.states.get(snapshot)
    assert found is not None
    assert found.attributes["node"] == "node1"

    # A state.changed event carries the persisted state only: the snapshot stays what it was.
    await sidecar.push(
        "state.changed",
        state={
            "version": 1,
            "active": "node2",
            "automation": {"automatic_failover": True, "maintenance": False},
            "fenced": {},
        },
    )
    await wait_for(lambda: current(hass, "sensor", "active_node") == "node2")
    assert (
        current(hass, "sensor", "last_coordinator_snapshot")
        == "2026-05-01T09:55:00+00:00"
    )
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
