"""The `jobstream` command: run the product, one service, the demo, users, and the event log.

    jobstream up [--demo] [--data DIR] [--port 8000]   everything, supervised, Ctrl-C stops
    jobstream run command-api [--port 8000]            one service alone (scale-out)
    jobstream run read-api [--port 8001]               the read API and the dashboard
    jobstream run projector board|timesheets|ledger|all    one projection (or all in one process)
    jobstream run invoicer [issue|documents|ksef|efactura]  issues invoices, renders their PDFs, sends Polish ones
                                                        to KSeF, uploads Romanian ones to e-Factura
    jobstream run notifier                              emails and push alerts
    jobstream run checkpoints                           the audit's checkpoints of the stream, at intervals
    jobstream run web | workers                         several services in one process (what `up` runs)
    jobstream audit replay|verify|reconcile|checkpoint|as-of|rebuild|export   the accountants' tools
    jobstream demo                                      load a small realistic business
    jobstream stream                                    create or check the event stream; how far it is
    jobstream admin create-user NAME --role office      prints the new token once
    jobstream events [--job ID] [--json]                events straight from the stream

Settings come from the environment once, here: NATS_URL (else the embedded server that
`jobstream up` started for the data directory, signed in as its admin user), NATS_USER and
NATS_PASSWORD, NATS_STREAM, JOBSTREAM_DATA.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import platformdirs

# Only what `jobstream up` needs is imported here: the supervisor stays small, and each
# command imports what it uses.

SERVICES = {
    "command-api": "the command API (HTTP, OpenAPI at /docs)",
    "read-api": "the read API and the office dashboard (HTTP)",
    "projector": "one projection kept up to date: board, timesheets or ledger (all: every one, in one process)",
    "invoicer": "issues the invoice of each completed job (run several for redundancy)",
    "notifier": "sends invoices and reminders by email, and push alerts to the team",
    "scheduler": "schedules recurring services' jobs ahead and alerts the office to SLAs at risk",
    "checkpoints": "the audit's checkpoints of the stream, at intervals, kept outside it (jobstream audit verify)",
    "web": "the command API and the read API in one process (what `jobstream up` runs)",
    "workers": "every projection, the invoicer (and its KSeF submitter when KSEF_URL, KSEF_NIP and KSEF_TOKEN are "
    "set), the notifier, the scheduler and the audit's checkpoints in one process (what `up` runs)",
}
# Several services in one process, as `jobstream up` runs them on one machine: each package
# exposes what it runs (an ASGI app factory, or `run_service(env, stop)`), named here the way
# the command line names a module to run (`python -m projections.runner`) and loaded by that
# name, so no package imports another's code.
WEB = {"command-api": "services.api:app_from_environment", "read-api": "read_api.app:app_from_environment"}
WORKERS = {
    "projector": "projections.runner:run_service",
    "invoicer": "invoicer.service:run_service",
    "notifier": "notifier.service:run_service",
    "scheduler": "services.recurring:run_service",
    "checkpoints": "projections.audit:run_service",
}
# The invoicer's KSeF submitter (Poland's e-invoicing) joins the workers, signed in as the
# invoicer, when KSeF is configured: its URL, the seller's NIP and a KSeF token.
KSEF_WORKER = "invoicer.ksef.submitter:run_service"
KSEF_SETTINGS = ("KSEF_URL", "KSEF_NIP", "KSEF_TOKEN")
EFACTURA_WORKER = "invoicer.efactura.uploader:run_service"
EFACTURA_SETTINGS = ("EFACTURA_URL", "EFACTURA_TOKEN")
# The NATS user each service signs in as (nats.conf: what each may publish)
NATS_USERS = {
    "command-api": "command",
    "read-api": "read",
    "projector": "projector",
    "invoicer": "invoicer",
    "checkpoints": "projector",  # the audit's checkpoints: it only reads the stream
    "notifier": "notifier",
    "scheduler": "scheduler",
}
PROJECTIONS = ("board", "timesheets", "ledger")
ROLES = ("office", "technician", "accountant", "admin")  # events.contract.Role's values
DEFAULT_PORTS = {"command-api": 8000, "read-api": 8001}
DEMO_SELLER = {
    "JOBSTREAM_COMPANY_NAME": "Instalacje Demo sp. z o.o.",
    "JOBSTREAM_COMPANY_STREET": "ul. Długa 1",
    "JOBSTREAM_COMPANY_CITY": "Kraków",
    "JOBSTREAM_COMPANY_POSTAL_CODE": "31-147",
    "JOBSTREAM_COMPANY_COUNTRY": "PL",
    "JOBSTREAM_COMPANY_VAT_ID": "PL5261040828",
    "JOBSTREAM_COMPANY_IBAN": "PL61 1090 1014 0000 0712 1981 2874",
    "JOBSTREAM_COMPANY_EMAIL": "faktury@demo.example",
    "JOBSTREAM_COMPANY_CURRENCY": "EUR",  # the demo's default price list is in EUR
}
DEMO_BOOKING = (
    "boiler-service:boilers:90:Annual boiler service;deep-clean:cleaning:180:Kitchen deep clean;"
    "it-support:it:60:IT support visit"
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    nats_url: str | None
    stream: str
    read_model_url: str
    timezone: str

    @classmethod
    def from_env(cls, data: str | None = None) -> Settings:
        data_dir = Path(data or os.environ.get("JOBSTREAM_DATA") or platformdirs.user_data_dir("jobstream"))
        return cls(
            data_dir=data_dir,
            nats_url=os.environ.get("NATS_URL") or None,
            stream=os.environ.get("NATS_STREAM") or "JOBSTREAM",
            read_model_url=os.environ.get("READ_MODEL_URL") or f"sqlite:///{data_dir / 'readmodels.sqlite3'}",
            timezone=os.environ.get("JOBSTREAM_TIMEZONE") or "UTC",
        )

    @property
    def url_file(self) -> Path:
        return self.data_dir / "nats.url"

    @property
    def passwords_file(self) -> Path:
        """The embedded server's users' passwords, made by the first `jobstream up`."""
        return self.data_dir / "nats.passwords"

    def credentials(self) -> dict[str, str]:
        """How to sign in to NATS: as NATS_USER when NATS_URL is set; else, on the embedded
        server, as admin, with every service's password beside it for `run` to pick from."""
        from services.natsd import PASSWORD_VARIABLES, as_variables, kept_passwords

        if self.nats_url:
            named = ("NATS_USER", "NATS_PASSWORD", *PASSWORD_VARIABLES)
            return {key: os.environ[key] for key in named if os.environ.get(key)}
        if not self.passwords_file.exists():
            return {}
        passwords = kept_passwords(self.passwords_file)
        return {"NATS_USER": "admin", "NATS_PASSWORD": passwords["admin"], **as_variables(passwords)}

    def resolved_url(self) -> str:
        if self.nats_url:
            return self.nats_url
        if self.url_file.exists():
            return self.url_file.read_text().strip()
        raise SystemExit(
            "jobstream: no NATS server to talk to. Start one with `jobstream up` "
            f"(data in {self.data_dir}) or set NATS_URL."
        )

    def link_secret(self) -> str:
        """The secret customers' invoice links are signed with: JOBSTREAM_LINK_SECRET, else one
        made once and kept in the data directory (readable by its owner only)."""
        given = os.environ.get("JOBSTREAM_LINK_SECRET")
        if given:
            return given
        path = self.data_dir / "link.secret"
        if not path.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def vapid_keys(self) -> tuple[str, str]:
        """The Web Push (VAPID) key pair: VAPID_PRIVATE_KEY and VAPID_PUBLIC_KEY, else a pair
        made once and kept in the data directory. The private key as PEM, the public one as
        the browser wants it (base64url of the uncompressed point)."""
        given = os.environ.get("VAPID_PRIVATE_KEY")
        if given:
            return given, os.environ.get("VAPID_PUBLIC_KEY", "")
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        path = self.data_dir / "vapid.pem"
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        pem = path.read_bytes()
        loaded = serialization.load_pem_private_key(pem, password=None)
        raw = loaded.public_key().public_bytes(
            serialization.Encoding.X962,
            serialization.PublicFormat.UncompressedPoint,
        )
        import base64

        return pem.decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def env(self, url: str | None = None) -> dict[str, str]:
        private, public = self.vapid_keys()
        return {
            "VAPID_PRIVATE_KEY": private,
            "VAPID_PUBLIC_KEY": public,
            "JOBSTREAM_LINK_SECRET": self.link_secret(),
            "PERSISTENCE_MODULE": "events.jetstream",
            "NATS_URL": url or self.resolved_url(),
            **self.credentials(),
            "NATS_STREAM": self.stream,
            "JOBSTREAM_DATA": str(self.data_dir),  # the audit keeps its checkpoints of the stream here
            "NATS_SUBJECT_PREFIX": os.environ.get("NATS_SUBJECT_PREFIX", ""),
            "READ_MODEL_URL": self.read_model_url,
            "JOBSTREAM_TIMEZONE": self.timezone,
            # the tech client, served by the command API, reads through it
            "READ_API_URL": os.environ.get("READ_API_URL", ""),
            # the public booking page: what can be booked, and when (services/booking.py)
            **{
                name: os.environ[name]
                for name in ("JOBSTREAM_BOOKING_SERVICES", "JOBSTREAM_BOOKING_HOURS")
                if os.environ.get(name)
            },
        }


