"""The token file: any file that is not a usable token is one AuthError naming the file and `auth login`."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from taobao_video import errors as E
from taobao_video.top.tokens import Token, TokenStore

GOOD = {"access_token": "abc", "expires_at": "2030-01-01T00:00:00+00:00"}

WRONG_SHAPES = [
    "[]",
    "5",
    '"token"',
    "null",
    "{}",
    json.dumps({"access_token": 5, "expires_at": GOOD["expires_at"]}),
    json.dumps({"access_token": "", "expires_at": GOOD["expires_at"]}),
    json.dumps({"access_token": "abc"}),
    json.dumps({"access_token": "abc", "expires_at": 1893456000}),
    json.dumps({"access_token": "abc", "expires_at": "next tuesday"}),
    json.dumps({**GOOD, "refresh_token": None}),
    json.dumps({**GOOD, "user_nick": ["x"]}),
    json.dumps({**GOOD, "refresh_expires_at": {"at": 1}}),
    "{not json",
]


def _write(path, text: str | bytes) -> None:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chmod(path, 0o600)


@pytest.mark.parametrize("text", [*WRONG_SHAPES, b"\xff\xfe\x00garbage"])
def test_a_token_file_of_the_wrong_shape_names_the_file_and_auth_login(tmp_path, text):
    path = tmp_path / "token.json"
    _write(path, text)
    with pytest.raises(E.AuthError) as raised:
        TokenStore(path).load()
    message = str(raised.value)
    assert str(path) in message and "taobao-video auth login" in message
    assert raised.value.exit_code == 77 and "\n" not in message


def test_a_folder_is_not_a_file_and_not_a_mode_problem(tmp_path):
    folder = tmp_path / "token.json"
    folder.mkdir(mode=0o755)
    with pytest.raises(E.AuthError) as raised:
        TokenStore(folder).load()
    message = str(raised.value)
    assert "not a file" in message and "mode" not in message and "auth login" in message


def test_saving_onto_a_folder_is_an_auth_error(tmp_path):
    (tmp_path / "token.json").mkdir()
    token = Token("abc", datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(E.AuthError, match="cannot save the token file"):
        TokenStore(tmp_path / "token.json").save(token)


def test_optional_fields_default_and_unknown_keys_are_ignored(tmp_path):
    path = tmp_path / "token.json"
    _write(path, json.dumps({**GOOD, "written_by": "a later version"}))
    token = TokenStore(path).load()
    assert token is not None and token.access_token == "abc" and token.refresh_token == ""
    assert token.expires_at == datetime(2030, 1, 1, tzinfo=UTC) and token.grant == "authorization_code"


def test_a_time_without_a_zone_is_utc(tmp_path):
    path = tmp_path / "token.json"
    _write(path, json.dumps({"access_token": "abc", "expires_at": "2030-01-01T00:00:00"}))
    token = TokenStore(path).load()
    assert token is not None and token.expires_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_a_saved_token_round_trips(tmp_path):
    token = Token(
        "abc",
        datetime(2030, 1, 1, tzinfo=UTC),
        refresh_token="r",
        refresh_expires_at=datetime(2030, 2, 1, tzinfo=UTC),
        user_nick="店主",
        obtained_at=datetime(2029, 12, 31, tzinfo=UTC),
    )
    TokenStore(tmp_path / "t.json").save(token)
    assert TokenStore(tmp_path / "t.json").load() == token
