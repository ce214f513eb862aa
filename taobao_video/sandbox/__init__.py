"""A local emulator of the Taobao Open Platform: gateway, OAuth, video CDN, quota and fault injection.

Every test, demo and benchmark of taobao-video runs against it on 127.0.0.1::

    from taobao_video.sandbox import Sandbox, SandboxConfig, AppConfig, Fault, FakeClock

    clock = FakeClock(datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc))
    config = SandboxConfig(seed=7, apps=(AppConfig(key="test", secret="test", daily_limit=1000),),
                           clock=clock.now)
    with Sandbox(config) as sb:
        sb.gateway_url, sb.oauth_url          # http://127.0.0.1:PORT/router/rest, http://127.0.0.1:PORT
        token = sb.issue_token("test")["access_token"]
        ids = sb.catalogue.sample("video", 10)
        sb.video(ids[0]).sha256()             # the bytes the CDN serves for that item
        sb.set_faults([Fault("isp_error", "gateway", times=2)])
        sb.stats()

Modules: ``config`` (what is emulated), ``catalogue`` (items from the seed), ``gateway`` (``/router/rest``
and its validation order), ``seller`` (the seller channel's two methods), ``itemdata`` (a third-party item-data
gateway at ``/taobao/item_get/``), ``apis`` and ``render`` (answer bodies), ``oauth`` and ``tokens``, ``cdn`` and
``urls``, ``faults``, ``quota`` (the counting rule), ``stats``, ``admin`` (``/_sandbox/``), ``server``
(HTTP and the ``Sandbox`` lifecycle), ``cli`` (``sandbox serve``), ``mp4`` (the videos).
"""

from taobao_video.sandbox.clock import FakeClock
from taobao_video.sandbox.config import AppConfig, SandboxConfig, VendorKey
from taobao_video.sandbox.faults import Fault
from taobao_video.sandbox.products import Item
from taobao_video.sandbox.server import Sandbox

__all__ = ["AppConfig", "FakeClock", "Fault", "Item", "Sandbox", "SandboxConfig", "VendorKey"]