class OutputClosed(Exception):
    """Whoever read our standard output has gone (`jobstream up | head -1`)."""


def say(message: str) -> None:
    try:
        print(message, flush=True)
    except BrokenPipeError:
        _silence_output()
        raise OutputClosed from None


def _silence_output() -> None:
    """Point standard output at /dev/null: what is still said on the way out (and Python's
    own flush at exit) goes nowhere instead of raising again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _output_closed() -> bool:
    """Whether the reader of our standard output has gone, without writing to it: a pipe's
    writing end polls as an error once its reading end is closed."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError):
        return False


# --- up: the whole product, supervised ------------------------------------------------------


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts: list[float] = []

    def start(self) -> None:
        from events.lifetime import tied_to_parent

        # sent SIGTERM if `up` dies without stopping it (SIGKILL): it stops as if `up` had
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=tied_to_parent(signal.SIGTERM))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def up(args: argparse.Namespace) -> int:
    from services.natsd import EmbeddedNats, kept_passwords

    settings = Settings.from_env(args.data)
    if not settings.nats_url and (settings.stream != "JOBSTREAM" or os.environ.get("NATS_SUBJECT_PREFIX")):
        # nats.conf's users own the subjects and the documents' store of JOBSTREAM
        raise SystemExit(
            "jobstream: NATS_STREAM and NATS_SUBJECT_PREFIX need a NATS server of your own "
            "(NATS_URL): the embedded one's users may publish only to the JOBSTREAM stream's "
            "subjects (nats.conf)"
        )
    held = _hold(settings.data_dir)  # until `up` ends
    server = None
    children: list[Child] = []
    stopping = False

    # Ctrl-C, SIGTERM and a hang-up (the terminal closed) stop everything in order, below.
    # A SIGKILL runs nothing here: each child is tied to this process and ends with it.
    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    me = [sys.executable, "-m", "services.cli"]
    try:
        if settings.nats_url:
            url = settings.nats_url
            say(f"Using NATS at {url} (NATS_URL)")
        else:
            server = EmbeddedNats(
                settings.data_dir / "nats", port=args.nats_port, passwords=kept_passwords(settings.passwords_file)
            ).start()
            url = server.url
            settings.url_file.write_text(url)
            say(f"Started nats-server with JetStream at {url} (data in {settings.data_dir / 'nats'})")
        env = settings.env(url)
        # create or verify the stream (and load the demo) before anything runs, in a process
        # that ends when done: the supervisor itself stays small
        prepare = Child(
            "demo" if args.demo else "stream", [*me, "demo" if args.demo else "stream"], {**os.environ, **env}
        )
        prepare.start()
        assert prepare.process is not None
        while prepare.process.poll() is None:
            if stopping:
                prepare.stop()
            with contextlib.suppress(subprocess.TimeoutExpired):
                prepare.process.wait(timeout=0.2)
        if stopping or _output_closed():
            return _stopped(output_closed=_output_closed())
        if prepare.process.returncode:
            raise SystemExit(prepare.process.returncode)
        base = f"http://{args.host}:{args.port}"
        dashboard = f"http://{args.host}:{args.read_port}"
        # The demo's own company on its invoices and its bookable services, unless the environment names its own.
        demo = {**DEMO_SELLER, "JOBSTREAM_BOOKING_SERVICES": DEMO_BOOKING} if args.demo else {}
        mail = {}
        if not os.environ.get("SMTP_HOST"):  # no mail server named: keep what is sent, to read
            outbox = _local_mail(settings.data_dir / "outbox")
            mail = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(outbox.port)}
        child_env = {
            **demo,
            **os.environ,
            **env,
            **mail,
            "COMMAND_API_URL": base,
            "READ_API_URL": dashboard,
            "JOBSTREAM_APP_URL": base,
            "JOBSTREAM_DASHBOARD_URL": dashboard,
        }
        # two processes on one machine (compose runs each service in its own container): the
        # two HTTP doors, and every service working behind them
        plan = [
            (
                "web",
                [*me, "run", "web", "--host", args.host, "--port", str(args.port), "--read-port", str(args.read_port)],
                (args.port, args.read_port),
            ),
            ("workers", [*me, "run", "workers"], ()),
        ]
        for name, argv, _ports in plan:
            group = WEB if name == "web" else WORKERS
            child = Child(name, argv, _passwords_of(child_env, group) if server else child_env)
            child.start()
            children.append(child)
        for child, (_name, _argv, ports) in zip(children, plan, strict=True):
            for port in ports:
                _wait_until_listening(child, args.host, port, lambda: stopping)
        if stopping:
            return _stopped()
        say("")
        say("jobstream is running:")
        say(f"  dashboard     {dashboard}   (sign in with an office token)")
        say(f"  technicians   {base}/tech   (the phone app: sign in with a technician token)")
        if child_env.get("JOBSTREAM_BOOKING_SERVICES"):
            say(f"  booking       {base}/book   (the public booking page for customers)")
        say(f"  command API   {base}   (API docs: {base}/docs)")
        say(f"  read API      {dashboard}/api   (API docs: {dashboard}/docs)")
        say(
            f"  NATS          {url}   stream {settings.stream}"
            + (f"   (each service its own user; passwords in {settings.passwords_file})" if server else "")
        )
        say(f"  read models   {settings.read_model_url}")
        if mail:
            say(
                f"  mail          kept in {settings.data_dir / 'outbox'} (no SMTP_HOST set; "
                f"a local SMTP server on port {mail['SMTP_PORT']} takes it)"
            )
        else:
            say(f"  mail          sent through {os.environ['SMTP_HOST']}")
        say("Press Ctrl-C to stop.")
        while not stopping:
            time.sleep(0.2)
            if _output_closed():  # `up | head`: nobody reads what we say; stop, as a pipe's writer does
                return _stopped(output_closed=True)
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is None or stopping:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > 5:
                    say(f"{child.name} keeps failing (exit {code}); stopping jobstream")
                    stopping = True
                    break
                say(f"{child.name} exited with {code}; restarting it")
                time.sleep(min(5.0, 0.5 * len(child.restarts)))
                child.start()
    except OutputClosed:
        return _stopped(output_closed=True)
    finally:
        # however `up` got here (a signal, a failure, its output gone), nothing it started
        # is left running, and nothing said on the way can stop it from stopping them
        with contextlib.suppress(OutputClosed):
            say("Stopping jobstream ...")
        for child in children:
            child.stop()
        for child in children:
            child.wait(timeout=10)
        if server is not None:
            server.stop()
            settings.url_file.unlink(missing_ok=True)
        held.close()
        with contextlib.suppress(OutputClosed):
            say("Stopped.")
    return 0


