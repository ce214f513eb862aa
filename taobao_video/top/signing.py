"""Request signing for the Taobao Open Platform (top-protocol.md §3). Pure functions, no clock, no I/O.

The canonical string is every parameter except ``sign`` with a non-empty value, sorted by name in byte order,
concatenated as ``name1value1name2value2…`` (raw, not URL-encoded). The signature is upper-case hex of:

- ``md5``:          MD5(secret + string + secret)
- ``hmac``:         HMAC-MD5(key=secret, msg=string)
- ``hmac-sha256``:  HMAC-SHA256(key=secret, msg=string)

The value of ``sign_method`` is itself one of the signed parameters.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
from collections.abc import Mapping

SIGN_METHODS: tuple[str, ...] = ("md5", "hmac", "hmac-sha256")


def canonical_string(params: Mapping[str, object]) -> str:
    """The string that gets signed: sorted ``namevalue`` pairs, ``sign`` and empty values left out."""
    kept = [(name, str(value)) for name, value in params.items() if name != "sign" and value not in (None, "")]
    kept.sort(key=lambda pair: pair[0].encode("utf-8"))
    return "".join(name + value for name, value in kept)


def sign(params: Mapping[str, object], secret: str, method: str) -> str:
    """Signature of ``params`` with ``secret`` by ``method`` (one of SIGN_METHODS), upper-case hex."""
    message = canonical_string(params).encode("utf-8")
    key = secret.encode("utf-8")
    if method == "md5":
        digest = hashlib.md5(key + message + key).hexdigest()
    elif method == "hmac":
        digest = _hmac.new(key, message, hashlib.md5).hexdigest()
    elif method == "hmac-sha256":
        digest = _hmac.new(key, message, hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown sign method {method!r}; expected one of {', '.join(SIGN_METHODS)}")
    return digest.upper()


def verify(params: Mapping[str, object], secret: str) -> bool:
    """True when ``params['sign']`` is the right signature for ``params`` under their own ``sign_method``."""
    method = str(params.get("sign_method") or "md5")
    given = str(params.get("sign") or "")
    if method not in SIGN_METHODS or not given:
        return False
    return _hmac.compare_digest(sign(params, secret, method), given.upper())
