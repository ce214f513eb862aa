"""Known-answer tests for TOP signing (top-protocol.md §3)."""

import pytest
from helpers.signing import V1, V1_STRING, V2
from hypothesis import given
from hypothesis import strategies as st

from taobao_video.top.signing import SIGN_METHODS, canonical_string, sign, verify


def test_v1_canonical_string():
    assert canonical_string(V1) == V1_STRING


def test_v1_md5():
    assert sign(V1, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


def test_v2_md5_with_chinese_value():
    assert sign(V2, "280a8edc3a899b8a1e4cb965732d2441", "md5") == "8E170B6351CC5C6CF34DFFDC63569734"


def test_v1_hmac():
    params = {**V1, "sign_method": "hmac"}
    assert canonical_string(params) == V1_STRING.replace("sign_methodmd5", "sign_methodhmac")
    assert sign(params, "helloworld", "hmac") == "D56D7858309C31B6251083A874D48273"


def test_v1_hmac_sha256():
    params = {**V1, "sign_method": "hmac-sha256"}
    expected = "04DB15AD0774D5CFCE2C837DE43E3FCEA9011ED74F3038FB6AB5F3C4CEA119E8"
    assert sign(params, "helloworld", "hmac-sha256") == expected


def test_sign_and_empty_values_are_left_out():
    noisy = {**V1, "sign": "WHATEVER", "partner_id": "", "extra": None}
    assert canonical_string(noisy) == V1_STRING
    assert sign(noisy, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


def test_unknown_method_refused():
    with pytest.raises(ValueError, match="unknown sign method"):
        sign(V1, "helloworld", "sha1")


def test_verify_uses_the_params_own_sign_method():
    assert verify({**V1, "sign": "66987cb115214e59e6ec978214934fb8"}, "helloworld")
    assert not verify({**V1, "sign": "66987CB115214E59E6EC978214934FB9"}, "helloworld")
    assert not verify(V1, "helloworld")
    assert not verify({**V1, "sign_method": "sha1", "sign": "X"}, "helloworld")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12).filter(lambda n: n != "sign")


@given(
    st.dictionaries(names, st.text(min_size=1, max_size=20), min_size=1, max_size=8),
    st.sampled_from(SIGN_METHODS),
)
def test_order_of_params_does_not_matter(params, method):
    reversed_params = dict(reversed(list(params.items())))
    assert sign(params, "s3cret", method) == sign(reversed_params, "s3cret", method)
    assert verify(
        {**params, "sign_method": method, "sign": sign({**params, "sign_method": method}, "s3cret", method)},
        "s3cret",
    )