def _stopped(output_closed: bool = False) -> int:
    """`up`'s answer when it stops: 0 when asked to, 1 when its output was closed (told on
    standard error, the one still read)."""
    if not output_closed:
        return 0
    _silence_output()
    print("jobstream: standard output closed; stopping", file=sys.stderr, flush=True)
    return 1


def _hold(data_dir: Path) -> Any:
    """One `up` per data directory: a second nats-server on the same JetStream store would
    corrupt it, and the second `up` would take the first one's URL file with it when it
    stops. The lock is the kernel's, so it goes with the process however that ends."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "up.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise SystemExit(
            f"jobstream: already running with the data in {data_dir} (pid {pid}); stop that one "
            "first, or give this one its own --data"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _passwords_of(env: dict[str, str], services: Iterable[str]) -> dict[str, str]:
    """A process's environment on the embedded server: the NATS passwords of its own services
    only, for each to sign in as itself; not admin's, nor any other service's."""
    from services.natsd import password_variable, without_passwords

    own = {name: env[name] for name in (password_variable(NATS_USERS[service]) for service in services)}
    kept = {key: value for key, value in without_passwords(env).items() if key not in ("NATS_USER", "NATS_PASSWORD")}
    return {**kept, **own}


def _local_mail(directory: Path) -> Any:
    """An SMTP server on localhost that keeps every message in a Maildir (read it with any
    mail client, or ``ls``): where `jobstream up` sends email when no SMTP_HOST is set."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    from services.natsd import free_port

    directory.parent.mkdir(parents=True, exist_ok=True)
    controller = Controller(Mailbox(directory), hostname="127.0.0.1", port=free_port())
    controller.start()  # a daemon thread: it ends with `up`
    return controller


