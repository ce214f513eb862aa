"""Raw gateway requests for the sandbox's own tests: below TopClient, so a test can bend any field or the sign.

The sandbox's default app is key ``test``, secret ``test``; the timestamp comes from the client's formatter,
not the sandbox's, so the gateway's parsing is checked against an independent writer.
"""

from __future__ import annotations

import requests

from taobao_video.sandbox import Sandbox
from taobao_video.top.client import beijing_timestamp
from taobao_video.top.signing import sign


def gateway_params(sb: Sandbox, session: str, method: str = "taobao.item_video", **extra: str) -> dict[str, str]:
    """The system parameters of one call on the sandbox's clock, unsigned; ``extra`` adds or replaces fields."""
    return {
        "method": method,
        "app_key": "test",
        "v": "2.0",
        "format": "json",
        "sign_method": "md5",
        "timestamp": beijing_timestamp(sb.now()),
        "session": session,
        **extra,
    }


def signed(params: dict[str, str], secret: str = "test") -> dict[str, str]:
    """``params`` without its None values, plus the sign their own ``sign_method`` asks for."""
    params = {k: v for k, v in params.items() if v is not None}
    return {**params, "sign": sign(params, secret, params.get("sign_method", "md5"))}


def gateway_call(sb: Sandbox, form: dict[str, str]) -> dict:
    """POST ``form`` to the gateway and return its JSON body."""
    return requests.post(sb.gateway_url, data=form, timeout=10).json()


def error_code(body: dict) -> int | None:
    """The TOP error code of a gateway answer, None for a success."""
    return body["error_response"]["code"] if "error_response" in body else None
