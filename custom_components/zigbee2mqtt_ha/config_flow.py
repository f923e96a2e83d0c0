"""Config flow: the sidecar's URL and token, validated against the sidecar itself."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address
from typing import Any, override

from homeassistant.config_entries import (
    SOURCE_HASSIO,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from yarl import URL

from .api import (
    SidecarAuthenticationError,
    SidecarCertificateError,
    SidecarClient,
    SidecarConnectionError,
    SidecarInfo,
    normalize_fingerprint,
)
from .compat import vol
from .const import (
    CONF_EVENTS,
    CONF_FINGERPRINT,
    DEFAULT_EVENTS,
    DOMAIN,
    EVENT_TYPES,
    LOGGER,
)
from .coordinator import Zigbee2mqttHaConfigEntry

URL_SELECTOR = TextSelector(
    TextSelectorConfig(type=TextSelectorType.URL, autocomplete="off")
)
TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
FINGERPRINT_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))


# What the sidecar's mDNS announcement carries (TXT records), and the API version understood.
TXT_INSTANCE_ID = "instance_id"
TXT_API_VERSION = "api_version"
TXT_PATH = "path"
TXT_TLS = "tls"
API_VERSION = "1"


def _normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


def _announced_url(discovery_info: ZeroconfServiceInfo) -> str:
    """The API's base URL from an mDNS announcement: its address, port, path; https if tls=1."""
    properties = discovery_info.properties
    return _normalize_url(
        str(
            URL.build(
                scheme="https" if str(properties.get(TXT_TLS, "")) == "1" else "http",
                host=discovery_info.host,
                port=discovery_info.port,
                path=str(properties.get(TXT_PATH) or "/"),
            )
        )
    )


def _fingerprint_field(default: str | None) -> dict[vol.Optional, TextSelector]:
    """The optional pinned-certificate field, prefilled with the entry's pin if it has one."""
    key = (
        vol.Optional(CONF_FINGERPRINT, description={"suggested_value": default})
        if default
        else vol.Optional(CONF_FINGERPRINT)
    )
    return {key: FINGERPRINT_SELECTOR}


def _entry_data(url: str, token: str, fingerprint: str | None) -> dict[str, str]:
    """What an entry keeps: the pin only when there is one."""
    data = {CONF_URL: url, CONF_TOKEN: token}
    if fingerprint:
        data[CONF_FINGERPRINT] = fingerprint
    return data


def _host_is_an_address(url: str) -> bool:
    """Whether the URL names its host by IP address (which moves), not by name (which does not)."""
    try:
        ip_address(URL(url).host or "")
    except ValueError:
        return False
    return True


