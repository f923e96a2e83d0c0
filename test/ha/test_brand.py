"""The brand images Home Assistant and HACS show for the integration."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from PIL import Image, ImageChops, ImageStat
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.zigbee2mqtt_ha.const import DOMAIN

REPO = Path(__file__).resolve().parents[2]
BRAND = REPO / "custom_components" / DOMAIN / "brand"
ICONS = {"icon.png": 256, "icon@2x.png": 512}
LOGOS = {
    "logo.png": 128,
    "logo@2x.png": 256,
    "dark_logo.png": 128,
    "dark_logo@2x.png": 256,
}


def brand_script() -> ModuleType:
    """scripts/brand_images.py, which drew the committed images."""
    spec = importlib.util.spec_from_file_location(
        "brand_images", REPO / "scripts" / "brand_images.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", [*ICONS, *LOGOS])
def test_images_have_the_sizes_the_brands_rules_ask(name: str) -> None:
    """Icons square at 256 and 512 px, logos 128 and 256 px high; PNG with transparency."""
    with Image.open(BRAND / name) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        if name in ICONS:
            assert image.size == (ICONS[name], ICONS[name])
        else:
            assert image.height == LOGOS[name]
            assert image.width > image.height
        # Trimmed: the picture reaches every edge, no empty margin.
        assert image.getbbox() == (0, 0, image.width, image.height)


def test_committed_images_are_what_the_script_draws() -> None:
    """Nobody edited a PNG by hand without the script (fonts may render a pixel apart)."""
    drawn = brand_script().images()
    assert set(drawn) == {*ICONS, *LOGOS}
    for name, image in drawn.items():
        with Image.open(BRAND / name) as committed:
            assert committed.size == image.size, name
            difference = ImageChops.difference(committed.convert("RGBA"), image)
            assert max(ImageStat.Stat(difference).mean) < 1.0, name


async def test_home_assistant_serves_the_integrations_own_icon(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """Home Assistant's brands endpoint answers with the files in brand/, not a placeholder."""
    assert await async_setup_component(hass, "brands", {})
    client = await hass_client()
    for name in (*ICONS, "logo.png", "dark_logo@2x.png"):
        response = await client.get(f"/api/brands/integration/{DOMAIN}/{name}")
        assert response.status == 200, name
        assert response.content_type == "image/png"
        assert await response.read() == (BRAND / name).read_bytes(), name