def _wait_until_listening(
    child: Child, host: str, port: int, stopping: Any = lambda: False, timeout: float = 60.0
) -> None:
    """Print the URLs only once the service answers, so they work when they are read (or
    until `up` is asked to stop)."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping():
            return
        assert child.process is not None
        if child.process.poll() is not None:
            raise SystemExit(
                f"jobstream: {child.name} exited with {child.process.returncode} "
                f"while starting (is port {port} free? try --port)"
            )
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"jobstream: {child.name} did not start listening on {host}:{port}")


# --- run: one service -------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import gc

    import uvicorn

    # A service allocates many short-lived objects per request; collecting the young
    # generation every 700 allocations made 99th-percentile latency under load 2-3x worse
    # (docs/benchmarks.md). Cycles are still collected, just less often.
    gc.set_threshold(100_000, 50, 50)

    from services.natsd import service_env

    settings = Settings.from_env(args.data)
    if args.service in ("web", "workers"):
        os.environ.update(settings.env())
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request to the read API
        asyncio.run(_run_together(args.service, args))
        return 0
    # one service, signed in to NATS as its own user
    env = service_env({**os.environ, **settings.env()}, NATS_USERS.get(args.service, ""))
    if args.service in ("projector", "read-api", "invoicer", "notifier", "checkpoints"):
        # Separate packages (projections, read_api, invoicer) that the write side does not import:
        # the process becomes theirs, with the settings in its environment.
        if args.service == "projector":
            if args.name not in (*PROJECTIONS, "all"):
                raise SystemExit(f"jobstream: which projection? one of: {', '.join(PROJECTIONS)}, or all")
            argv = [sys.executable, "-m", "projections.runner", args.name, *(["--once"] if args.once else [])]
        elif args.service == "invoicer":
            part = args.name or "all"
            if part not in ("all", "issue", "documents", "ksef", "efactura"):
                raise SystemExit(
                    "jobstream: run invoicer [issue|documents|ksef|efactura] (issue and documents when not named)"
                )
            argv = [sys.executable, "-m", "invoicer", part]
            if part == "ksef":
                argv = [sys.executable, "-m", "invoicer.ksef.submitter"]
            if part == "efactura":
                argv = [sys.executable, "-m", "invoicer.efactura.uploader"]
        elif args.service == "notifier":
            argv = [sys.executable, "-m", "notifier"]
        elif args.service == "checkpoints":
            argv = [sys.executable, "-m", "projections.audit", "checkpoint", "--keep"]
        else:
            port = args.port or DEFAULT_PORTS[args.service]
            argv = [
                sys.executable,
                "-m",
                "read_api.serve",
                "--host",
                args.host,
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ]
        os.execve(sys.executable, argv, env)
    if args.service == "scheduler":
        from services.recurring import serve

        return serve(
            env,
            every_seconds=float(env.get("JOBSTREAM_SCHEDULER_SECONDS", "60")),
            sla_warn_minutes=int(env.get("JOBSTREAM_SLA_WARN_MINUTES", "60")),
        )
    if args.service == "command-api":
        from services.api import Settings as ApiSettings
        from services.api import create_app

        port = args.port or DEFAULT_PORTS[args.service]
        if args.workers > 1:  # separate processes: they read their settings from the env
            os.environ.clear()
            os.environ.update(env)
            uvicorn.run(
                "services.api:app_from_environment",
                factory=True,
                workers=args.workers,
                host=args.host,
                port=port,
                log_level="warning",
                access_log=False,
            )
            return 0
        app = create_app(ApiSettings(env=env))
        uvicorn.run(app, host=args.host, port=port, log_level="warning", access_log=False)
        return 0
    raise SystemExit(f"jobstream: unknown service {args.service!r}; one of: {', '.join(SERVICES)}")


async def _run_together(group: str, args: argparse.Namespace) -> None:
    """Run a group's services on this one loop until SIGINT or SIGTERM. If one of them fails,
    the others are stopped and the failure ends the process, for `up` to restart it."""
    from events.bridge import stop_on_signals
    from services.natsd import service_env

    stop = stop_on_signals()
    env = dict(os.environ)  # each service signs in to NATS as its own user
    if group == "web":
        ports = {
            "command-api": args.port or DEFAULT_PORTS["command-api"],
            "read-api": args.read_port or DEFAULT_PORTS["read-api"],
        }
        runs = {
            name: _serve_http(_load(target)(service_env(env, NATS_USERS[name])), args.host, ports[name], stop)
            for name, target in WEB.items()
        }
    else:
        runs = {name: _load(target)(service_env(env, NATS_USERS[name]), stop) for name, target in WORKERS.items()}
        if ksef_configured(env):
            runs["ksef"] = _load(KSEF_WORKER)(service_env(env, NATS_USERS["invoicer"]), stop)
        if efactura_configured(env):
            runs["efactura"] = _load(EFACTURA_WORKER)(service_env(env, NATS_USERS["invoicer"]), stop)
    tasks = {asyncio.create_task(run, name=name): name for name, run in runs.items()}
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    asked = stop.is_set()
    ended = next(iter(done))
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    if not ended.cancelled() and (error := ended.exception()) is not None:
        raise error
    if not asked:
        raise SystemExit(f"jobstream: {tasks[ended]} stopped by itself")


def ksef_configured(env: dict[str, str]) -> bool:
    """Whether invoices are sent to KSeF: its URL, the seller's NIP and a KSeF token are set."""
    return all(env.get(name) for name in KSEF_SETTINGS)


