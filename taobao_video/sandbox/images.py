"""Small, valid, deterministic JPEG pictures (covers and main pictures) without an imaging library.

An 8x8 grey baseline JPEG needs only its DC coefficient: one Huffman code for the DC category, one for the
end-of-block. A flat picture of any size (:func:`flat_jpeg`, the covers, as big as their video) adds, per further
8x8 block, a code for "DC unchanged" and the end-of-block: 3 bits a block, about 5 kB for 1280x720. A comment
segment carries a label so every picture's bytes differ.
"""

from __future__ import annotations

import struct


def tiny_jpeg(level: int, label: str) -> bytes:
    """An 8x8 JPEG of grey ``level`` (0..255) whose comment segment holds ``label``."""
    if not 0 <= level <= 255:
        raise ValueError(f"grey level must be within 0..255, not {level}")
    diff = 8 * (level - 128)  # the DC coefficient of a flat block under the JPEG DCT scaling
    category = abs(diff).bit_length()
    comment = label.encode("utf-8")[:200]
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xFE, comment),
            _segment(0xDB, b"\x00" + b"\x01" * 64),  # quantisation table 0: all ones
            _segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + bytes([1, 0x11, 0])),
            _segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + bytes([category])),  # DC table: one 1-bit code
            _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),  # AC table: EOB only
            _segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0])),
            _scan(diff, category),
            b"\xff\xd9",
        )
    )


def flat_jpeg(width: int, height: int, level: int, label: str) -> bytes:
    """A ``width`` x ``height`` JPEG of grey ``level`` (0..255) whose comment segment holds ``label``."""
    if not 0 <= level <= 255:
        raise ValueError(f"grey level must be within 0..255, not {level}")
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise ValueError(f"picture size must be within 1..65535, not {width}x{height}")
    diff = 8 * (level - 128)
    category = abs(diff).bit_length()
    blocks = -(-width // 8) * -(-height // 8)
    # DC table: the first block's category as "0", category 0 ("unchanged") as "10" (a code of all ones is
    # reserved, so two 1-bit codes would not do); AC table: end-of-block as "0".
    dc_table = bytes([1, 1] + [0] * 14) + (bytes([category, 0]) if category else bytes([0, 1]))
    first = "0" + _dc_bits(diff, category) + "0"
    rest = "100" if category else "00"  # with category 0 first, "unchanged" is the 1-bit code
    if not category:
        dc_table = bytes([1] + [0] * 15) + b"\x00"
    bits = first + rest * (blocks - 1)
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xFE, label.encode("utf-8")[:200]),
            _segment(0xDB, b"\x00" + b"\x01" * 64),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])),
            _segment(0xC4, b"\x00" + dc_table),
            _segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),
            _segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0])),
            data,
            b"\xff\xd9",
        )
    )


def _dc_bits(diff: int, category: int) -> str:
    if category == 0:
        return ""
    return format(diff, f"0{category}b") if diff >= 0 else format(diff + (1 << category) - 1, f"0{category}b")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _scan(diff: int, category: int) -> bytes:
    if category == 0:
        value = ""
    elif diff >= 0:
        value = format(diff, f"0{category}b")
    else:
        value = format(diff + (1 << category) - 1, f"0{category}b")
    bits = "0" + value + "0"  # DC code, DC value, AC end-of-block
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return data.replace(b"\xff", b"\xff\x00")
