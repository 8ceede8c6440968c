"""The verification example in the README works on what the dispatcher signs."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

from services.dispatcher.delivery import webhook_headers

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Any:
    text = README.read_text()
    section = text[text.index("## Receiving callbacks") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    return namespace["verify"]


def test_the_readme_example_verifies_our_signatures() -> None:
    verify = readme_verify()
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b"<delete><room>R</room></delete>\n"
    now = int(time.time())
    headers = webhook_headers(secret, "sub_x_7", now, body)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body.replace(b"R", b"S"))
    assert not verify(secret, webhook_headers(secret, "sub_x_7", now - 3600, body), body)
    assert not verify("whsec_" + base64.b64encode(b"j" * 32).decode(), headers, body)
