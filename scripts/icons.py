#!/usr/bin/env python3
"""Draws the app's PNG icons from favicon.svg's shapes: ./scripts/icons.py

The icons are committed; run this again only when the design changes. It
needs nothing but Python (no image library): the favicon is four shapes,
drawn here with signed distances, so edges are anti-aliased at any size.

  icon-192.png, icon-512.png   the favicon as it is, on a transparent ground
  icon-maskable-512.png        a full blue square with the camera in white,
                               inside the central circle a launcher may crop it to
  badge-96.png                 the camera's outline in white, for the status
                               bar (Android uses only its alpha)
"""

import math
import os
import struct
import zlib

BLUE = (0x0B, 0x5F, 0xCC)
WHITE = (0xFF, 0xFF, 0xFF)
HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "..", "assets")


def rounded_rect(x, y, w, h, r):
    """Signed distance (in viewBox units) to a rounded rectangle."""
    cx, cy = x + w / 2, y + h / 2
    hx, hy = w / 2 - r, h / 2 - r

    def d(px, py):
        qx, qy = abs(px - cx) - hx, abs(py - cy) - hy
        out = math.hypot(max(qx, 0.0), max(qy, 0.0))
        return out + min(max(qx, qy), 0.0) - r

    return d


def circle(cx, cy, r):
    return lambda px, py: math.hypot(px - cx, py - cy) - r


# favicon.svg (viewBox 0 0 32 32), bottom to top: body, viewfinder, lens ring, lens.
BODY = rounded_rect(2, 8, 28, 18, 4)
TOP = rounded_rect(11, 4, 10, 5, 1.5)
RING = circle(16, 17, 6)
LENS = circle(16, 17, 3)


def draw(size, layers, ground=None, box=(0, 0, 32)):
    """RGBA rows of `size` px. `layers` are (distance, colour) drawn in order;
    `box` (x, y, side) is the part of the viewBox the picture shows."""
    bx, by, side = box
    unit = side / size  # viewBox units per pixel
    rows = []
    for j in range(size):
        row = bytearray()
        for i in range(size):
            px, py = bx + (i + 0.5) * unit, by + (j + 0.5) * unit
            r, g, b, a = (*ground, 1.0) if ground else (0, 0, 0, 0.0)
            for dist, colour in layers:
                # Coverage of the pixel from the distance to the edge.
                cov = min(1.0, max(0.0, 0.5 - dist(px, py) / unit))
                if cov == 0.0:
                    continue
                na = cov + a * (1 - cov)
                r, g, b = (
                    (c * cov + o * a * (1 - cov)) / na for c, o in zip(colour, (r, g, b))
                )
                a = na
            row += bytes((round(r), round(g), round(b), round(a * 255)))
        rows.append(bytes(row))
    return rows


def png(path, size, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + row for row in rows)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    with open(path, "wb") as f:
        f.write(data)
    print(f"{os.path.relpath(path)}: {len(data)} bytes")


def main():
    plain = [(BODY, BLUE), (TOP, BLUE), (RING, WHITE), (LENS, BLUE)]
    for size in (192, 512):
        png(os.path.join(ASSETS, f"icon-{size}.png"), size, draw(size, plain))
    # Maskable: the camera (x 2-30, y 4-26: its corners 18 units from its
    # centre) must fit the safe circle, of radius 40 % of the side. 48 units
    # of viewBox across give a radius of 19.2.
    inverse = [(BODY, WHITE), (TOP, WHITE), (RING, BLUE), (LENS, WHITE)]
    png(
        os.path.join(ASSETS, "icon-maskable-512.png"),
        512,
        draw(512, inverse, ground=BLUE, box=(16 - 24, 15 - 24, 48)),
    )
    # Badge: one colour; the lens is a hole (body minus ring, plus the lens).
    body = lambda px, py: min(BODY(px, py), TOP(px, py))
    hole = lambda px, py: max(body(px, py), -RING(px, py))
    badge = lambda px, py: min(hole(px, py), LENS(px, py))
    png(os.path.join(ASSETS, "badge-96.png"), 96, draw(96, [(badge, WHITE)], box=(0, 0, 32)))


if __name__ == "__main__":
    main()
