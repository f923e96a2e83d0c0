"""Config flow: a user adds, re-authenticates and reconfigures a sidecar."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.zigbee2mqtt_ha.const import CONF_EVENTS, DOMAIN

from .fake_sidecar import INSTANCE_ID, FakeSidecar


@pytest.fixture(autouse=True)
def no_setup() -> Generator[AsyncMock]:
    """The flows are tested on their own: creating an entry does not set it up."""
    with patch(
        "custom_components.zigbee2mqtt_ha.async_setup_entry", return_value=True
    ) as mock:
        yield mock


async def test_user_adds_sidecar(hass: HomeAssistant, sidecar: FakeSidecar) -> None:
    """URL and token are checked against /api/v1/info; the entry is the instance."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"{sidecar.url}/", CONF_TOKEN: sidecar.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "home"
    assert result["data"] == {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}
    assert result["result"].unique_id == INSTANCE_ID
    assert [r.path for r in sidecar.requests] == ["/api/v1/info"]


@pytest.mark.parametrize(
    ("break_it", "field", "error"),
    [
        ("wrong_token", CONF_TOKEN, "invalid_auth"),
        ("proxy_refuses_token", CONF_TOKEN, "invalid_auth"),
        ("nothing_listens", CONF_URL, "cannot_connect"),
        ("not_a_sidecar", "base", "unknown"),
    ],
)
async def test_user_errors_then_recovers(
    hass: HomeAssistant, sidecar: FakeSidecar, break_it: str, field: str, error: str
) -> None:
    """Each failure shows its error on the form, and fixing it creates the entry."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    url, token = sidecar.url, sidecar.token
    if break_it == "wrong_token":
        token = "not-the-token"
    elif break_it == "proxy_refuses_token":
        sidecar.answer_next_raw("GET", "/api/v1/info", 401, "<html>401</html>")
    elif break_it == "nothing_listens":
        await sidecar.stop()
    else:
        sidecar.info = {"hello": "I am some other web server"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_TOKEN: token}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}

    if break_it == "nothing_listens":
        await sidecar.start()
    sidecar.info["instance_id"] = INSTANCE_ID
    sidecar.info.setdefault("cluster_name", "home")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_same_sidecar_twice_aborts(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """The same installation (instance id) cannot be added twice."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: f"{sidecar.url}/", CONF_TOKEN: sidecar.token},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth_with_new_token(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """The token was regenerated on the sidecar: the user enters the new one."""
    mock_config_entry.add_to_hass(hass)
    sidecar.token = "regenerated-token"

    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-the-old-one"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "regenerated-token"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_TOKEN] == "regenerated-token"
    assert mock_config_entry.data[CONF_URL] == sidecar.url


async def test_reauth_refuses_another_sidecar(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """A token that opens a different installation does not replace this one's."""
    mock_config_entry.add_to_hass(hass)
    sidecar.info["instance_id"] = "another-installation"
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: sidecar.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_sidecar"


async def test_reconfigure_after_the_sidecar_moved(
    hass: HomeAssistant, sidecar: FakeSidecar, mock_config_entry: MockConfigEntry
) -> None:
    """The sidecar now listens elsewhere: a wrong URL is refused, the right one kept."""
    mock_config_entry.add_to_hass(hass)
    old_url = sidecar.url
    await sidecar.stop()
    sidecar.port = 0
    await sidecar.start()
    assert sidecar.url != old_url

    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: old_url, CONF_TOKEN: sidecar.token}
    )
    assert result["errors"] == {CONF_URL: "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: sidecar.url, CONF_TOKEN: sidecar.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data[CONF_URL] == sidecar.url


async def test_options_choose_the_events(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The user keeps only failover events; there is no polling interval to choose.

    Home Assistant's rules leave polling to `homeassistant.update_entity`; the event stream
    makes it unnecessary anyway.
    """
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"]
    assert schema is not None
    assert [str(key) for key in schema.schema] == [CONF_EVENTS]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_EVENTS: ["failover"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {CONF_EVENTS: ["failover"]}
