"""docs/webhooks.md's verification snippets run as written, on deliveries signed the way the
server signs them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from purpleflea.webhook import sign
from tests.conftest import REPO

SECRET = "whsec_docs_example_secret"
BODY = b'{"type":"liquidation","data":{"market":"BTC-PERP","size_usd":1250000.0,"seq":9}}'


def _snippets() -> dict[str, Any]:
    text = (REPO / "docs" / "webhooks.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 2, "docs/webhooks.md should hold the SDK and the standard-library recipe"
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "docs/webhooks.md", "exec"), namespace)
    return namespace


def _headers(body: bytes, *, secret: str = SECRET, age_s: int = 0) -> dict[str, str]:
    ts = int(time.time()) - age_s
    return {
        "X-Purpleflea-Timestamp": str(ts),
        "X-Purpleflea-Signature": sign(secret, ts, body),
        "X-Purpleflea-Event-Id": "9",
    }


@pytest.fixture(scope="module")
def snippets() -> dict[str, Any]:
    return _snippets()


def test_the_sdk_recipe_accepts_a_genuine_delivery_and_refuses_the_rest(
    snippets: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    handle: Callable[[str, bytes, dict[str, str]], int] = snippets["handle"]
    assert handle(SECRET, BODY, _headers(BODY)) == 200
    assert capsys.readouterr().out.strip() == "liquidation BTC-PERP 1250000.0"
    assert handle("whsec_someone_else", BODY, _headers(BODY)) == 401
    assert handle(SECRET, BODY + b" ", _headers(BODY)) == 401
    assert handle(SECRET, BODY, _headers(BODY, age_s=600)) == 401


def test_the_standard_library_recipe_agrees(snippets: dict[str, Any]) -> None:
    verify: Callable[[str, bytes, dict[str, str]], bool] = snippets["verify"]
    assert verify(SECRET, BODY, _headers(BODY))
    assert not verify("whsec_someone_else", BODY, _headers(BODY))
    assert not verify(SECRET, BODY.replace(b"BTC", b"ETH"), _headers(BODY))
    assert not verify(SECRET, BODY, _headers(BODY, age_s=600))
