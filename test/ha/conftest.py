"""Fixtures: a fake sidecar on loopback, a config entry for it, the integration set up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path
from unittest.mock import PropertyMock, patch

from homeassistant.const import CONF_TOKEN, CONF_URL, MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .fake_sidecar import INSTANCE_ID, FakeSidecar


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components/."""


class ReleaseSnapshotExtension(HomeAssistantSnapshotExtension):  # type: ignore[misc]
    """Home Assistant's snapshots, one set per release: test/ha/snapshots-<year.month>/.

    Releases serialize the same entity differently (2026.10 writes state attribute keys as
    enums, 2026.6 as strings), so each supported release has its own reviewed set;
    `scripts/test-ha.sh --snapshot-update` rewrites both. Side by side rather than under
    snapshots/: older syrupy also scans the harness's default snapshots/ tree, and would call
    the other release's set unused (and delete it on update).
    """

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        """The release's directory next to the test file."""
        test_dir = Path(test_location.filepath).parent
        return str(test_dir / f"snapshots-{MAJOR_VERSION}.{MINOR_VERSION}")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with Home Assistant's serializer, per release.

    The harness defines this fixture too, but which of it and syrupy's own wins depends on
    the plugins' order, which differs between the harness's releases.
    """
    return snapshot.use_extension(ReleaseSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Entities disabled by default are enabled (as Home Assistant core's tests do)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
async def sidecar(socket_enabled: None) -> AsyncGenerator[FakeSidecar]:
    """A fake sidecar listening on 127.0.0.1 with the active/standby/unreachable mix."""
    fake = FakeSidecar()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def mock_config_entry(sidecar: FakeSidecar) -> MockConfigEntry:
    """A config entry pointing at the fake sidecar."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="home",
        unique_id=INSTANCE_ID,
        data={CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token},
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, sidecar: FakeSidecar
) -> AsyncGenerator[MockConfigEntry]:
    """The integration set up against the fake sidecar, its event stream connected."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    # Connected, and caught up: the listener reads the status once the stream is open.
    await wait_for(
        lambda: (
            sidecar.open_streams == 1
            and len(sidecar.calls("GET", "/api/v1/status")) >= 2
        )
    )
    await hass.async_block_till_done()
    yield mock_config_entry
    # Unloaded here, while the fake still listens, so the stream task ends cleanly.
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


async def wait_for(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until `condition()` holds: the loop runs both ends of the HTTP in these tests."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - conditions on state, not on one event
            await asyncio.sleep(0.02)


def entity_id(hass: HomeAssistant, platform: str, unique_id_suffix: str) -> str:
    """The entity id registered for `{instance id}_{suffix}` on a platform."""
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{INSTANCE_ID}_{unique_id_suffix}"
    )
    assert found is not None, (
        f"no {platform} entity with unique id suffix {unique_id_suffix}"
    )
    return found


def device(
    hass: HomeAssistant, entry: MockConfigEntry, identifier: str
) -> dr.DeviceEntry | None:
    """The entry's device with the identifier (`DOMAIN`, identifier), if registered.

    Found by listing: the registry's lookup by identifier changed in 2026.8, and the tests run
    on older releases too.
    """
    for found in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id):
        if (DOMAIN, identifier) in found.identifiers:
            return found
    return None
