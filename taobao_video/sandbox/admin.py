"""``/_sandbox/...``: control endpoints for tests and demos that drive a sandbox in another process.

- ``GET /_sandbox/stats``; ``POST /_sandbox/reset`` (zero the stats; quota and tokens stay)
- ``GET|POST|DELETE /_sandbox/faults`` (POST a JSON list of faults to replace the plan)
- ``POST /_sandbox/quota`` ``{"app_key": …, "used": …}`` (calls already spent today)
- ``POST /_sandbox/clock`` ``{"offset_s": …}`` (shift the sandbox clock from its base clock)
- ``POST /_sandbox/token`` ``{"app_key": …, "user_nick": …}`` (a token without the browser dance)
- ``GET /_sandbox/items?kind=video&n=10`` (``kind=mixed`` for the natural mix)
- ``GET /_sandbox/item/<num_iid>`` (the item's facts; video items with URLs and the video's sha256)
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from taobao_video.sandbox.faults import Fault
from taobao_video.sandbox.products import ITEM_KINDS
from taobao_video.sandbox.response import Response, json_response

if TYPE_CHECKING:
    from taobao_video.sandbox.server import Sandbox

_ITEM = re.compile(r"/_sandbox/item/(\d{1,13})")
_MAX_SAMPLE = 10_000


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def handle_admin(sandbox: Sandbox, verb: str, path: str, query: str, body: bytes) -> Response:
    """Answer one admin request; bad input is a 4xx JSON ``{"error": …}``."""
    try:
        return _route(sandbox, verb, path, query, body)
    except AdminError as error:
        return json_response({"error": str(error)}, status=error.status)
    except (ValueError, TypeError, KeyError) as error:
        return json_response({"error": f"{type(error).__name__}: {error}"}, status=400)


def _route(sandbox: Sandbox, verb: str, path: str, query: str, body: bytes) -> Response:
    route = (verb, path)
    if route == ("GET", "/_sandbox/stats"):
        return json_response(sandbox.stats())
    if route == ("POST", "/_sandbox/reset"):
        sandbox.reset_stats()
        return json_response({"ok": True})
    if path == "/_sandbox/faults":
        return _faults(sandbox, verb, body)
    if route == ("POST", "/_sandbox/quota"):
        data = _json(body)
        sandbox.set_quota_used(str(data["app_key"]), int(data["used"]))
        return json_response({"ok": True, "quota": sandbox.stats()["quota"]})
    if route == ("POST", "/_sandbox/clock"):
        sandbox.set_clock_offset(float(_json(body)["offset_s"]))
        return json_response({"ok": True, "now": sandbox.now().isoformat()})
    if route == ("POST", "/_sandbox/token"):
        data = _json(body)
        return json_response(sandbox.issue_token(str(data.get("app_key", "test")), data.get("user_nick")))
    if route == ("GET", "/_sandbox/items"):
        return json_response(_sample(sandbox, dict(parse_qsl(query))))
    if verb == "GET" and (match := _ITEM.fullmatch(path)):
        return json_response(sandbox.describe_item(int(match[1])))
    raise AdminError(404, f"no admin endpoint {verb} {path}")


def _faults(sandbox: Sandbox, verb: str, body: bytes) -> Response:
    if verb == "POST":
        data = _json(body)
        if not isinstance(data, list):
            raise AdminError(400, "POST /_sandbox/faults takes a JSON list of faults")
        sandbox.set_faults([Fault.from_dict(entry) for entry in data])
    elif verb == "DELETE":
        sandbox.clear_faults()
    elif verb != "GET":
        raise AdminError(405, f"{verb} /_sandbox/faults is not allowed")
    return json_response({"faults": [fault.to_dict() for fault in sandbox.faults.active()]})


def _sample(sandbox: Sandbox, params: dict[str, str]) -> dict[str, Any]:
    kind, n = params.get("kind", "video"), int(params.get("n", "10"))
    if not 0 <= n <= _MAX_SAMPLE:
        raise AdminError(400, f"n must be within 0..{_MAX_SAMPLE}")
    if kind == "mixed":
        return {"kind": kind, "num_iids": sandbox.catalogue.sample_mixed(n)}
    if kind not in ITEM_KINDS:
        raise AdminError(400, f"kind must be mixed or one of {', '.join(ITEM_KINDS)}")
    return {"kind": kind, "num_iids": sandbox.catalogue.sample(kind, n)}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AdminError(400, f"the body must be JSON: {error}") from error
