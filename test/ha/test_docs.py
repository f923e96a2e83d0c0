"""docs/home-assistant.md and the blueprint work as written."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
import re
import shutil
from typing import Any

from annotatedyaml import parse_yaml
from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .conftest import wait_for
from .fake_sidecar import INSTANCE_ID, FakeSidecar, operation

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "home-assistant.md").read_text()
BLUEPRINT = (
    REPO
    / "docs"
    / "blueprints"
    / "automation"
    / "zigbee2mqtt_ha"
    / "takeover_finished.yaml"
)


def automations_in_doc() -> list[dict[str, Any]]:
    """The YAML block marked `<!-- tested: automations -->` in the doc."""
    match = re.search(r"<!-- tested: automations -->\n```yaml\n(.*?)```", DOC, re.S)
    assert match, "the doc lost its tested automations block"
    automations = parse_yaml(match.group(1))
    assert isinstance(automations, list)
    return automations


@pytest.fixture
async def doc_automations(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> AsyncGenerator[None]:
    """The doc's automations loaded; turned off afterwards, which ends their time triggers."""
    assert await async_setup_component(hass, "persistent_notification", {})
    assert await async_setup_component(
        hass, "automation", {"automation": automations_in_doc()}
    )
    await hass.async_block_till_done()
    yield
    await hass.services.async_call(
        "automation",
        "turn_off",
        {"entity_id": hass.states.async_entity_ids("automation")},
        blocking=True,
    )


def notifications(hass: HomeAssistant) -> dict[str, Any]:
    """Persistent notifications by id."""
    return dict(persistent_notification._async_get_or_create_notifications(hass))


async def test_entity_table_matches_the_integration(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Every entity id and key the doc lists is what the integration registers."""
    rows = re.findall(r"^\| `([a-z_]+\.[a-z0-9_]+)` \| `([a-z0-9_]+)` \|", DOC, re.M)
    assert len(rows) == 20
    for entity_id, key in rows:
        entry = entity_registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.unique_id == f"{INSTANCE_ID}_{key}", entity_id


@pytest.mark.usefixtures("doc_automations")
async def test_weekly_switchover_example(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """The example asks for a switchover, waits for its event and reports a failure."""

    # Not blocking: the run waits for the switchover's end, which arrives below.
    await hass.services.async_call(
        "automation",
        "trigger",
        {
            "entity_id": "automation.zigbee2mqtt_switch_over_twice_a_week",
            "skip_condition": True,
        },
    )
    await wait_for(lambda: len(sidecar.calls("POST", "/api/v1/switchover")) == 1)
    assert sidecar.calls("POST", "/api/v1/switchover")[0].body == {
        "reason": "Scheduled switchover from Home Assistant"
    }
    # The fake's switchover is op-1; its end, a rollback, arrives over the stream.
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "switchover",
            "rolled_back",
            op_id="op-1",
            error={"step": "start-target", "message": "node2 did not come online"},
        ),
    )
    await wait_for(lambda: "zigbee2mqtt_ha_weekly_switchover" in notifications(hass))
    message = notifications(hass)["zigbee2mqtt_ha_weekly_switchover"]["message"]
    assert "rolled_back" in message
    assert "node2 did not come online" in message
    assert "op-1" in message


@pytest.mark.usefixtures("doc_automations")
async def test_failover_notification_example(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """The example tells about a failover, with where the network went."""
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "failover",
            "succeeded",
            op_id="op-f",
            result={"from": "node1", "to": "node2"},
        ),
    )
    await wait_for(lambda: "zigbee2mqtt_ha_failover" in notifications(hass))
    notification = notifications(hass)["zigbee2mqtt_ha_failover"]
    assert notification["title"] == "zigbee2mqtt failed over to node2"
    assert "node1 stopped answering" in notification["message"]


@pytest.mark.parametrize("only_failures", [False, True])
async def test_blueprint(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    sidecar: FakeSidecar,
    tmp_path: Path,
    only_failures: bool,
) -> None:
    """The blueprint runs the user's action with a readable message, failures or all."""
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "zigbee2mqtt_ha"
    target.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    assert await async_setup_component(hass, "persistent_notification", {})
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "takeovers",
                "use_blueprint": {
                    "path": f"zigbee2mqtt_ha/{BLUEPRINT.name}",
                    "input": {
                        "only_failures": only_failures,
                        "actions": [
                            {
                                "action": "persistent_notification.create",
                                "data": {
                                    "notification_id": "{{ operation_id }}",
                                    "message": "{{ message }}",
                                },
                            }
                        ],
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "switchover",
            "succeeded",
            op_id="op-ok",
            result={"from": "node1", "to": "node2"},
        ),
    )
    await sidecar.push(
        "operation.finished",
        operation=operation(
            "failover",
            "failed",
            op_id="op-bad",
            params={"target": "node2"},
            error={"step": "nvram-write", "message": "exit 1"},
        ),
    )
    await wait_for(lambda: "op-bad" in notifications(hass))
    await hass.async_block_till_done()
    assert notifications(hass)["op-bad"]["message"] == (
        "zigbee2mqtt failover ? -> node2: failed (nvram-write: exit 1)"
    )
    if only_failures:
        assert "op-ok" not in notifications(hass)
    else:
        assert notifications(hass)["op-ok"]["message"] == (
            "zigbee2mqtt switchover node1 -> node2: succeeded"
        )


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")


def test_doc_has_what_a_user_looks_for() -> None:
    """Prerequisites, removal, known limitations and troubleshooting, with debug logging."""
    headings = re.findall(r"^## (.+)$", DOC, re.M)
    for wanted in (
        "Before you start",
        "Remove",
        "Known limitations",
        "Troubleshooting",
    ):
        assert wanted in headings, wanted
    troubleshooting = DOC.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    assert "custom_components.zigbee2mqtt_ha: debug" in troubleshooting
    assert "proxy_buffering off" in troubleshooting
    assert "8485" in DOC.split("## Before you start", 1)[1].split("\n## ", 1)[0]


def test_doc_links_lead_somewhere() -> None:
    """Relative links name files (and headings) that exist; my links name this integration."""
    for target in re.findall(r"\]\(([^)]+)\)", DOC):
        if target.startswith("https://my.home-assistant.io/"):
            assert (
                "domain=zigbee2mqtt_ha" in target
                or "owner=zigbee2mqtt-ha&repository=zigbee2mqtt-ha" in target
            ), target
            continue
        if target.startswith("https://"):
            continue
        path, _, fragment = target.partition("#")
        file = (
            (REPO / "docs" / path).resolve()
            if path
            else REPO / "docs" / "home-assistant.md"
        )
        assert file.is_file(), target
        if fragment:
            headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
            assert fragment in {anchor(h) for h in headings}, target
