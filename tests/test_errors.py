"""Every row of top-protocol.md §5/§6 maps to its class, retryability and exit code."""

from datetime import UTC, datetime, timedelta

import pytest

from taobao_video import errors as E
from taobao_video.errors import api_error_from_response, ban_seconds, redact

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

ROWS = [
    # code, sub_code, class, retryable, exit code
    (7, "accesscontrol.limited-by-app-access-count", E.QuotaExceeded, False, 75),
    (7, "accesscontrol.limited-by-api-access-count", E.RateLimited, True, 1),
    (7, "accesscontrol.limited-by-app-api-access-count", E.RateLimited, True, 1),
    (7, "access_control_exceeded", E.QuotaExceeded, False, 75),
    ("access_control_exceeded", "", E.QuotaExceeded, False, 75),
    (10, "", E.ServiceUnavailable, True, 1),
    (11, "isv.permission-api-package-limit", E.MethodUnavailable, False, 78),
    (15, "isp.top-remote-connection-timeout", E.RemoteServiceError, True, 1),
    (15, "isp.top-remote-service-unavailable", E.RemoteServiceError, True, 1),
    (15, "isp.remote-service-timeout", E.RemoteServiceError, True, 1),
    (15, "isp.top-remote-unknown-error", E.RemoteServiceError, True, 1),
    (15, "isp.remote-connection-error", E.RemoteServiceError, True, 1),
    (15, "isv.item-get-service-error:ITEM_NOT_FOUND", E.ItemNotFound, False, 1),
    (15, "isv.item-is-delete:invalid-numIid", E.ItemNotFound, False, 1),
    (15, "isv.item-not-exist", E.ItemNotFound, False, 1),
    (15, "isv.invalid-parameter:num_iid", E.InvalidArguments, False, 1),
    (21, "", E.MethodUnavailable, False, 78),
    (22, "", E.MethodUnavailable, False, 78),
    (24, "", E.SignatureError, False, 78),
    (25, "", E.SignatureError, False, 78),
    (26, "", E.SessionError, False, 77),
    (27, "invalid-sessionkey", E.SessionError, False, 77),
    (27, "session-expired", E.SessionError, False, 77),
    (28, "", E.AppKeyError, False, 78),
    (29, "isv.appkey-not-exists", E.AppKeyError, False, 78),
    (30, "", E.TimestampError, False, 78),
    (31, "", E.TimestampError, False, 78),
    (40, "", E.InvalidArguments, False, 1),
    (41, "", E.InvalidArguments, False, 1),
    (47, "", E.EncodingError, False, 1),
    (53, "", E.SessionError, False, 77),
    (99, "", E.ApiError, False, 1),
    (99, "isp.something-new", E.RemoteServiceError, True, 1),
]


@pytest.mark.parametrize(("code", "sub_code", "cls", "retryable", "exit_code"), ROWS)
def test_every_row(code, sub_code, cls, retryable, exit_code):
    body = {"code": code, "msg": "m", "sub_code": sub_code, "sub_msg": "s", "request_id": "r1a2b3c4d5e6"}
    error = api_error_from_response(body, method="taobao.item.get", now=NOW)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.exit_code == exit_code
    assert error.sub_code == sub_code
    assert error.request_id == "r1a2b3c4d5e6"
    assert "r1a2b3c4d5e6" in str(error)


@pytest.mark.parametrize("code", [7, "7", " 7 "])
def test_code_may_be_a_string(code):
    error = api_error_from_response({"code": code, "sub_code": "accesscontrol.limited-by-app-access-count"})
    assert isinstance(error, E.QuotaExceeded)
    assert error.code == 7


def test_quota_error_carries_the_reset_time():
    body = {
        "code": 7,
        "msg": "App Call Limited",
        "sub_code": "accesscontrol.limited-by-app-access-count",
        "sub_msg": "This ban will last for 31062 more seconds",
    }
    error = api_error_from_response(body, now=NOW)
    assert error.ban_seconds == 31062
    assert error.reset_at == NOW + timedelta(seconds=31062)


def test_rate_limit_carries_the_ban():
    body = {
        "code": 7,
        "sub_code": "accesscontrol.limited-by-api-access-count",
        "sub_msg": "This ban will last for 3 more seconds",
    }
    assert api_error_from_response(body).ban_seconds == 3


def test_ban_seconds_parsing():
    assert ban_seconds("This ban will last for 71 more seconds") == 71
    assert ban_seconds("no number here") is None
    assert ban_seconds("") is None


def test_missing_fields_do_not_break_mapping():
    error = api_error_from_response({})
    assert type(error) is E.ApiError and error.code is None


def test_str_shows_code_sub_code_and_method():
    error = api_error_from_response(
        {"code": 25, "msg": "Invalid signature", "request_id": "abc"}, method="taobao.item.get"
    )
    assert str(error) == "TOP error 25 Invalid signature (method taobao.item.get, request_id abc)"


def test_redact():
    assert redact("key=SECRETVALUE&x=1", ["SECRETVALUE", None, ""]) == "key=***&x=1"


def test_exit_codes_of_the_tree():
    assert E.UsageError.exit_code == 2
    assert E.ConfigError("x").exit_code == 78
    assert E.AuthError.exit_code == 77
    assert E.LockHeldError.exit_code == 75
    assert E.TransportError("x").retryable
    assert not E.BadResponseError("x").retryable
    assert str(E.ConfigError("must be an integer", file="settings.toml", key="[quota] daily_limit")) == (
        "settings.toml: [quota] daily_limit: must be an integer"
    )


@pytest.mark.parametrize("free", [None, 0, 1234])
def test_a_catalog_full_error_copies_and_pickles_as_it_was(free):
    import copy
    import pickle

    error = E.CatalogFull("postgresql://db", free)
    for again in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert (type(again), str(again), again.free_bytes, again.path) == (
            E.CatalogFull,
            str(error),
            error.free_bytes,
            "postgresql://db",
        )