def efactura_configured(env: dict[str, str]) -> bool:
    """Whether Romanian invoices are uploaded to e-Factura: its URL and an access token are set."""
    return all(env.get(name) for name in EFACTURA_SETTINGS)


def _load(target: str) -> Any:
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


async def _serve_http(app: Any, host: str, port: int, stop: asyncio.Event) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # the process's stop ends it, not its own handlers
            yield

    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))

    async def stop_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_when_asked())
    try:
        await server.serve()
    finally:
        stopper.cancel()


# --- demo, admin, events ------------------------------------------------------------------


def demo(args: argparse.Namespace) -> int:
    from services.application import JobstreamApp
    from services.demo import load_demo

    app = JobstreamApp(Settings.from_env(args.data).env())
    try:
        _documents_bucket(app)
        load_demo(app, say)
    finally:
        app.close()
    return 0


def stream(args: argparse.Namespace) -> int:
    from services.application import JobstreamApp

    settings = Settings.from_env(args.data)
    env = settings.env()
    app = JobstreamApp(env)  # creates the stream, or verifies the one there matches
    try:
        _documents_bucket(app)
        last = app.recorder.max_notification_id() or 0
        say(f"Stream {settings.stream} at {env['NATS_URL']}: " + (f"up to position {last:,}." if last else "empty."))
    finally:
        app.close()
    return 0


