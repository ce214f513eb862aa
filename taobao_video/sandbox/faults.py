"""The seeded fault plan: which request gets which failure, reproducibly.

A ``Fault`` matches requests by target (``gateway`` or ``cdn``), optionally by item and method (for the CDN,
``method`` matches the HTTP verb). Each matching request draws from one ``random.Random`` seeded with the
sandbox seed, so the same request order gives the same failures run to run; a fault fires with probability
``rate`` and at most ``times`` times (None: unlimited). Faults are tried in list order; the first that fires
wins.

Gateway kinds, by where they strike (see gateway.py for the full order):

- in front of the gateway, never counted against the quota (a proxy answered, the platform saw nothing):
  ``http_500``, ``http_503``, ``html_200``;
- after the call was counted, instead of the item lookup: ``service_unavailable`` (code 10), ``isp_error``
  (code 15, ``isp.*``), ``rate_limit`` (code 7, ban of ``seconds``), ``empty``, ``not_json``, ``huge``, ``stall``
  (the headers go out, then the body waits ``seconds``: a client's read timeout on a call that was counted);
- on the rendered answer: ``control_chars`` (success bodies with raw control characters) and
  ``code_as_string`` (error codes sent as JSON strings); these only fire on an answer of the right kind.

CDN kinds: ``http_500``, ``reset``, ``truncate``, ``html_200``, ``stall``, ``expired``, ``no_range``,
``wrong_type``. Cover kinds (target ``cover``, the ``/cdn/cover/`` pictures): ``http_500``, ``html_200``,
``truncate`` (half the picture, then the connection closes).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

GATEWAY_FRONT_KINDS = frozenset({"http_500", "http_503", "html_200"})
GATEWAY_CALL_KINDS = frozenset({"service_unavailable", "isp_error", "rate_limit", "empty", "not_json", "huge", "stall"})
GATEWAY_SUCCESS_KINDS = frozenset({"control_chars"})
GATEWAY_ERROR_KINDS = frozenset({"code_as_string"})
GATEWAY_KINDS = GATEWAY_FRONT_KINDS | GATEWAY_CALL_KINDS | GATEWAY_SUCCESS_KINDS | GATEWAY_ERROR_KINDS
CDN_KINDS = frozenset({"http_500", "reset", "truncate", "html_200", "stall", "expired", "no_range", "wrong_type"})
COVER_KINDS = frozenset({"http_500", "html_200", "truncate"})
KINDS = {"gateway": GATEWAY_KINDS, "cdn": CDN_KINDS, "cover": COVER_KINDS}


@dataclass(frozen=True)
class Fault:
    """One failure to inject; see the module docstring for the kinds."""

    kind: str
    target: str = "gateway"
    times: int | None = None
    rate: float = 1.0
    num_iid: int | None = None
    method: str | None = None
    seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.target not in KINDS:
            raise ValueError(f"fault target must be 'gateway', 'cdn' or 'cover', not {self.target!r}")
        if self.kind not in KINDS[self.target]:
            known = ", ".join(sorted(KINDS[self.target]))
            raise ValueError(f"unknown {self.target} fault {self.kind!r}; known: {known}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], not {self.rate}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"fault times must be >= 0 or None, not {self.times}")
        if self.seconds < 0:
            raise ValueError(f"fault seconds must be >= 0, not {self.seconds}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """A fault from its JSON form (the admin endpoint); unknown keys are an error."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, target: str, method: str | None, num_iid: int | None) -> bool:
        return (
            self.target == target
            and (self.method is None or self.method == method)
            and (self.num_iid is None or self.num_iid == num_iid)
        )


class FaultPlan:
    """The active faults with their remaining counts, and the seeded dice. Thread-safe."""

    def __init__(self, seed: int, faults: Iterable[Fault] = ()) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._left: list[int | None] = []
        self._random = random.Random(seed)
        self.replace(faults)

    def replace(self, faults: Iterable[Fault]) -> None:
        """Install a new list (counts start afresh; the dice are re-seeded, so a plan replays exactly)."""
        faults = list(faults)
        with self._lock:
            self._faults = faults
            self._left = [f.times for f in faults]
            self._random = random.Random(self._seed)

    def clear(self) -> None:
        self.replace(())

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def pick(
        self, target: str, kinds: Collection[str], method: str | None = None, num_iid: int | None = None
    ) -> Fault | None:
        """The fault among ``kinds`` that strikes this request, if any; firing spends one of its ``times``."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                left = self._left[index]
                if fault.kind not in kinds or left == 0 or not fault.matches(target, method, num_iid):
                    continue
                if fault.rate < 1.0 and self._random.random() >= fault.rate:
                    continue
                if left is not None:
                    self._left[index] = left - 1
                return fault
        return None
