"""Split brain and "no standby ready" become repair issues, and go when resolved."""

from __future__ import annotations

import importlib
import importlib.util
import logging

from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .conftest import wait_for
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
    issue_id = f"{init_integration.entry_id}_split_brain"
    await sidecar.push("alert.raised", alert=SPLIT_BRAIN)
    await wait_for(lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None)
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.CRITICAL
    assert issue.translation_key == "split_brain"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["message"] == SPLIT_BRAIN["message"]

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
