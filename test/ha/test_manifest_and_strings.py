"""What HACS and Home Assistant read from files: manifest, hacs.json, strings, icons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from annotatedyaml import load_yaml

from custom_components.zigbee2mqtt_ha import (
    binary_sensor,
    button,
    event,
    helpers,
    sensor,
    switch,
)
from custom_components.zigbee2mqtt_ha.const import DOMAIN, EVENT_TYPES, REPAIR_ALERTS

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "custom_components" / DOMAIN


def read_json(path: Path) -> Any:
    """A JSON file of the component."""
    return json.loads(path.read_text())


STRINGS = read_json(COMPONENT / "translations" / "en.json")
ICONS = read_json(COMPONENT / "icons.json")

DESCRIPTIONS: dict[str, tuple[Any, ...]] = {
    "binary_sensor": binary_sensor.BINARY_SENSORS + binary_sensor.NODE_BINARY_SENSORS,
    "button": button.BUTTONS + button.NODE_BUTTONS,
    "event": event.EVENTS,
    "sensor": sensor.SENSORS + sensor.NODE_SENSORS,
    "switch": switch.SWITCHES,
}


def test_manifest_has_what_hacs_and_home_assistant_require() -> None:
    """Domain, version, links, owners, config flow, push, hub; nothing to install."""
    manifest = read_json(COMPONENT / "manifest.json")
    assert manifest["domain"] == DOMAIN
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] == "hub"
    assert manifest["requirements"] == []
    assert manifest["codeowners"]
    for key in ("name", "version", "documentation", "issue_tracker"):
        assert manifest[key], key
    hacs = read_json(REPO / "hacs.json")
    assert hacs["name"]
    assert hacs["homeassistant"]


def test_every_entity_has_a_name_and_an_icon() -> None:
    """Each description's translation key is named, and enum states are translated."""
    for platform, descriptions in DESCRIPTIONS.items():
        for description in descriptions:
            key = description.translation_key
            assert key == description.key, f"{platform}.{description.key}"
            strings = STRINGS["entity"][platform][key]
            assert strings["name"], f"{platform}.{key}"
            assert key in ICONS["entity"][platform], f"icon for {platform}.{key}"
            for option in getattr(description, "options", None) or ():
                assert option in strings["state"], f"{platform}.{key} state {option}"
            for event_type in getattr(description, "event_types", None) or ():
                event_types = strings["state_attributes"]["event_type"]["state"]
                assert event_type in event_types, f"{platform}.{key} {event_type}"


def test_error_keys_are_translated() -> None:
    """Every exception translation key the code raises has a message."""
    raised = {
        *helpers.TRANSLATED_API_ERRORS,
        "api_error",
        "cannot_connect",
        "invalid_auth",
        "unknown_error",
        "unknown_node",
    }
    assert raised <= set(STRINGS["exceptions"])
    assert set(REPAIR_ALERTS) <= set(STRINGS["issues"])
    assert set(EVENT_TYPES) == set(STRINGS["selector"]["events"]["options"])


def test_actions_are_described() -> None:
    """services.yaml, the strings and the icons name the same actions and fields."""
    services = load_yaml(str(COMPONENT / "services.yaml"))
    assert isinstance(services, dict)
    assert set(services) == {"switchover", "sync", "check"}
    assert set(services) == set(STRINGS["services"]) == set(ICONS["services"])
    for name, spec in services.items():
        assert set(spec["fields"]) == set(STRINGS["services"][name]["fields"]), name
