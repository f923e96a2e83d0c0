"""Draws the integration's brand images into custom_components/zigbee2mqtt_ha/brand/.

Home Assistant (2026.3 and newer) and HACS show a custom integration's own `brand/` images
instead of a placeholder. The picture: two zigbee2mqtt nodes, the active one lit, the standby
one dark, and the arrow of a switchover between them, on a tile that reads on light and dark
themes; the logo adds the name. Sizes follow the brands repository's rules: icons square,
256 and 512 px; logos 128 and 256 px high.

Needs Pillow; the Home Assistant venvs in the test chroot have it. Run there, from the
repository root:

    /opt/ha-venv/bin/python scripts/brand_images.py [output dir]

test/ha/test_brand.py draws them again and compares them with the committed files.
"""

from __future__ import annotations

from pathlib import Path
import sys

from PIL import Image, ImageDraw, ImageFont

TILE = (17, 94, 89, 255)  # deep teal
TILE_EDGE = (11, 68, 64, 255)
NODE = (255, 255, 255, 255)
ACTIVE_LED = (255, 193, 7, 255)  # zigbee2mqtt amber
STANDBY_LED = (120, 144, 156, 255)
ARROW = (255, 193, 7, 255)
TEXT_LIGHT_THEME = (33, 33, 33, 255)
TEXT_DARK_THEME = (245, 245, 245, 255)
NAME = "zigbee2mqtt HA"

# Drawn this many times larger, then scaled down: Pillow's shapes have no anti-aliasing.
SUPERSAMPLE = 4


def _node(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], *, active: bool
) -> None:
    """One node: a server box, filled when active, outlined when standby, with its LED."""
    left, top, right, bottom = box
    height = bottom - top
    radius = height // 5
    line = max(height // 9, 1)
    if active:
        draw.rounded_rectangle(box, radius=radius, fill=NODE)
    else:
        draw.rounded_rectangle(box, radius=radius, outline=NODE, width=line)
    led = height // 4
    cx, cy = left + height // 2, top + height // 2
    draw.ellipse(
        (cx - led // 2, cy - led // 2, cx + led // 2, cy + led // 2),
        fill=ACTIVE_LED if active else STANDBY_LED,
    )
    # Drive slots, right of the LED.
    slot_left = left + height
    slot_right = right - height // 3
    for offset in (-height // 7, height // 7):
        y = cy + offset
        draw.line(
            (slot_left, y, slot_right, y),
            fill=TILE if active else NODE,
            width=line,
        )


def _arrow(draw: ImageDraw.ImageDraw, size: int) -> None:
    """The switchover: an arc from the top node down to the bottom one, with its head."""
    width = size // 22
    box = (int(size * 0.60), int(size * 0.30), int(size * 0.90), int(size * 0.70))
    draw.arc(box, start=-80, end=80, fill=ARROW, width=width)
    # Arrow head at the arc's lower end, pointing left at the bottom node.
    tip_x, tip_y = int(size * 0.74), int(size * 0.695)
    head = size // 11
    draw.polygon(
        [
            (tip_x - head // 2, tip_y),
            (tip_x + head // 2, tip_y - head // 2),
            (tip_x + head // 2, tip_y + head // 2),
        ],
        fill=ARROW,
    )


def icon(size: int) -> Image.Image:
    """The square icon, `size` pixels wide."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (0, 0, big - 1, big - 1),
        radius=big // 5,
        fill=TILE,
        outline=TILE_EDGE,
        width=big // 64,
    )
    node_left, node_right = int(big * 0.14), int(big * 0.66)
    node_height = int(big * 0.24)
    top_node = int(big * 0.18)
    bottom_node = big - top_node - node_height
    _node(draw, (node_left, top_node, node_right, top_node + node_height), active=True)
    _node(
        draw,
        (node_left, bottom_node, node_right, bottom_node + node_height),
        active=False,
    )
    _arrow(draw, big)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int, text: tuple[int, int, int, int]) -> Image.Image:
    """The icon followed by the name, `height` pixels high."""
    mark = icon(height)
    font = ImageFont.load_default(size=int(height * 0.42))
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = (
        round(edge) for edge in probe.textbbox((0, 0), NAME, font=font)
    )
    gap = height // 5
    image = Image.new("RGBA", (height + gap + (right - left), height), (0, 0, 0, 0))
    image.alpha_composite(mark, (0, 0))
    draw = ImageDraw.Draw(image)
    draw.text(
        (height + gap - left, (height - (bottom - top)) // 2 - top),
        NAME,
        font=font,
        fill=text,
    )
    return image


def images() -> dict[str, Image.Image]:
    """Every brand image by file name."""
    return {
        "icon.png": icon(256),
        "icon@2x.png": icon(512),
        "logo.png": logo(128, TEXT_LIGHT_THEME),
        "logo@2x.png": logo(256, TEXT_LIGHT_THEME),
        "dark_logo.png": logo(128, TEXT_DARK_THEME),
        "dark_logo@2x.png": logo(256, TEXT_DARK_THEME),
    }


def main() -> None:
    """Write the images."""
    repo = Path(__file__).resolve().parents[1]
    out = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else (repo / "custom_components" / "zigbee2mqtt_ha" / "brand")
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, image in images().items():
        image.save(out / name, optimize=True)
        print(f"{out / name}: {image.width}x{image.height}")


if __name__ == "__main__":
    main()
