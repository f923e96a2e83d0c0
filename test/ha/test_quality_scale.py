"""quality_scale.yaml decides every rule, and its claims hold where a file can show it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
import tomllib
from typing import Any

from annotatedyaml import load_yaml
import pytest

from custom_components.zigbee2mqtt_ha import PLATFORMS
from custom_components.zigbee2mqtt_ha.const import DOMAIN

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "custom_components" / DOMAIN

# Home Assistant core's rules (script/hassfest/quality_scale.py), by tier.
RULES = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}


def statuses() -> dict[str, dict[str, Any]]:
    """Each rule's status and comment, in the file's short or long form."""
    data = load_yaml(str(COMPONENT / "quality_scale.yaml"))
    assert isinstance(data, dict)
    assert set(data) == {"rules"}
    return {
        rule: value if isinstance(value, dict) else {"status": value}
        for rule, value in data["rules"].items()
    }


def test_every_rule_is_decided() -> None:
    """All 54 rules, no other; done or exempt with its reason; nothing left to do.

    So every tier up to Platinum is reached.
    """
    rules = statuses()
    assert sorted(rules) == sorted(r for tier in RULES.values() for r in tier)
    assert len(rules) == 54
    for rule, value in rules.items():
        assert set(value) <= {"status", "comment"}, rule
        assert value["status"] in {"done", "exempt"}, rule
        if value["status"] == "exempt":
            assert value.get("comment"), f"{rule}: an exemption says why"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_parallel_updates_in_every_platform(platform: str) -> None:
    """parallel-updates: each platform module sets PARALLEL_UPDATES."""
    module = importlib.import_module(f"custom_components.{DOMAIN}.{platform}")
    assert isinstance(module.PARALLEL_UPDATES, int)


def test_the_file_backed_claims() -> None:
    """brands, discovery, strict-typing, test-coverage, config-flow: what files show."""
    assert (COMPONENT / "brand" / "icon.png").is_file()
    manifest = json.loads((COMPONENT / "manifest.json").read_text())
    assert manifest["zeroconf"]
    assert manifest["iot_class"] == "local_push"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["mypy"]["strict"] is True
    assert "--cov-fail-under=95" in (REPO / "scripts" / "test-ha.sh").read_text()
    # config-flow: every field of every step is described.
    strings = json.loads((COMPONENT / "translations" / "en.json").read_text())
    for section in ("config", "options"):
        for step_id, step in strings[section]["step"].items():
            assert set(step.get("data", {})) == set(step.get("data_description", {})), (
                f"{section}.{step_id}"
            )
