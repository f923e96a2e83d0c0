"""The integration against the REAL sidecar serving HTTPS with its own self-signed certificate.

The user copies the fingerprint the sidecar printed at start into the config flow: the
certificate is pinned, no certificate authority involved. A wrong fingerprint, or none at all,
is refused with a message that says which.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
import hashlib
from pathlib import Path
import ssl

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_TOKEN, CONF_URL, STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.zigbee2mqtt_ha.const import CONF_FINGERPRINT, DOMAIN

from .conftest import wait_for
from .live_sidecar import LiveSidecar


@pytest.fixture
async def tls_sidecar(
    socket_enabled: None, tmp_path: Path
) -> AsyncGenerator[LiveSidecar]:
    """The real sidecar on a loopback port, serving HTTPS with a self-signed certificate."""
    sidecar = LiveSidecar(tmp_path, tls=True)
    await sidecar.start()
    try:
        yield sidecar
    finally:
        await sidecar.stop()


async def _submit(hass: HomeAssistant, data: dict[str, str]) -> dict[str, object]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"], data))


async def test_pinned_self_signed_certificate(
    hass: HomeAssistant, tls_sidecar: LiveSidecar
) -> None:
    """The fingerprint from the sidecar's log pins its certificate; everything works over it."""
    printed = tls_sidecar.fingerprint
    der = ssl.PEM_cert_to_DER_cert(
        (tls_sidecar.state_dir / "tls" / "cert.pem").read_text()
    )
    digest = hashlib.sha256(der).hexdigest().upper()
    assert printed == "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert tls_sidecar.url.startswith("https://")

    # As the user may paste it: lower case works too.
    result = await _submit(
        hass,
        {
            CONF_URL: tls_sidecar.url,
            CONF_TOKEN: tls_sidecar.token,
            CONF_FINGERPRINT: printed.lower(),
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry = result["result"]
    assert entry.data[CONF_FINGERPRINT] == printed  # type: ignore[attr-defined]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED  # type: ignore[attr-defined]

    # The event stream runs over the pinned connection too: a change made elsewhere arrives.
    instance = (await tls_sidecar.api("GET", "/info"))["instance_id"]
    switch = er.async_get(hass).async_get_entity_id(
        "switch", DOMAIN, f"{instance}_automatic_failover"
    )
    assert switch is not None
    await wait_for(lambda: getattr(hass.states.get(switch), "state", None) == STATE_ON)
    await tls_sidecar.api("PUT", "/automation", {"automatic_failover": False})
    await wait_for(lambda: getattr(hass.states.get(switch), "state", None) == STATE_OFF)
    assert await hass.config_entries.async_unload(entry.entry_id)  # type: ignore[attr-defined]
    await hass.async_block_till_done()


async def test_wrong_or_missing_fingerprint_is_refused(
    hass: HomeAssistant, tls_sidecar: LiveSidecar
) -> None:
    """Another certificate's fingerprint, none, http with one, or garbage: each says why."""
    url, token = tls_sidecar.url, tls_sidecar.token
    other = "SHA256:" + ":".join(["AB"] * 32)
    for data, field, error in (
        ({CONF_FINGERPRINT: other}, CONF_FINGERPRINT, "fingerprint_mismatch"),
        ({}, CONF_FINGERPRINT, "certificate_untrusted"),
        ({CONF_FINGERPRINT: "SHA256:12:34"}, CONF_FINGERPRINT, "invalid_fingerprint"),
        (
            {
                CONF_URL: url.replace("https://", "http://"),
                CONF_FINGERPRINT: tls_sidecar.fingerprint,
            },
            CONF_FINGERPRINT,
            "fingerprint_needs_https",
        ),
    ):
        result = await _submit(hass, {CONF_URL: url, CONF_TOKEN: token, **data})
        assert result["type"] is FlowResultType.FORM, (data, result)
        assert result["errors"] == {field: error}, data
    assert not hass.config_entries.async_entries(DOMAIN)
