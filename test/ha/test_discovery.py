"""Discovery: a sidecar announced over mDNS (zeroconf), or published by its add-on (Supervisor)."""

from __future__ import annotations

from collections.abc import Generator
from ipaddress import ip_address
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_ZEROCONF
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from homeassistant.loader import async_get_zeroconf
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.const import DOMAIN

from .fake_sidecar import INSTANCE_ID, FakeSidecar

SERVICE_TYPE = "_zigbee2mqtt-ha._tcp.local."


@pytest.fixture(autouse=True)
def no_setup() -> Generator[AsyncMock]:
    """The flows are tested on their own: creating or updating an entry sets nothing up."""
    with patch(
        "custom_components.zigbee2mqtt_ha.async_setup_entry", return_value=True
    ) as mock:
        yield mock


def announcement(
    port: int, address: str = "127.0.0.1", **properties: Any
) -> ZeroconfServiceInfo:
    """What Home Assistant's zeroconf hands the flow for the sidecar's announcement."""
    txt = {"instance_id": INSTANCE_ID, "api_version": "1", "path": "/"} | properties
    return ZeroconfServiceInfo(
        ip_address=ip_address(address),
        ip_addresses=[ip_address(address)],
        port=port,
        hostname="zigbee-host.local.",
        type=SERVICE_TYPE,
        name=f"home.{SERVICE_TYPE}",
        properties={k: v for k, v in txt.items() if v is not None},
    )


def addon(
    url: str, token: str, instance_id: str | None = INSTANCE_ID
) -> HassioServiceInfo:
    """What the Supervisor hands the flow for the add-on's discovery message."""
    config: dict[str, Any] = {"url": url, "token": token}
    if instance_id is not None:
        config["instance_id"] = instance_id
    return HassioServiceInfo(
        config=config, name="zigbee2mqtt HA", slug="zigbee2mqtt_ha", uuid="1234"
    )


def entry_at(url: str, token: str, source: str = "user") -> MockConfigEntry:
    """A configured entry for the fake sidecar's installation."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="home",
        unique_id=INSTANCE_ID,
        source=source,
        data={CONF_URL: url, CONF_TOKEN: token},
    )


async def test_manifest_declares_the_service_type(hass: HomeAssistant) -> None:
    """Home Assistant's zeroconf starts the flow for the type the sidecar announces."""
    matchers = await async_get_zeroconf(hass)
    assert {"domain": DOMAIN} in matchers[SERVICE_TYPE]


async def test_a_discovered_sidecar_is_added_with_its_token(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """Found on the LAN: the user confirms with the token; the entry has the announced URL."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=announcement(sidecar.port)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "home", "url": sidecar.url}
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flows[0]["context"]["title_placeholders"] == {"name": "home"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "not-it"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: sidecar.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "home"
    assert result["data"] == {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}
    assert result["result"].unique_id == INSTANCE_ID


@pytest.mark.parametrize(
    ("address", "properties", "url"),
    [
        ("192.168.1.10", {"tls": "1"}, "https://192.168.1.10:8485"),
        ("192.168.1.10", {"path": "/z2m-ha/"}, "http://192.168.1.10:8485/z2m-ha"),
        ("fd00::10", {}, "http://[fd00::10]:8485"),
    ],
)
async def test_the_announced_url(
    hass: HomeAssistant, address: str, properties: dict[str, str], url: str
) -> None:
    """Plain http unless the announcement says tls=1; its path; IPv6 in brackets."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=announcement(8485, address, **properties),
    )
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    assert placeholders["url"] == url
    # An https sidecar (tls=1) most likely has its own certificate: the form offers the pin.
    schema = result["data_schema"]
    assert schema is not None
    fields = [str(key) for key in schema.schema]
    assert fields == (
        ["token", "tls_fingerprint"] if url.startswith("https") else ["token"]
    )


async def test_a_known_sidecar_that_moved_gets_its_new_address(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """It announces another address (DHCP): the entry follows; no second entry."""
    entry = entry_at("http://192.168.1.20:8485", sidecar.token)
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=announcement(sidecar.port)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://zigbee-host.lan:8485", "user"),
        ("http://addon-zigbee2mqtt-ha:8485", SOURCE_HASSIO),
    ],
)
async def test_a_known_sidecar_keeps_a_url_by_name(
    hass: HomeAssistant, sidecar: FakeSidecar, url: str, source: str
) -> None:
    """A URL by host name (TLS certificates name it), or the add-on's, is not replaced."""
    entry = entry_at(url, sidecar.token, source)
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=announcement(sidecar.port)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_URL] == url


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"instance_id": None}, "invalid_discovery_info"),
        ({"api_version": "2"}, "unsupported_api_version"),
    ],
)
async def test_announcements_it_cannot_use(
    hass: HomeAssistant, properties: dict[str, str | None], reason: str
) -> None:
    """No instance id, or an API this integration does not speak: nothing is offered."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=announcement(8485, "127.0.0.1", **properties),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def test_an_announcement_that_leads_elsewhere(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """The announced instance id is not the one answering there: nothing is added."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=announcement(sidecar.port, instance_id="another-installation"),
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: sidecar.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_sidecar"


@pytest.mark.parametrize("with_instance_id", [True, False])
async def test_the_addon_discovery_adds_the_sidecar(
    hass: HomeAssistant, sidecar: FakeSidecar, with_instance_id: bool
) -> None:
    """Supervisor discovery → confirm → entry with the add-on's URL and token."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=addon(
            sidecar.url, sidecar.token, INSTANCE_ID if with_instance_id else None
        ),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"addon": "zigbee2mqtt HA"}
    # Without an instance id in the message, /info told it.
    assert len(sidecar.calls("GET", "/api/v1/info")) == (0 if with_instance_id else 1)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "home"
    assert result["data"] == {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}
    assert result["result"].unique_id == INSTANCE_ID
    assert result["result"].source == SOURCE_HASSIO


async def test_the_addon_discovery_updates_its_entry(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """The add-on restarted with a new token and address: the entry takes both."""
    entry = entry_at("http://old-addon-host:8485", "old-token", SOURCE_HASSIO)
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=addon(sidecar.url, sidecar.token),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}


async def test_the_addon_discovery_when_the_sidecar_is_not_up(
    hass: HomeAssistant, sidecar: FakeSidecar
) -> None:
    """Down at confirm: the error shows and confirming again works once it is up."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=addon(sidecar.url, sidecar.token),
    )
    await sidecar.stop()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    await sidecar.start()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"url": "http://addon:8485"}, "invalid_discovery_info"),
        ({"url": "http://127.0.0.1:1", "token": "t"}, "cannot_connect"),
    ],
)
async def test_addon_messages_it_cannot_use(
    hass: HomeAssistant, socket_enabled: None, message: dict[str, str], reason: str
) -> None:
    """No token; or no instance id and nobody answers at the URL: nothing is offered."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=HassioServiceInfo(
            config=message, name="zigbee2mqtt HA", slug="zigbee2mqtt_ha", uuid="1"
        ),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
