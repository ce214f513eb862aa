"""Tiny, valid, deterministic JPEG pictures (covers and main pictures) without an imaging library.

An 8x8 grey baseline JPEG needs only its DC coefficient: one Huffman code for the DC category, one for the
end-of-block. A comment segment carries a label so every picture's bytes differ.
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
