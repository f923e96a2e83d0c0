"""Repair issues for the sidecar's split brain and no-standby-ready alerts.

Not named repairs.py: Home Assistant loads a module of that name as a repairs platform (fix
flows), which these issues do not have.
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


def issue_id(entry: Zigbee2mqttHaConfigEntry, kind: str) -> str:
    """One issue per entry and alert kind."""
    return f"{entry.entry_id}_{kind}"


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
        wanted = {a.kind: a for a in coordinator.data.alerts if a.kind in REPAIR_ALERTS}
        for kind in shown - wanted.keys():
            ir.async_delete_issue(hass, DOMAIN, issue_id(entry, kind))
        for kind, alert in wanted.items():
            ir.async_create_issue(
                hass,
                DOMAIN,
                issue_id(entry, kind),
                is_fixable=False,
                severity=SEVERITY.get(alert.severity, ir.IssueSeverity.WARNING),
                translation_key=kind,
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
        for kind in REPAIR_ALERTS:
            ir.async_delete_issue(hass, DOMAIN, issue_id(entry, kind))

    _sync()
    entry.async_on_unload(coordinator.async_add_listener(_sync))
    entry.async_on_unload(_clear)
