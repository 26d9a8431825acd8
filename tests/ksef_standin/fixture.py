"""The ``ksef_standin`` fixture: a fresh stand-in per test, its keys given to the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from invoicer.ksef.client import KsefConfig
from tests.ksef_standin.server import TEST_NIP, TEST_TOKEN, StandIn


class RunningStandIn(StandIn):
    """The stand-in as a test holds it: where it listens and the settings that reach it."""

    key_file: Path

    def config(self, **overrides: object) -> KsefConfig:
        """The client's configuration for this stand-in, its certificates pinned."""
        fields: dict[str, object] = {
            "url": self.url,
            "nip": TEST_NIP,
            "token": TEST_TOKEN,
            "public_key_file": str(self.key_file),
        }
        fields.update(overrides)
        return KsefConfig(**fields)  # type: ignore[arg-type]  # the fields are KsefConfig's own

    def env(self) -> dict[str, str]:
        """KSEF_URL, KSEF_NIP, KSEF_TOKEN and KSEF_PUBLIC_KEY_FILE for a process that runs jobstream."""
        return {
            "KSEF_URL": self.url,
            "KSEF_NIP": TEST_NIP,
            "KSEF_TOKEN": TEST_TOKEN,
            "KSEF_PUBLIC_KEY_FILE": str(self.key_file),
        }


@pytest.fixture
def ksef_standin(tmp_path: Path) -> Iterator[RunningStandIn]:
    """A KSeF stand-in on a free 127.0.0.1 port for this test, stopped after it. The test fails
    if any of its answers did not match the API description."""
    standin = RunningStandIn()
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
