"""Config flow: the sidecar's URL and token, validated against the sidecar itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, override

from homeassistant.config_entries import (
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

from .api import (
    SidecarAuthenticationError,
    SidecarClient,
    SidecarConnectionError,
    SidecarInfo,
)
from .compat import vol
from .const import CONF_EVENTS, DEFAULT_EVENTS, DOMAIN, EVENT_TYPES, LOGGER
from .coordinator import Zigbee2mqttHaConfigEntry

URL_SELECTOR = TextSelector(
    TextSelectorConfig(type=TextSelectorType.URL, autocomplete="off")
)
TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


def _normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


class Zigbee2mqttHaConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a sidecar."""

    VERSION = 1
    # 1.2: the options lost the refresh interval (async_migrate_entry).
    MINOR_VERSION = 2

    async def _async_validate(
        self, url: str, token: str, errors: dict[str, str]
    ) -> SidecarInfo | None:
        """Ask the sidecar who it is; on failure fill `errors` and return None."""
        client = SidecarClient(url, token, async_get_clientsession(self.hass))
        try:
            return await client.info()
        except SidecarAuthenticationError:
            errors[CONF_TOKEN] = "invalid_auth"
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
            info = await self._async_validate(url, user_input[CONF_TOKEN], errors)
            if info is not None:
                await self.async_set_unique_id(
                    info.instance_id, raise_on_progress=False
                )
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=info.cluster_name,
                    data={CONF_URL: url, CONF_TOKEN: user_input[CONF_TOKEN]},
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
                }
            ),
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
                entry.data[CONF_URL], user_input[CONF_TOKEN], errors
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
            info = await self._async_validate(url, user_input[CONF_TOKEN], errors)
            if info is not None:
                await self.async_set_unique_id(info.instance_id)
                self._abort_if_unique_id_mismatch(reason="wrong_sidecar")
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={CONF_URL: url, CONF_TOKEN: user_input[CONF_TOKEN]},
                )

        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_URL, default=url): URL_SELECTOR,
                    vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
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
