"""TOP answers on the wire: request ids, JSON or XML bodies, and the two body-level quirks faults inject
(raw control characters inside strings, error codes sent as strings)."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any
from xml.sax.saxutils import escape

from taobao_video.sandbox.response import JSON_TYPE, Response

XML_TYPE = "text/xml;charset=UTF-8"
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_CONTROL_MARK = "\ue000ctrl\ue000"  # a private-use placeholder, swapped for raw control characters
_CONTROL_CHARS = "\x01\x02\t\x0b\x1f\n"  # raw in the body: invalid in strict JSON, as real answers have them


class RequestIds:
    """13-character ``[0-9a-z]`` request ids, deterministic from the seed and a counter. Thread-safe."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._counter = itertools.count(1)  # next() on a count is atomic under the GIL

    def next(self) -> str:
        n = next(self._counter)
        value = int.from_bytes(hashlib.sha1(f"{self._seed}:{n}".encode()).digest()[:9], "big")
        chars = []
        for _ in range(13):
            value, digit = divmod(value, 36)
            chars.append(_ALPHABET[digit])
        return "".join(chars)


def root_key(method: str) -> str:
    """``taobao.item.get`` → ``item_get_response`` (top-protocol.md §4)."""
    name = method[len("taobao.") :] if method.startswith("taobao.") else method
    return name.replace(".", "_") + "_response"


class TopError(Exception):
    """An ``error_response`` to send: the gateway (gateway.py) and the seller channel (seller.py) raise it, the
    gateway renders it with :func:`error_payload`."""

    def __init__(self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None) -> None:
        super().__init__(code, msg)
        self.code, self.msg, self.sub_code, self.sub_msg = code, msg, sub_code, sub_msg


def error_payload(
    code: int,
    msg: str,
    *,
    sub_code: str | None,
    sub_msg: str | None,
    request_id: str,
    code_as_string: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": str(code) if code_as_string else code, "msg": msg}
    if sub_code:
        body["sub_code"] = sub_code
    if sub_msg:
        body["sub_msg"] = sub_msg
    body["request_id"] = request_id
    return {"error_response": body}


def control_text(text: str) -> str:
    """``text`` marked to carry raw control characters once rendered."""
    return text + _CONTROL_MARK


def render(payload: dict[str, Any], fmt: str) -> Response:
    """The HTTP 200 reply for a TOP payload in ``json`` or ``xml``."""
    if fmt == "json":
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return Response(200, [("Content-Type", JSON_TYPE)], text.replace(_CONTROL_MARK, _CONTROL_CHARS).encode())
    text = '<?xml version="1.0" encoding="utf-8" ?>' + "".join(_xml(k, v) for k, v in payload.items())
    return Response(200, [("Content-Type", XML_TYPE)], text.replace(_CONTROL_MARK, "").encode())


def _xml(name: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, list):  # lists repeat the element, as in <videos><video/><video/></videos>
        return "".join(_xml(name, v) for v in value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"
