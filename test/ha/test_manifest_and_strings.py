"""What HACS and Home Assistant read from files: manifest, hacs.json, strings, icons."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

from annotatedyaml import load_yaml
from awesomeversion import AwesomeVersion, AwesomeVersionStrategy

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


# Decided once: the repository every link names.
REPOSITORY = "https://github.com/zigbee2mqtt-ha/zigbee2mqtt-ha"
PACKAGE = read_json(REPO / "package.json")
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
    """Every field as Home Assistant and HACS read it, links to the one repository."""
    manifest = read_json(COMPONENT / "manifest.json")
    assert manifest == {
        "domain": DOMAIN,
        "name": "zigbee2mqtt HA (high availability)",
        "codeowners": ["@zigbee2mqtt-ha"],
        "config_flow": True,
        "dependencies": [],
        "documentation": f"{REPOSITORY}/blob/main/docs/home-assistant.md",
        "integration_type": "hub",
        "iot_class": "local_push",
        "issue_tracker": f"{REPOSITORY}/issues",
        "requirements": [],
        "version": PACKAGE["version"],
        "zeroconf": ["_zigbee2mqtt-ha._tcp.local."],
    }
    # Home Assistant refuses a custom integration whose version it cannot parse.
    assert AwesomeVersion(manifest["version"]).valid
    assert AwesomeVersion(manifest["version"]).strategy is AwesomeVersionStrategy.SEMVER


def test_one_version_for_the_sidecar_and_the_integration() -> None:
    """A release tag v<version> names both: manifest.json moves with package.json."""
    manifest = read_json(COMPONENT / "manifest.json")
    assert manifest["version"] == PACKAGE["version"]


def test_hacs_json() -> None:
    """HACS 2: name, the component in custom_components/, the oldest supported release."""
    hacs = read_json(REPO / "hacs.json")
    oldest = re.search(
        r"^homeassistant==(\d+\.\d+)\.\d+$",
        (REPO / "test" / "ha" / "requirements-oldest.txt").read_text(),
        re.M,
    )
    assert oldest is not None
    assert hacs == {
        "name": "zigbee2mqtt HA (high availability)",
        "content_in_root": False,
        # The month's first release: any patch release of the oldest tested month.
        "homeassistant": f"{oldest.group(1)}.0",
    }


def test_license() -> None:
    """The LICENSE file says what package.json says: MIT."""
    assert PACKAGE["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_every_link_to_the_repository_is_the_one_repository() -> None:
    """GitHub links in the integration's files and its doc all lead to one repository."""
    texts = [
        (COMPONENT / "manifest.json").read_text(),
        (REPO / "docs" / "home-assistant.md").read_text(),
    ]
    links = {
        link
        for text in texts
        for link in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", text)
    }
    assert links == {REPOSITORY}


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
