"""Constants for the zigbee2mqtt-ha integration."""

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "zigbee2mqtt_ha"
LOGGER = logging.getLogger(__package__)

CONF_EVENTS: Final = "events"
CONF_REFRESH_INTERVAL: Final = "refresh_interval"

EVENT_SWITCHOVER: Final = f"{DOMAIN}_switchover"
EVENT_FAILOVER: Final = f"{DOMAIN}_failover"
# Operation kinds whose end fires a Home Assistant event, and the event each fires.
EVENT_TYPES: Final = {"switchover": EVENT_SWITCHOVER, "failover": EVENT_FAILOVER}
DEFAULT_EVENTS: Final = ["switchover", "failover"]

# The event stream pushes every change; the full refresh only repairs what a lost event missed
# and notices a sidecar that went away without closing the stream.
DEFAULT_REFRESH_INTERVAL: Final = 60
MIN_REFRESH_INTERVAL: Final = 10
MAX_REFRESH_INTERVAL: Final = 3600

EVENT_STREAM_RETRY_MINIMUM: Final = timedelta(seconds=1)
EVENT_STREAM_RETRY_MAXIMUM: Final = timedelta(seconds=30)

# Alerts that become repair issues, with the translation key.
REPAIR_ALERTS: Final = ("split_brain", "no_standby_ready")
