"""Real, deterministic MP4 files of an exact byte size, served from memory by the sandbox CDN.

Why: the emulator's CDN must hand out videos that players, ``ffprobe`` and ``mutagen`` accept, that last the
advertised duration and weigh exactly the advertised size, and that can be streamed at benchmark speed (or
ranged into anywhere in a 1 GiB file) without ever building the whole file.

Layout ("faststart": ``moov`` before the media, so a browser can play while it streams)::

    ftyp | moov | mdat (H.264 samples) | free (pseudo-random padding up to size_bytes)

The video track is decodable H.264 (Constrained Baseline, CAVLC) at one frame per second; the last sample is
shortened so the track ends exactly at the duration (stored in milliseconds). Frame 0 is an IDR picture of
one flat colour picked from the seed: its first macroblock is I_PCM carrying the colour and every other one is
Intra16x16 DC prediction without residual, so the colour spreads over the picture at one byte per macroblock.
Every later frame is a P picture made of a single ``mb_skip_run``. The sample table therefore stays tiny and
the file is a few kilobytes before padding.

Every byte depends only on the constructor arguments (SHAKE-128 of the seed, never ``hash()``), so the same
arguments give the same file in every process and Python version.
"""

from __future__ import annotations

import hashlib
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

TIMESCALE = 1000  # movie and media ticks per second: durations are exact to the millisecond
FRAME_INTERVAL_MS = 1000  # one frame per second keeps stts/stsz a few entries long
MAX_DURATION_MS = 86_400_000  # a day; keeps the sample table (one entry per second) small
MAX_SIZE = 2**32 - 1  # every box uses 32-bit sizes
BLOCK_SIZE = 64 * 1024  # padding is generated per block, so read() costs O(length) anywhere in the file
_CACHED_BLOCKS = 8  # recently generated padding blocks kept per instance (512 KiB at most)

_LOG2_MAX_FRAME_NUM = 4  # frame_num wraps at 16, as the sliding window allows
_PROFILE_IDC = 66  # Baseline...
_CONSTRAINT_FLAGS = 0xC0  # ...with constraint_set0/1: Constrained Baseline, which every browser decodes
_FREE_HEADER = 8

# (level_idc, MaxFS in macroblocks), H.264 Table A-1. At one frame per second MaxMBPS never binds.
_LEVELS = (
    (10, 99),
    (11, 396),
    (21, 792),
    (22, 1620),
    (30, 1620),
    (31, 3600),
    (32, 5120),
    (40, 8192),
    (42, 8704),
    (50, 22080),
    (51, 36864),
)


