"""Repair issues for the sidecar's alerts: split brain, no standby ready, storage unavailable.

A split brain can be fixed from Home Assistant (repairs.py stops the stray node); the others
only go when the sidecar clears them.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, REPAIR_ALERTS
from .coordinator import Zigbee2mqttHaConfigEntry

SEVERITY = {
    "critical": ir.IssueSeverity.CRITICAL,
    "warning": ir.IssueSeverity.WARNING,
    "info": ir.IssueSeverity.WARNING,
}


# Alerts whose issue has a fix flow (repairs.py), which acts on the alert's node.
FIXABLE = frozenset({"split_brain"})


def issue_id(
    entry: Zigbee2mqttHaConfigEntry, kind: str, node: str | None = None
) -> str:
    """One issue per entry, alert kind and node (split brain names the stray node)."""
    return f"{entry.entry_id}_{kind}" + (f"_{node}" if node else "")


@callback
def async_track_alert_issues(
    hass: HomeAssistant, entry: Zigbee2mqttHaConfigEntry
) -> None:
    """Keep the repair issues in step with the sidecar's alerts while the entry is loaded.

    The issues go with the entry: while it is not loaded nobody is watching the cluster, and a
    stale "split brain" would mislead more than it helps.
    """
    coordinator = entry.runtime_data.coordinator
    shown: set[str] = set()

    @callback
    def _sync() -> None:
        if not coordinator.last_update_success:
            # An unreachable sidecar says nothing about the alerts; keep what is shown.
            return
        wanted = {
            issue_id(entry, a.kind, a.node): a
            for a in coordinator.data.alerts
            if a.kind in REPAIR_ALERTS
        }
        for gone in shown - wanted.keys():
            ir.async_delete_issue(hass, DOMAIN, gone)
        for wanted_id, alert in wanted.items():
            fixable = alert.kind in FIXABLE and alert.node is not None
            ir.async_create_issue(
                hass,
                DOMAIN,
                wanted_id,
                is_fixable=fixable,
                data={
                    "entry_id": entry.entry_id,
                    "kind": alert.kind,
                    "node": alert.node,
                    "message": alert.message,
                }
                if fixable
                else None,
                severity=SEVERITY.get(alert.severity, ir.IssueSeverity.WARNING),
                translation_key=alert.kind,
                translation_placeholders={
                    "title": entry.title,
                    "message": alert.message,
                    "node": alert.node or "-",
                },
            )
        shown.clear()
        shown.update(wanted)

    @callback
    def _clear() -> None:
        for shown_id in shown:
            ir.async_delete_issue(hass, DOMAIN, shown_id)

    _sync()
    entry.async_on_unload(coordinator.async_add_listener(_sync))
    entry.async_on_unload(_clear)
