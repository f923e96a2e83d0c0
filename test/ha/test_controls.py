"""Buttons, switches and actions send the right API calls and report the sidecar's errors."""

from __future__ import annotations

from typing import Any

from homeassistant.const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.compat import vol
from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .conftest import entity_id
from .fake_sidecar import FakeSidecar

REASON = "Home Assistant button"


async def press(hass: HomeAssistant, suffix: str) -> None:
    """Press the button with unique id `{instance}_{suffix}`."""
    await hass.services.async_call(
        Platform.BUTTON,
        "press",
        {ATTR_ENTITY_ID: entity_id(hass, "button", suffix)},
        blocking=True,
    )


@pytest.mark.parametrize(
    ("button", "path", "body"),
    [
        ("switchover", "/api/v1/switchover", {"reason": REASON}),
        (
            "node2_make_active",
            "/api/v1/switchover",
            {"target": "node2", "reason": REASON},
        ),
        ("sync", "/api/v1/sync", {"reason": REASON}),
        ("check", "/api/v1/check", {}),
    ],
)
async def test_buttons_call_the_api(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    button: str,
    path: str,
    body: dict[str, Any],
) -> None:
    """Each button posts to its endpoint with the sidecar's token."""
    await press(hass, button)
    calls = sidecar.calls("POST", path)
    assert len(calls) == 1
    assert calls[0].body == body
    assert calls[0].headers["Authorization"] == f"Bearer {sidecar.token}"


