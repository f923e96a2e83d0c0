"""Constants for the zigbee2mqtt-ha integration."""

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "zigbee2mqtt_ha"
LOGGER = logging.getLogger(__package__)

CONF_EVENTS: Final = "events"
# The sidecar's API certificate, pinned ("SHA256:AB:CD:…", as its log prints it): for a
# self-signed certificate, which no CA vouches for.
CONF_FINGERPRINT: Final = "tls_fingerprint"

EVENT_SWITCHOVER: Final = f"{DOMAIN}_switchover"
EVENT_FAILOVER: Final = f"{DOMAIN}_failover"
# Operation kinds whose end fires a Home Assistant event, and the event each fires.
EVENT_TYPES: Final = {"switchover": EVENT_SWITCHOVER, "failover": EVENT_FAILOVER}
DEFAULT_EVENTS: Final = ["switchover", "failover"]

# The event stream pushes every change, a full refresh follows each (re)connection and a silent
# stream counts as broken after 45 s: the periodic full refresh is only a safety net for an
# event lost in some way nobody foresaw. Not an option (Home Assistant's rules: polling is the
# user's `homeassistant.update_entity`).
FULL_REFRESH_INTERVAL: Final = timedelta(minutes=5)

EVENT_STREAM_RETRY_MINIMUM: Final = timedelta(seconds=1)
EVENT_STREAM_RETRY_MAXIMUM: Final = timedelta(seconds=30)

# Alerts that become repair issues, with the translation key.
REPAIR_ALERTS: Final = ("split_brain", "no_standby_ready", "storage_unavailable")