class _BitWriter:
    """Big-endian bit writer for the RBSP syntax of H.264 (u(n), ue(v), se(v))."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0

    def bits(self, text: str) -> None:
        self._parts.append(text)
        self._length += len(text)

    def u(self, nbits: int, value: int) -> None:
        if value >> nbits:
            raise ValueError(f"{value} does not fit in {nbits} bits")
        self.bits(format(value, f"0{nbits}b"))

    def ue(self, value: int) -> None:
        self.bits(_ue_bits(value))

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        self.bits("0" * (-self._length % 8))

    def raw(self, data: bytes) -> None:
        if self._length % 8:
            raise ValueError("raw bytes must start on a byte boundary")
        self.bits(format(int.from_bytes(data, "big"), f"0{8 * len(data)}b"))

    def rbsp(self) -> bytes:
        """Close with rbsp_trailing_bits (a stop bit, then zeros to the byte boundary)."""
        self.bits("1")
        self.align_zero()
        return int("".join(self._parts), 2).to_bytes(self._length // 8, "big")


def _ue_bits(value: int) -> str:
    code = format(value + 1, "b")
    return "0" * (len(code) - 1) + code


def _nal(ref_idc: int, unit_type: int, rbsp: bytes) -> bytes:
    """Wrap an RBSP into a NAL unit, inserting emulation-prevention bytes (H.264 7.4.1)."""
    header = bytes([(ref_idc << 5) | unit_type])
    if b"\x00\x00" not in rbsp:
        return header + rbsp
    out = bytearray(header)
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class _Geometry:
    """Picture size in pixels and in macroblocks, with the H.264 level that fits it."""

    width: int
    height: int
    level_idc: int

    @classmethod
    def of(cls, width: int, height: int) -> _Geometry:
        probe = cls(width, height, 0)
        for level_idc, max_fs in _LEVELS:
            side = math.isqrt(8 * max_fs)  # A.3.1: neither side may exceed sqrt(8 * MaxFS) macroblocks
            if probe.mbs <= max_fs and probe.mbs_wide <= side and probe.mbs_high <= side:
                return cls(width, height, level_idc)
        raise ValueError(f"{width}x{height} is larger than any H.264 level allows")

    @property
    def mbs_wide(self) -> int:
        return -(-self.width // 16)

    @property
    def mbs_high(self) -> int:
        return -(-self.height // 16)

    @property
    def mbs(self) -> int:
        return self.mbs_wide * self.mbs_high


def _sps(geo: _Geometry) -> bytes:
    w = _BitWriter()
    w.u(8, _PROFILE_IDC)
    w.u(8, _CONSTRAINT_FLAGS)
    w.u(8, geo.level_idc)
    w.ue(0)  # seq_parameter_set_id
    w.ue(_LOG2_MAX_FRAME_NUM - 4)
    w.ue(2)  # pic_order_cnt_type 2: output order = decoding order, no POC syntax in slices
    w.ue(1)  # max_num_ref_frames
    w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(geo.mbs_wide - 1)
    w.ue(geo.mbs_high - 1)
    w.u(1, 1)  # frame_mbs_only_flag
    w.u(1, 1)  # direct_8x8_inference_flag
    _write_cropping(w, geo)
    _write_vui(w)
    return _nal(3, 7, w.rbsp())


def _write_cropping(w: _BitWriter, geo: _Geometry) -> None:
    """Crop the coded macroblock grid back to the display size; 4:2:0 crops in units of 2 pixels."""
    right = (16 * geo.mbs_wide - geo.width) // 2
    bottom = (16 * geo.mbs_high - geo.height) // 2
    w.u(1, 1 if right or bottom else 0)
    if right or bottom:
        for offset in (0, right, 0, bottom):
            w.ue(offset)


def _write_vui(w: _BitWriter) -> None:
    """Only bitstream_restriction: it tells decoders no frame is reordered, so they output at once."""
    w.u(1, 1)  # vui_parameters_present_flag
    w.bits("0000")  # aspect_ratio, overscan, video_signal_type, chroma_loc: absent
    w.bits("0000")  # timing_info, nal_hrd, vcl_hrd, pic_struct: absent (the container has the timing)
    w.u(1, 1)  # bitstream_restriction_flag
    w.u(1, 1)  # motion_vectors_over_pic_boundaries_flag
    for value in (2, 1, 16, 16, 0, 1):  # bytes/bits denominators, log2 max mv, num_reorder_frames, dpb
        w.ue(value)


def _pps() -> bytes:
    w = _BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.bits("00")  # CAVLC, no bottom-field POC
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.bits("000")  # weighted_pred_flag, weighted_bipred_idc
    for _ in range(3):
        w.se(0)  # pic_init_qp/qs_minus26, chroma_qp_index_offset
    w.bits("000")  # deblocking control, constrained intra, redundant_pic_cnt
    return _nal(3, 8, w.rbsp())


# Intra16x16 DC prediction, no coded block pattern (mb_type 3), chroma DC prediction, mb_qp_delta 0, then the
# coeff_token saying the luma DC block is empty: "1" when nC < 2, the 6-bit fixed code when nC >= 8.
_MB_DC = _ue_bits(3) + _ue_bits(0) + _ue_bits(0) + "1"
_MB_DC_NEXT_TO_PCM = _ue_bits(3) + _ue_bits(0) + _ue_bits(0) + "000011"


def _idr_picture(geo: _Geometry, colour: bytes) -> bytes:
    """One flat picture of ``colour`` (Y, Cb, Cr): an I_PCM macroblock that the DC predictions copy."""
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(7)  # slice_type I, and every slice of the picture is I
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, 0)  # frame_num
    w.ue(0)  # idr_pic_id
    w.bits("00")  # no_output_of_prior_pics_flag, long_term_reference_flag
    w.se(0)  # slice_qp_delta
    w.ue(25)  # mb_type I_PCM
    w.align_zero()
    w.raw(colour[0:1] * 256 + colour[1:2] * 64 + colour[2:3] * 64)
    # 9.2.1: a neighbour that is I_PCM counts as 16 coefficients, so the macroblocks right of and below the
    # PCM one read their coeff_token with nC = 16; everything else sees empty neighbours (nC = 0).
    near_pcm = {1, geo.mbs_wide}
    for address in range(1, geo.mbs):
        w.bits(_MB_DC_NEXT_TO_PCM if address in near_pcm else _MB_DC)
    return _nal(3, 5, w.rbsp())


def _skip_picture(geo: _Geometry, frame_num: int) -> bytes:
    """A P picture that repeats the previous one: every macroblock skipped in one run."""
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(5)  # slice_type P, and every slice of the picture is P
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, frame_num % (1 << _LOG2_MAX_FRAME_NUM))
    w.bits("000")  # no num_ref_idx override, no ref list modification, sliding-window marking
    w.se(0)  # slice_qp_delta
    w.ue(geo.mbs)  # mb_skip_run
    return _nal(2, 1, w.rbsp())


def _seed_colour(seed: int) -> bytes:
    """A mid-range (Y, Cb, Cr) from the seed; never 0, so no emulation prevention can change the size."""
    digest = hashlib.sha256(b"taobao_video.sandbox.mp4 colour " + str(seed).encode()).digest()
    return bytes([32 + digest[0] % 192, 64 + digest[1] % 128, 64 + digest[2] % 128])


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", flags), *payload)  # version 0 in the top byte


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _mvhd(duration_ms: int) -> bytes:
    return _full_box(
        b"mvhd",
        0,
        struct.pack(">IIIIIH10x", 0, 0, TIMESCALE, duration_ms, 0x10000, 0x100),
        _MATRIX,
        bytes(24),
        struct.pack(">I", 2),
    )


def _tkhd(duration_ms: int, geo: _Geometry) -> bytes:
    return _full_box(
        b"tkhd",
        3,
        struct.pack(">IIIII8xhhH2x", 0, 0, 1, 0, duration_ms, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", geo.width << 16, geo.height << 16),
    )


def _mdhd(duration_ms: int) -> bytes:
    return _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration_ms, 0x55C4, 0))  # "und"


def _avc1(geo: _Geometry, sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes([1, _PROFILE_IDC, _CONSTRAINT_FLAGS, geo.level_idc, 0xFF, 0xE1]),
        struct.pack(">H", len(sps)),
        sps,
        b"\x01",
        struct.pack(">H", len(pps)),
        pps,
    )
    name = b"taobao-video sandbox"
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),
        bytes(16),
        struct.pack(">HHIIIH", geo.width, geo.height, 0x480000, 0x480000, 0, 1),
        bytes([len(name)]) + name.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )


def _frame_durations(duration_ms: int) -> list[tuple[int, int]]:
    """stts entries (count, delta): whole seconds, then the remainder as the last, shorter frame."""
    whole, rest = divmod(duration_ms, FRAME_INTERVAL_MS)
    entries = [(whole, FRAME_INTERVAL_MS)] if whole else []
    return [*entries, (1, rest)] if rest else entries


def _stbl(geo: _Geometry, duration_ms: int, sizes: list[int], chunk_offset: int) -> bytes:
    stts = _frame_durations(duration_ms)
    return _box(
        b"stbl",
        _full_box(b"stsd", 0, struct.pack(">I", 1), _avc1(geo, _sps(geo), _pps())),
        _full_box(b"stts", 0, struct.pack(f">I{2 * len(stts)}I", len(stts), *(n for e in stts for n in e))),
        _full_box(b"stss", 0, struct.pack(">II", 1, 1)),  # only the first sample is a sync sample
        _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),  # one chunk holds every sample
        _full_box(b"stsz", 0, struct.pack(f">II{len(sizes)}I", 0, len(sizes), *sizes)),
        _full_box(b"stco", 0, struct.pack(">II", 1, chunk_offset)),
    )


def _moov(geo: _Geometry, duration_ms: int, sizes: list[int], chunk_offset: int) -> bytes:
    hdlr = _full_box(b"hdlr", 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    dinf = _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"url ", 1)))
    minf = _box(b"minf", _full_box(b"vmhd", 1, bytes(8)), dinf, _stbl(geo, duration_ms, sizes, chunk_offset))
    mdia = _box(b"mdia", _mdhd(duration_ms), hdlr, minf)
    return _box(b"moov", _mvhd(duration_ms), _box(b"trak", _tkhd(duration_ms, geo), mdia))


_FTYP = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")


def _media_file(geo: _Geometry, duration_ms: int, seed: int) -> bytes:
    """ftyp, moov and mdat: the whole playable file, before any padding."""
    count = -(-duration_ms // FRAME_INTERVAL_MS)
    pictures = [_idr_picture(geo, _seed_colour(seed))]
    skips = [_skip_picture(geo, frame_num) for frame_num in range(1 << _LOG2_MAX_FRAME_NUM)]
    pictures += [skips[n % len(skips)] for n in range(1, count)]  # every frame is a reference: n % 16
    samples = [struct.pack(">I", len(p)) + p for p in pictures]  # avcC lengthSizeMinusOne = 3
    sizes = [len(s) for s in samples]
    moov_size = len(_moov(geo, duration_ms, sizes, 0))
    moov = _moov(geo, duration_ms, sizes, len(_FTYP) + moov_size + 8)
    return _FTYP + moov + _box(b"mdat", *samples)


def _validated(duration_s: float, width: int, height: int) -> tuple[_Geometry, int]:
    """Check the parameters; return the geometry and the duration in milliseconds."""
    if isinstance(duration_s, bool) or not isinstance(duration_s, int | float) or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a finite number, not {duration_s!r}")
    duration_ms = round(duration_s * 1000)
    if not 0 < duration_ms <= MAX_DURATION_MS:
        raise ValueError(f"duration_s must be between 0.001 and {MAX_DURATION_MS // 1000} s, not {duration_s}")
    for name, side in (("width", width), ("height", height)):
        if isinstance(side, bool) or not isinstance(side, int) or side < 2 or side % 2:
            raise ValueError(f"{name} must be a positive even integer (4:2:0 video), not {side!r}")
    return _Geometry.of(width, height), duration_ms


class Mp4Video:
    """A valid MP4 of ``duration_s`` seconds and exactly ``size_bytes`` bytes, read by slices on demand.

    ``width`` and ``height`` must be even (H.264 4:2:0 crops in 2-pixel units); they need not be multiples of
    16. The duration is stored to the millisecond. ``size_bytes`` must lie in
    ``[Mp4Video.min_size(duration_s, width, height), 4 GiB - 1]``. Only the small head (kilobytes) is kept in
    memory; the padding is regenerated per 64 KiB block, so memory stays flat for any size and thread-safe
    reads from a threaded HTTP server are fine.
    """

    def __init__(self, duration_s: float, width: int, height: int, size_bytes: int, seed: int) -> None:
        geo, duration_ms = _validated(duration_s, width, height)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, not {seed!r}")
        media = _media_file(geo, duration_ms, seed)
        _check_size(size_bytes, len(media) + _FREE_HEADER, duration_s, width, height)
        self._head = media + _box_header(b"free", size_bytes - len(media))
        self._size = size_bytes
        self._duration_ms = duration_ms
        self._seed_key = hashlib.shake_128(b"taobao_video.sandbox.mp4 padding " + str(seed).encode())
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._sha256: str | None = None

    @staticmethod
    def min_size(duration_s: float, width: int, height: int) -> int:
        """The smallest ``size_bytes`` accepted: the playable file plus an empty ``free`` box."""
        geo, duration_ms = _validated(duration_s, width, height)
        return len(_media_file(geo, duration_ms, 0)) + _FREE_HEADER

    @property
    def size(self) -> int:
        return self._size

    @property
    def duration_s(self) -> float:
        """The duration the file declares (the requested one, rounded to the millisecond)."""
        return self._duration_ms / 1000

    @property
    def head_size(self) -> int:
        """Bytes before the padding: ftyp, moov, mdat and the free box header."""
        return len(self._head)

    def read(self, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)``, clipped at the end of the file; cost is O(length)."""
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0, not {offset}, {length}")
        end = min(offset + length, self._size)
        if offset >= end:
            return b""
        parts = [self._head[offset:end]] if offset < len(self._head) else []
        position = max(offset, len(self._head))
        while position < end:
            index, within = divmod(position - len(self._head), BLOCK_SIZE)
            take = min(BLOCK_SIZE - within, end - position)
            block = self._block(index)
            parts.append(block if take == BLOCK_SIZE else block[within : within + take])
            position += take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def iter_chunks(self, start: int = 0, end: int | None = None, chunk_size: int = 262144) -> Iterator[bytes]:
        """Stream ``[start, end)`` (``end`` defaults to, and is clipped at, the file size)."""
        if start < 0 or chunk_size <= 0 or (end is not None and end < 0):
            raise ValueError(f"bad range or chunk size: start={start}, end={end}, chunk_size={chunk_size}")
        stop = self._size if end is None else min(end, self._size)
        return self._chunks(start, stop, chunk_size)

    def sha256(self) -> str:
        """Hex SHA-256 of the whole file, streamed once and then remembered."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            for chunk in self.iter_chunks(chunk_size=1 << 20):
                digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def __repr__(self) -> str:
        return f"Mp4Video(duration_s={self.duration_s}, size={self._size})"

    def _chunks(self, start: int, stop: int, chunk_size: int) -> Iterator[bytes]:
        for position in range(start, stop, chunk_size):
            yield self.read(position, min(chunk_size, stop - position))

    def _block(self, index: int) -> bytes:
        """Padding block ``index``: SHAKE-128 of the seed and the index, so any block costs the same."""
        with self._lock:
            block = self._blocks.get(index)
            if block is not None:
                self._blocks.move_to_end(index)
                return block
        shake = self._seed_key.copy()
        shake.update(index.to_bytes(8, "big"))
        block = shake.digest(BLOCK_SIZE)
        with self._lock:
            self._blocks[index] = block
            if len(self._blocks) > _CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        return block


def _box_header(kind: bytes, size: int) -> bytes:
    return struct.pack(">I4s", size, kind)


def _check_size(size_bytes: int, minimum: int, duration_s: float, width: int, height: int) -> None:
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int):
        raise TypeError(f"size_bytes must be an integer, not {size_bytes!r}")
    if size_bytes < minimum:
        raise ValueError(
            f"size_bytes={size_bytes} is below the {minimum} bytes a {duration_s} s {width}x{height} MP4 "
            "needs (see Mp4Video.min_size)"
        )
    if size_bytes > MAX_SIZE:
        raise ValueError(f"size_bytes={size_bytes} exceeds {MAX_SIZE} (4 GiB - 1: MP4 boxes use 32-bit sizes)")
