"""Helpers for the zigbee2mqtt-ha integration."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Protocol

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .api import (
    SidecarAuthenticationError,
    SidecarConnectionError,
    SidecarError,
    SidecarResponseError,
)
from .const import DOMAIN

# The API's error codes that have a message of their own in translations/en.json.
TRANSLATED_API_ERRORS = frozenset(
    {
        "operation_running",
        "precondition_failed",
        "node_unreachable",
        "not_implemented",
        "storage_unavailable",
    }
)
# 507 Insufficient Storage: the sidecar's state dir refuses writes, whatever code a (newer)
# sidecar puts in the body.
STORAGE_STATUS = 507


def _translation_key(error: SidecarResponseError) -> str:
    """The exception translation for one of the API's refusals."""
    if error.code in TRANSLATED_API_ERRORS:
        return error.code
    if error.status == STORAGE_STATUS:
        return "storage_unavailable"
    return "api_error"


class SidecarCaller(Protocol):
    """What the decorator needs of the object whose method it wraps (the coordinator).

    A protocol rather than the coordinator's class, which imports this module.
    """

    @property
    def hass(self) -> HomeAssistant:
        """Home Assistant."""

    @property
    def config_entry(self) -> ConfigEntry[Any]:
        """The entry, whose re-authentication a rejected token starts."""


def sidecar_errors[CallerT: SidecarCaller, **P, R](
    func: Callable[Concatenate[CallerT, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[CallerT, P], Coroutine[Any, Any, R]]:
    """Turn the client's errors into translated Home Assistant errors.

    Every button press, switch toggle and action reaches the sidecar through a coordinator
    method wearing this decorator.
    """

    async def handler(self: CallerT, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await func(self, *args, **kwargs)
        except SidecarAuthenticationError as error:
            self.config_entry.async_start_reauth(self.hass)
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from error
        except SidecarConnectionError as error:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(error)},
            ) from error
        except SidecarResponseError as error:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=_translation_key(error),
                translation_placeholders={
                    "code": error.code,
                    "message": error.message,
                    "operation_id": str(error.details.get("operation_id", "")),
                },
            ) from error
        except SidecarError as error:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="unknown_error",
                translation_placeholders={"error": str(error)},
            ) from error

    return handler