async def test_started_switchover_shows_at_once(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The current operation shows the switchover before its first event arrives."""
    await press(hass, "node2_make_active")
    current = hass.states.get(entity_id(hass, "sensor", "current_operation"))
    assert current is not None
    assert current.state == "switchover"
    assert current.attributes["operation_id"] == "op-1"


@pytest.mark.parametrize(
    ("status", "code", "details", "translation_key", "text"),
    [
        (
            409,
            "operation_running",
            {"operation_id": "op-7"},
            "operation_running",
            "op-7",
        ),
        (422, "precondition_failed", {}, "precondition_failed", "node2 is active"),
        (
            503,
            "node_unreachable",
            {"node": "node2"},
            "node_unreachable",
            "node2 is active",
        ),
        (501, "not_implemented", {}, "not_implemented", "node2 is active"),
        (
            507,
            "storage_unavailable",
            {"problem": "ENOSPC"},
            "storage_unavailable",
            "cannot write to its state directory",
        ),
        # A 507 whatever its code (a newer sidecar's): still the storage message.
        (507, "state_dir_read_only", {}, "storage_unavailable", "node2 is active"),
        (400, "bad_request", {}, "api_error", "bad_request"),
    ],
)
async def test_button_reports_the_sidecars_refusal(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    status: int,
    code: str,
    details: dict[str, Any],
    translation_key: str,
    text: str,
) -> None:
    """A refusal becomes a translated error that says why."""
    sidecar.fail_next(
        "POST", "/api/v1/switchover", status, code, "node2 is active", **details
    )
    with pytest.raises(HomeAssistantError) as caught:
        await press(hass, "node2_make_active")
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == translation_key
    assert text in str(caught.value)


async def test_button_when_the_connection_drops(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """The sidecar hangs up on the press: the user is told it cannot be reached."""
    sidecar.fail_next("POST", "/api/v1/sync", 0, "", "")
    with pytest.raises(HomeAssistantError) as caught:
        await press(hass, "sync")
    assert caught.value.translation_key == "cannot_connect"


async def test_automatic_failover_switch(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Turning the switch off pauses automatic failover on the sidecar; on resumes it."""
    switch = entity_id(hass, "switch", "automatic_failover")
    await hass.services.async_call(
        Platform.SWITCH, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert sidecar.calls("PUT", "/api/v1/automation")[-1].body == {
        "automatic_failover": False
    }
    state = hass.states.get(switch)
    assert state is not None
    assert state.state == STATE_OFF

    await hass.services.async_call(
        Platform.SWITCH, SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
    )
    assert sidecar.calls("PUT", "/api/v1/automation")[-1].body == {
        "automatic_failover": True
    }
    assert sidecar.status["automation"]["automatic_failover"] is True


async def test_switchover_action_returns_the_operation(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """zigbee2mqtt_ha.switchover with a target answers with the sidecar's operation."""
    response = await hass.services.async_call(
        DOMAIN,
        "switchover",
        {"target": "node2", "reason": "weekly"},
        blocking=True,
        return_response=True,
    )
    assert sidecar.calls("POST", "/api/v1/switchover")[0].body == {
        "target": "node2",
        "reason": "weekly",
    }
    assert response is not None
    assert response["id"] == "op-1"
    assert response["kind"] == "switchover"
    assert response["status"] == "running"
    assert response["params"] == {"target": "node2", "reason": "weekly"}


async def test_switchover_action_without_target(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Without a target the sidecar picks the best ready standby; no response asked."""
    await hass.services.async_call(
        DOMAIN,
        "switchover",
        {ATTR_CONFIG_ENTRY_ID: init_integration.entry_id},
        blocking=True,
    )
    assert sidecar.calls("POST", "/api/v1/switchover")[0].body == {}


async def test_switchover_action_refuses_an_unknown_node(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """A typo in the target is caught before anything reaches the sidecar."""
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "switchover", {"target": "node9"}, blocking=True
        )
    assert caught.value.translation_key == "unknown_node"
    assert caught.value.translation_placeholders == {
        "node": "node9",
        "nodes": "node1, node2, node3",
    }
    assert sidecar.calls("POST", "/api/v1/switchover") == []


async def test_sync_and_check_actions(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """zigbee2mqtt_ha.sync and .check start their operations."""
    response = await hass.services.async_call(
        DOMAIN, "sync", {"reason": "before update"}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["kind"] == "sync"
    assert sidecar.calls("POST", "/api/v1/sync")[0].body == {"reason": "before update"}

    response = await hass.services.async_call(
        DOMAIN, "check", {}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["kind"] == "check"
    assert len(sidecar.calls("POST", "/api/v1/check")) == 1


async def test_action_reports_a_busy_sidecar(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """A second switchover while one runs gets the sidecar's 409, translated."""
    sidecar.fail_next(
        "POST", "/api/v1/sync", 409, "operation_running", "busy", operation_id="op-1"
    )
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(DOMAIN, "sync", {}, blocking=True)
    assert caught.value.translation_key == "operation_running"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["operation_id"] == "op-1"


async def test_action_rejects_bad_fields(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Unknown fields and over-long reasons are refused by the schema, naming the field."""
    with pytest.raises(vol.MultipleInvalid) as caught:
        await hass.services.async_call(
            DOMAIN, "check", {"target": "node2"}, blocking=True
        )
    assert [error.path for error in caught.value.errors] == [["target"]]
    with pytest.raises(vol.MultipleInvalid) as caught:
        await hass.services.async_call(
            DOMAIN, "sync", {"reason": "x" * 501}, blocking=True
        )
    assert [error.path for error in caught.value.errors] == [["reason"]]
    assert sidecar.calls("POST", "/api/v1/check") == []
    assert sidecar.calls("POST", "/api/v1/sync") == []


async def test_action_needs_a_loaded_sidecar(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """With the entry unloaded, the action says there is no sidecar to ask."""
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(DOMAIN, "check", {}, blocking=True)


async def test_action_without_entry_id_needs_exactly_one_sidecar(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """With a second sidecar configured, an action must say which one it is for."""
    MockConfigEntry(domain=DOMAIN, title="garage", unique_id="other").add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "check", {}, blocking=True)
    assert caught.value.translation_key == "which_sidecar"
    # Named, it goes to that one.
    await hass.services.async_call(
        DOMAIN,
        "check",
        {ATTR_CONFIG_ENTRY_ID: init_integration.entry_id},
        blocking=True,
    )
    assert len(sidecar.calls("POST", "/api/v1/check")) == 1


async def test_action_with_no_sidecar_configured(hass: HomeAssistant) -> None:
    """The actions exist before any sidecar is added, and say there is none."""
    assert await async_setup_component(hass, DOMAIN, {})
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "sync", {}, blocking=True)
    assert caught.value.translation_key == "no_sidecar"


@pytest.mark.parametrize(
    ("failure", "translation_key"),
    [
        ("busy", "operation_running"),
        ("down", "cannot_connect"),
        ("nonsense", "unknown_error"),
    ],
)
async def test_switch_refused_changes_nothing(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    failure: str,
    translation_key: str,
) -> None:
    """The sidecar refuses, is down or answers nonsense: an error says so, nothing turns on."""
    if failure == "busy":
        sidecar.fail_next("PUT", "/api/v1/automation", 409, "operation_running", "busy")
    elif failure == "down":
        await sidecar.stop()
    else:
        sidecar.answer_next_raw("PUT", "/api/v1/automation", 500, "<html>oops</html>")
    switch = entity_id(hass, "switch", "maintenance")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            Platform.SWITCH, SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
        )
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == translation_key
    state = hass.states.get(switch)
    assert state is not None
    assert state.state != STATE_ON
    assert sidecar.status["automation"]["maintenance"] is False


async def test_switch_with_a_rotated_token_asks_for_the_new_one(
    hass: HomeAssistant, init_integration: MockConfigEntry, sidecar: FakeSidecar
) -> None:
    """Toggling with a token the sidecar no longer accepts: an error and re-authentication."""
    sidecar.token = "rotated"
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            Platform.SWITCH,
            SERVICE_TURN_OFF,
            {ATTR_ENTITY_ID: entity_id(hass, "switch", "automatic_failover")},
            blocking=True,
        )
    assert caught.value.translation_key == "invalid_auth"
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
