"""Outgoing webhooks: SSRF-safe targets and Standard Webhooks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from picture.common.settings import Environment
from picture.gateway.settings import GatewaySettings
from picture.gateway.webhooks import UnsafeTarget, check_target, sign, signing_key

STRICT = GatewaySettings(jwt_secret=None, jwks_url="https://x.supabase.co/jwks")


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # plain http
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://user:pass@93.184.216.34/hook",
        "ftp://93.184.216.34/hook",
        "https:///nohost",
        "https://93.184.216.34:99999/hook",
        "https://" + "a" * 3000 + ".example/hook",
    ],
)
async def test_unsafe_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await check_target(url, STRICT)


async def test_a_public_https_address_is_accepted() -> None:
    await check_target("https://93.184.216.34/hook", STRICT)


async def test_private_targets_only_when_allowed_and_never_in_production() -> None:
    relaxed = GatewaySettings(jwks_url="https://x/jwks", webhook_allow_private_targets=True)
    await check_target("http://127.0.0.1:9/hook", relaxed)
    production = relaxed.model_copy(update={"environment": Environment.PRODUCTION})
    with pytest.raises(UnsafeTarget):
        await check_target("http://127.0.0.1:9/hook", production)


def test_signature_is_standard_webhooks() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(b"k" * 24, b"msg_1.1700000000." + body, hashlib.sha256).digest())
    assert sign(signing_key(secret), "msg_1", 1700000000, body) == "v1," + expected.decode()
