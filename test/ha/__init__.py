"""Tests of the zigbee2mqtt-ha Home Assistant integration."""
