"""The ``efactura_standin`` fixture: a fresh stand-in per test, stopped after it.

The stand-in's module (uvicorn, starlette, lxml) is imported when a test asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.efactura_standin.server import StandIn


@pytest.fixture
def efactura_standin() -> Iterator[StandIn]:
    """An e-Factura stand-in on a free 127.0.0.1 port for this test (``url``, ``token``,
    ``env()``), validating with the CIUS-RO schematron when ../shared is there."""
    from tests.efactura_standin.server import StandIn

    standin = StandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
