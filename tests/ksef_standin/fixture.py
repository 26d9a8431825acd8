"""The ``ksef_standin`` fixture: a fresh stand-in per test, its keys given to the client.

The stand-in's module (openapi-core, uvicorn, lxml) is imported when a test asks for it, not
when the test run starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.ksef_standin.server import StandIn


@pytest.fixture
def ksef_standin(tmp_path: Path) -> Iterator[StandIn]:
    """A KSeF stand-in on a free 127.0.0.1 port for this test, its certificates written to
    ``key_file`` (pinned by ``config()`` and ``env()``), stopped after the test. The test
    fails if any of its answers did not match the API description."""
    from tests.ksef_standin.server import OPENAPI, StandIn

    if not OPENAPI.is_file():
        pytest.skip(f"the KSeF API description is not at {OPENAPI} (../shared beside the repository)")
    standin = StandIn()
    standin.key_file = tmp_path / "ksef-public-keys.pem"
    standin.key_file.write_bytes(standin.public_keys_pem())
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
    assert not standin.response_errors, "the stand-in answered outside the API description:\n" + "\n".join(
        standin.response_errors
    )


def __getattr__(name: str) -> object:
    """``RunningStandIn``, the stand-in's type under its first name, imported when asked for."""
    if name == "RunningStandIn":
        from tests.ksef_standin.server import StandIn

        return StandIn
    raise AttributeError(name)