class Zigbee2mqttHaConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a sidecar."""

    VERSION = 1
    # 1.2: the options lost the refresh interval (async_migrate_entry).
    MINOR_VERSION = 2

    def __init__(self) -> None:
        """Start with nothing discovered."""
        self._discovered_url = ""
        self._discovered_token = ""
        self._discovered_name = ""

    def _fingerprint(
        self, url: str, user_input: Mapping[str, Any], errors: dict[str, str]
    ) -> str | None:
        """The pin the user gave, normalized ("" for none); None (with an error) if unusable."""
        given = str(user_input.get(CONF_FINGERPRINT) or "").strip()
        if not given:
            return ""
        if URL(url).scheme != "https":
            errors[CONF_FINGERPRINT] = "fingerprint_needs_https"
            return None
        try:
            return normalize_fingerprint(given)
        except ValueError:
            errors[CONF_FINGERPRINT] = "invalid_fingerprint"
            return None

    async def _async_validate(
        self,
        url: str,
        token: str,
        errors: dict[str, str],
        fingerprint: str | None = None,
    ) -> SidecarInfo | None:
        """Ask the sidecar who it is; on failure fill `errors` and return None."""
        client = SidecarClient(
            url,
            token,
            async_get_clientsession(self.hass),
            fingerprint=fingerprint or None,
        )
        try:
            return await client.info()
        except SidecarAuthenticationError:
            errors[CONF_TOKEN] = "invalid_auth"
        except SidecarCertificateError as err:
            errors[CONF_FINGERPRINT] = (
                "fingerprint_mismatch" if err.pinned else "certificate_untrusted"
            )
        except SidecarConnectionError:
            errors[CONF_URL] = "cannot_connect"
        except Exception:  # noqa: BLE001 - a config flow must answer, whatever went wrong
            LOGGER.exception("Unexpected error while validating %s", url)
            errors["base"] = "unknown"
        return None

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the URL and token."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = _normalize_url(user_input[CONF_URL])
            fingerprint = self._fingerprint(url, user_input, errors)
            info = (
                None
                if fingerprint is None
                else await self._async_validate(
                    url, user_input[CONF_TOKEN], errors, fingerprint
                )
            )
            if info is not None:
                await self.async_set_unique_id(
                    info.instance_id, raise_on_progress=False
                )
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=info.cluster_name,
                    data=_entry_data(url, user_input[CONF_TOKEN], fingerprint),
                )
        else:
            user_input = {}

        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_URL, default=user_input.get(CONF_URL, "http://")
                    ): URL_SELECTOR,
                    vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
                    **_fingerprint_field(user_input.get(CONF_FINGERPRINT)),
                }
            ),
            errors=errors,
        )

    async def async_step_zeroconf(
        self, discovery_info: ZeroconfServiceInfo
    ) -> ConfigFlowResult:
        """A sidecar announced itself on the LAN (mDNS, `_zigbee2mqtt-ha._tcp`)."""
        properties = discovery_info.properties
        instance_id = str(properties.get(TXT_INSTANCE_ID) or "")
        if not instance_id or discovery_info.port is None:
            return self.async_abort(reason="invalid_discovery_info")
        if str(properties.get(TXT_API_VERSION)) != API_VERSION:
            return self.async_abort(reason="unsupported_api_version")
        url = _announced_url(discovery_info)
        await self.async_set_unique_id(instance_id)
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, instance_id
        )
        if entry is not None and (
            # The add-on's discovery keeps its own entry's URL (Supervisor's network).
            entry.source == SOURCE_HASSIO
            # A host name keeps working when the address changes (and matches its TLS
            # certificate); only an address typed or announced before is replaced.
            or not _host_is_an_address(entry.data[CONF_URL])
        ):
            return self.async_abort(reason="already_configured")
        # A known sidecar that moved: the entry follows it and reloads.
        self._abort_if_unique_id_configured(updates={CONF_URL: url})
        self._discovered_url = url
        self._discovered_name = discovery_info.name.removesuffix(
            f".{discovery_info.type}"
        )
        self.context["title_placeholders"] = {"name": self._discovered_name}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the discovered sidecar's token (mDNS cannot carry a secret)."""
        errors: dict[str, str] = {}
        url = self._discovered_url
        if user_input is not None:
            fingerprint = self._fingerprint(url, user_input, errors)
            info = (
                None
                if fingerprint is None
                else await self._async_validate(
                    url, user_input[CONF_TOKEN], errors, fingerprint
                )
            )
            if info is not None:
                if info.instance_id != self.unique_id:
                    return self.async_abort(reason="wrong_sidecar")
                return self.async_create_entry(
                    title=info.cluster_name,
                    data=_entry_data(url, user_input[CONF_TOKEN], fingerprint),
                )
        schema: dict[Any, Any] = {vol.Required(CONF_TOKEN): TOKEN_SELECTOR}
        if URL(url).scheme == "https":
            # It announced tls=1: most likely its own self-signed certificate, to be pinned.
            schema.update(_fingerprint_field(None))
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=vol.Schema(schema),
            description_placeholders={
                "name": self._discovered_name,
                "url": self._discovered_url,
            },
            errors=errors,
        )

    async def async_step_hassio(
        self, discovery_info: HassioServiceInfo
    ) -> ConfigFlowResult:
        """The zigbee2mqtt-ha add-on published its URL and token through the Supervisor."""
        config = discovery_info.config
        url = _normalize_url(str(config.get(CONF_URL) or ""))
        token = str(config.get(CONF_TOKEN) or "")
        if not url or not token:
            return self.async_abort(reason="invalid_discovery_info")
        instance_id = str(config.get("instance_id") or "")
        if not instance_id:
            errors: dict[str, str] = {}
            info = await self._async_validate(url, token, errors)
            if info is None:
                return self.async_abort(reason=next(iter(errors.values())))
            instance_id = info.instance_id
        await self.async_set_unique_id(instance_id)
        # The add-on restarted with another token, or moved: the entry follows.
        self._abort_if_unique_id_configured(updates={CONF_URL: url, CONF_TOKEN: token})
        self._discovered_url = url
        self._discovered_token = token
        self._discovered_name = discovery_info.name
        self.context["title_placeholders"] = {"name": discovery_info.name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask whether to add the add-on's sidecar; nothing to type."""
        errors: dict[str, str] = {}
        if user_input is not None:
            info = await self._async_validate(
                self._discovered_url, self._discovered_token, errors
            )
            if info is not None:
                if info.instance_id != self.unique_id:
                    return self.async_abort(reason="wrong_sidecar")
                return self.async_create_entry(
                    title=info.cluster_name,
                    data={
                        CONF_URL: self._discovered_url,
                        CONF_TOKEN: self._discovered_token,
                    },
                )
            # No field to show them on.
            errors = {"base": next(iter(errors.values()))}
        return self.async_show_form(
            step_id="hassio_confirm",
            description_placeholders={"addon": self._discovered_name},
            errors=errors,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The sidecar rejected the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token."""
        errors: dict[str, str] = {}
        entry = self._get_reauth_entry()
        if user_input is not None:
            info = await self._async_validate(
                entry.data[CONF_URL],
                user_input[CONF_TOKEN],
                errors,
                entry.data.get(CONF_FINGERPRINT),
            )
            if info is not None:
                await self.async_set_unique_id(info.instance_id)
                self._abort_if_unique_id_mismatch(reason="wrong_sidecar")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]}
                )

        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): TOKEN_SELECTOR}),
            description_placeholders={"url": entry.data[CONF_URL]},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the URL (the sidecar moved) and token."""
        errors: dict[str, str] = {}
        entry = self._get_reconfigure_entry()
        url = entry.data[CONF_URL]
        if user_input is not None:
            url = _normalize_url(user_input[CONF_URL])
            fingerprint = self._fingerprint(url, user_input, errors)
            info = (
                None
                if fingerprint is None
                else await self._async_validate(
                    url, user_input[CONF_TOKEN], errors, fingerprint
                )
            )
            if info is not None:
                await self.async_set_unique_id(info.instance_id)
                self._abort_if_unique_id_mismatch(reason="wrong_sidecar")
                # Replaced whole: a pin left out is a pin removed.
                return self.async_update_reload_and_abort(
                    entry, data=_entry_data(url, user_input[CONF_TOKEN], fingerprint)
                )

        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_URL, default=url): URL_SELECTOR,
                    vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
                    **_fingerprint_field(entry.data.get(CONF_FINGERPRINT)),
                }
            ),
            errors=errors,
        )

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: Zigbee2mqttHaConfigEntry) -> OptionsFlow:
        """Options: which events to fire."""
        return Zigbee2mqttHaOptionsFlow()


class Zigbee2mqttHaOptionsFlow(OptionsFlowWithReload):
    """Which Home Assistant events to fire."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the options."""
        if user_input is not None:
            return self.async_create_entry(
                data={CONF_EVENTS: list(user_input[CONF_EVENTS])}
            )
        options = self.config_entry.options
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_EVENTS, default=options.get(CONF_EVENTS, DEFAULT_EVENTS)
                    ): SelectSelector(
                        SelectSelectorConfig(
                            options=list(EVENT_TYPES),
                            multiple=True,
                            translation_key=CONF_EVENTS,
                        )
                    ),
                }
            ),
        )
