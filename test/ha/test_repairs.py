"""The sidecar's alerts become repair issues, and go when resolved; split brain is fixable."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

from homeassistant.components.repairs import RepairsFlowManager, repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .conftest import entity_id, wait_for
from .fake_sidecar import FakeSidecar

SPLIT_BRAIN = {
    "kind": "split_brain",
    "severity": "critical",
    "message": "zigbee2mqtt runs on node1 and node2",
    "node": "node2",
    "at": "2026-05-01T10:00:00Z",
}


async def test_split_brain_raised_and_cleared(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The sidecar raises split brain: a critical issue; it clears: the issue goes."""
    issue_id = f"{init_integration.entry_id}_split_brain_node2"
    await sidecar.push("alert.raised", alert=SPLIT_BRAIN)
    await wait_for(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.CRITICAL
    assert issue.translation_key == "split_brain"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["message"] == SPLIT_BRAIN["message"]
    assert issue.is_fixable
    assert issue.data == {
        "entry_id": init_integration.entry_id,
        "kind": "split_brain",
        "node": "node2",
        "message": SPLIT_BRAIN["message"],
    }

    await sidecar.push(
        "alert.cleared",
        alert={"kind": "split_brain", "node": "node2", "at": "2026-05-01T10:05:00Z"},
    )
    await wait_for(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is None)


async def test_no_standby_ready_at_startup(
    hass: HomeAssistant,
    sidecar: FakeSidecar,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An alert already present when Home Assistant starts shows at once; unloading clears it."""
    sidecar.status["alerts"] = [
        {
            "kind": "no_standby_ready",
            "severity": "warning",
            "message": "node2: staging copy is 3 days old",
            "at": "2026-05-01T10:00:00Z",
        },
        {
            "kind": "clock_skew",
            "severity": "warning",
            "message": "not a repair issue",
            "at": "2026-05-01T10:00:00Z",
        },
    ]
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"{mock_config_entry.entry_id}_no_standby_ready"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert [i for i in issue_registry.issues if i[0] == DOMAIN] == [(DOMAIN, issue_id)]

    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def _open_fix_flow(
    hass: HomeAssistant, sidecar: FakeSidecar, issue_id: str
) -> tuple[RepairsFlowManager, dict[str, Any]]:
    """Raise a split brain on node2 and open its issue's fix flow, as the Repairs page does."""
    assert await async_setup_component(hass, "repairs", {})
    await sidecar.push("alert.raised", alert=SPLIT_BRAIN)
    await wait_for(
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    )
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    return manager, dict(result)


async def test_split_brain_fix_flow_stops_the_stray_node(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Repairs → Split brain → Submit: the sidecar is asked to stop node2, the issue goes."""
    issue_id = f"{init_integration.entry_id}_split_brain_node2"
    manager, result = await _open_fix_flow(hass, sidecar, issue_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["node"] == "node2"
    assert result["description_placeholders"]["message"] == SPLIT_BRAIN["message"]
    assert not sidecar.calls("POST", "/api/v1/nodes/node2/stop")

    result = dict(await manager.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (call,) = sidecar.calls("POST", "/api/v1/nodes/node2/stop")
    assert call.body == {"reason": "split brain: stopped from Home Assistant's repairs"}
    assert call.headers["X-Z2MHA-Client"] == "home-assistant"
    # The fence shows as the current operation at once.
    current = hass.states.get(entity_id(hass, "sensor", "current_operation"))
    assert current is not None
    assert current.state == "fence"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_split_brain_fix_flow_when_the_sidecar_refuses(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Another operation runs: the form says so, nothing is lost, the issue stays."""
    issue_id = f"{init_integration.entry_id}_split_brain_node2"
    manager, result = await _open_fix_flow(hass, sidecar, issue_id)
    sidecar.fail_next(
        "POST",
        "/api/v1/nodes/node2/stop",
        409,
        "operation_running",
        "switchover op-9 is running",
        operation_id="op-9",
    )
    result = dict(await manager.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "stop_refused"}
    assert "op-9" in result["description_placeholders"]["error"]
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    # Tried again once the switchover is over: it goes through.
    result = dict(await manager.async_configure(result["flow_id"], {}))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_split_brain_fix_flow_with_the_entry_unloaded(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
) -> None:
    """The entry went away under an open issue: the flow says to reload it."""
    issue_id = f"{init_integration.entry_id}_split_brain_node2"
    assert await async_setup_component(hass, "repairs", {})
    await sidecar.push("alert.raised", alert=SPLIT_BRAIN)
    await wait_for(
        lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    )
    platform = importlib.import_module(f"custom_components.{DOMAIN}.repairs")
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    flow = await platform.async_create_fix_flow(hass, issue_id, issue.data)
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    flow.hass = hass
    result = await flow.async_step_init()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
    # Any other fixable issue would get a plain confirmation.
    other = await platform.async_create_fix_flow(hass, "other", None)
    assert type(other).__name__ == "ConfirmRepairFlow"


async def test_storage_unavailable_is_a_critical_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The controller's disk fills up: a critical, translated issue until it takes writes."""
    issue_id = f"{init_integration.entry_id}_storage_unavailable"
    await sidecar.push(
        "alert.raised",
        alert={
            "kind": "storage_unavailable",
            "severity": "critical",
            "message": "state dir /var/lib/zigbee2mqtt-ha: ENOSPC",
            "at": "2026-05-01T10:00:00Z",
        },
    )
    await wait_for(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.CRITICAL
    assert issue.translation_key == "storage_unavailable"
    assert not issue.is_fixable
    assert issue.translation_placeholders is not None
    assert "ENOSPC" in issue.translation_placeholders["message"]

    # A corrupt snapshot set aside is only the sidecar's own warning, not a repair issue.
    await sidecar.push(
        "alert.raised",
        alert={
            "kind": "state_corrupt",
            "severity": "warning",
            "message": "snapshot nv-3 unreadable: set aside",
            "at": "2026-05-01T10:01:00Z",
        },
    )
    await sidecar.push(
        "alert.cleared",
        alert={"kind": "storage_unavailable", "at": "2026-05-01T10:05:00Z"},
    )
    await wait_for(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is None)
    assert [i for i in issue_registry.issues if i[0] == DOMAIN] == []


async def test_repairs_integration_finds_no_broken_platform(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Opening any integration's fix flow loads no broken repairs platform of ours.

    Home Assistant's repairs integration imports `<domain>.repairs` of loaded integrations as
    repairs platforms (2026.6: all of them, at the first fix flow of any integration; newer:
    each when its own fix flow opens); a module of that name without `async_create_fix_flow`
    is logged as an error.
    """
    assert await async_setup_component(hass, "repairs", {})
    ir.async_create_issue(
        hass,
        "homeassistant",
        "some_other_issue",
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="some_other_issue",
    )
    manager = repairs_flow_manager(hass)
    assert manager is not None
    await manager.async_init("homeassistant", data={"issue_id": "some_other_issue"})
    await hass.async_block_till_done()
    assert "Error processing platform" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Whatever the release's loading strategy: a `repairs` module of ours is a platform.
    if importlib.util.find_spec(f"custom_components.{DOMAIN}.repairs") is not None:
        platform = importlib.import_module(f"custom_components.{DOMAIN}.repairs")
        assert hasattr(platform, "async_create_fix_flow")