def _documents_bucket(app: Any) -> None:
    """Create the object store for documents beside the stream, as admin: the services'
    NATS users may write to it but not create it (nats.conf)."""
    app.run(app.recorder.connection.documents())


def admin(args: argparse.Namespace) -> int:
    from events.contract import Role
    from services.application import JobstreamApp
    from services.domain.common import Invalid

    app = JobstreamApp(Settings.from_env(args.data).env())
    try:
        if args.admin_command == "create-user":
            technician = UUID(args.technician) if args.technician else None
            if args.role == "technician" and technician is None:
                raise SystemExit("jobstream: a technician user needs --technician <technician id>")
            try:
                token = app.issue_token(args.name, Role(args.role), technician)
            except Invalid as refused:
                raise SystemExit(f"jobstream: {refused.reason}") from None
            say(f"Created {args.role} user {args.name!r}. Their token (shown only this once):")
            say(token)
        elif args.admin_command == "revoke":
            app.revoke_token(args.token, args.reason)
            say("Revoked.")
    finally:
        app.close()
    return 0


def events(args: argparse.Namespace) -> int:
    from events.contract import decode_event
    from services.application import JobstreamApp

    app = JobstreamApp(Settings.from_env(args.data).env())
    try:
        if args.job:
            rows = list(app.recorder.select_positioned(UUID(args.job)))
        else:
            start = args.after + 1
            rows = [(n.id, n) for n in app.recorder.select_notifications(start, args.limit)]
        if not rows:
            say("No events.")
            return 0
        for position, stored in rows:
            event = decode_event(stored.state)
            if args.json:
                sys.stdout.write(
                    msgspec.json.encode(
                        {
                            "position": position,
                            "version": stored.originator_version,
                            "type": stored.topic,
                            "event": event,
                        },
                        enc_hook=str,
                    ).decode()
                    + "\n"
                )
                continue
            meta = event.meta
            when = meta.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if meta else "-"
            who = f"{meta.actor_id} ({meta.actor_role})" if meta else "-"
            details = _summary(event)
            say(f"{position:>8}  v{stored.originator_version:<4} {when}  {stored.topic:<22} {who:<24} {details}")
    finally:
        app.close()
    return 0


