"""The TOP signing known-answer vectors (top-protocol.md §3), shared by the signer's and the sandbox's tests."""

V1 = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}
V1_STRING = (
    "app_key12345678fieldsnum_iid,title,nick,price,numformatjsonmethodtaobao.item.seller.get"
    "num_iid11223344sessiontestsign_methodmd5timestamp2016-01-01 12:00:00v2.0"
)
V2 = {
    "app_key": "12486123",
    "partner_id": "top-apitools",
    "method": "taobao.users.get",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "timestamp": "2012-02-15 23:02:05",
    "nicks": "孙凤民",
    "fields": "user_id,nick,sex,buyer_credit,seller_credit,location,created,last_visit,alipay_account",
}
