"""The event stream breaking in each way it can, and how the integration gets back on it."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha import api
from custom_components.zigbee2mqtt_ha.const import DOMAIN
from custom_components.zigbee2mqtt_ha.event_stream import EventStreamListener

from .conftest import entity_id, wait_for
from .fake_sidecar import FakeSidecar


@pytest.fixture
def pauses() -> Generator[list[float]]:
    """The listener's pauses before each reconnection, in seconds; each lasts 10 ms here."""
    recorded: list[float] = []
    real_pause = EventStreamListener._async_pause

    async def pause(listener: EventStreamListener, delay: timedelta) -> None:
        recorded.append(delay.total_seconds())
        await real_pause(listener, timedelta(milliseconds=10))

    with patch.object(EventStreamListener, "_async_pause", pause):
        yield recorded


def active_node(hass: HomeAssistant) -> str:
    """The active-node sensor's state."""
    state = hass.states.get(entity_id(hass, "sensor", "active_node"))
    assert state is not None
    return state.state


async def test_reconnects_back_off_and_start_over_once_connected(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    pauses: list[float],
) -> None:
    """Down for a while: 1, 2, 4 … 30 s apart at most; back: the next break starts at 1 s."""
    await sidecar.stop()
    await wait_for(lambda: len(pauses) >= 8)
    assert pauses[:8] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert active_node(hass) == STATE_UNAVAILABLE

    await sidecar.start()
    await wait_for(lambda: sidecar.open_streams == 1)
    await wait_for(lambda: active_node(hass) == "node1")
    pauses.clear()
    await sidecar.stop()
    await wait_for(lambda: len(pauses) >= 1)
    assert pauses[0] == 1


@pytest.mark.parametrize(
    ("status", "code"), [(401, "unauthorized"), (503, "unavailable")]
)
async def test_a_refused_stream_is_tried_again(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    pauses: list[float],
    status: int,
    code: str,
) -> None:
    """The stream is refused once (401 or 503) while the rest answers: it reconnects."""
    sidecar.fail_next("GET", "/api/v1/events", status, code, "refused")
    before = len(sidecar.calls("GET", "/api/v1/events"))
    await sidecar.stop()  # the open stream ends; the next attempt is refused
    await sidecar.start()
    await wait_for(lambda: sidecar.open_streams == 1)
    attempts = sidecar.calls("GET", "/api/v1/events")[before:]
    assert len(attempts) >= 2
    await wait_for(lambda: active_node(hass) == "node1")
    # Only the stream was refused: no re-authentication for a 503, nor for a lone 401
    # that the status call does not confirm.
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_a_rotated_token_cuts_the_stream_and_asks_for_the_new_one(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    pauses: list[float],
) -> None:
    """The sidecar restarts with a new token: the stream is refused, reauth starts."""
    sidecar.token = "rotated"
    await sidecar.stop()
    await sidecar.start()
    await wait_for(
        lambda: bool(hass.config_entries.flow.async_progress_by_handler(DOMAIN))
    )
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]


async def test_a_silent_stream_counts_as_broken(
    hass: HomeAssistant,
    sidecar: FakeSidecar,
    mock_config_entry: MockConfigEntry,
    pauses: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No byte for longer than the limit (45 s; 1 s here): a new stream, entities stay."""
    monkeypatch.setattr(api, "EVENT_STREAM_READ_TIMEOUT", 1.0)
    sidecar.silent = True
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await wait_for(lambda: sidecar.stream_connections >= 2)
    # The status still answers: the entities never went unavailable.
    assert active_node(hass) == "node1"
    assert pauses[0] == 1
    sidecar.silent = False
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