def audit(args: argparse.Namespace) -> int:
    """The accountants' tools live with the read side (projections.audit); hand over to them."""
    if args.rest and not {"-h", "--help"} & set(args.rest):  # its help needs no server
        os.environ.update(Settings.from_env(args.data).env())
    os.execv(sys.executable, [sys.executable, "-m", "projections.audit", *args.rest])
    return 0  # not reached


def _summary(event: object) -> str:
    fields = msgspec.to_builtins(event, enc_hook=str)
    for key in ("type", "id", "meta"):
        fields.pop(key, None)
    shown = ", ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, "", [], {}))
    return shown if len(shown) < 100 else shown[:97] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobstream", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="data directory (default: the user's data dir)")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("up", help="run the whole product: NATS, every service")
    p.add_argument("--demo", action="store_true", help="load the demo business first")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="command API port")
    p.add_argument("--read-port", type=int, default=8001, help="read API and dashboard port")
    p.add_argument("--nats-port", type=int, default=None, help="embedded NATS port (default: free)")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    p.set_defaults(handler=up)

    p = commands.add_parser("run", help="run one service alone")
    p.add_argument("service", choices=sorted(SERVICES))
    p.add_argument(
        "name",
        nargs="?",
        default="",
        help="the projection, for `run projector`; issue, documents, ksef or efactura for `run invoicer`",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="worker processes (HTTP services)")
    p.add_argument("--read-port", type=int, default=None, help="the read API's port, for `run web`")
    p.add_argument(
        "--once", action="store_true", help="`run projector`: catch up with the stream as it is now, report, and stop"
    )
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    p.set_defaults(handler=run)

    p = commands.add_parser("demo", help="load a small realistic business")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    p.set_defaults(handler=demo)

    p = commands.add_parser("stream", help="create the event stream, or check the one there; how far it is")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    p.set_defaults(handler=stream)

    p = commands.add_parser("admin", help="users and their tokens")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    admin_commands = p.add_subparsers(dest="admin_command", required=True)
    a = admin_commands.add_parser("create-user", help="create a user; prints the token once")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--technician", help="the technician id, for a technician user")
    a = admin_commands.add_parser("revoke", help="revoke a token")
    a.add_argument("token")
    a.add_argument("--reason", default="")
    p.set_defaults(handler=admin)

    p = commands.add_parser("events", help="list events straight from the stream")
    p.add_argument("--job", help="only this job's (any aggregate id works)")
    p.add_argument("--after", type=int, default=0, help="stream position to start after")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="JSON Lines instead of a table")
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    p.set_defaults(handler=events)

    p = commands.add_parser(
        "audit",
        help="replay, verify, reconcile, checkpoint, as-of, rebuild, export (jobstream audit -h)",
        add_help=False,
    )
    p.add_argument("--data", default=argparse.SUPPRESS, help="data directory")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(handler=audit)

    argv = list(sys.argv[1:] if argv is None else argv)
    if "audit" in argv:  # everything after `audit` is the audit tool's own (including -h)
        at = argv.index("audit")
        args, _ = parser.parse_known_args(argv[: at + 1])
        args.rest = argv[at + 1 :]
    else:
        args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except OutputClosed:  # `jobstream events | head`: the reader had enough
        return 1
    except Exception as error:
        from events.jetstream import TurnedAway
        from services.domain.common import DomainError

        if isinstance(error, ValueError | DomainError | TurnedAway):  # the user's mistake: say it plainly
            raise SystemExit(f"jobstream: {error}") from None
        raise


if __name__ == "__main__":
    sys.exit(main())
