"""Start the project's server processes and wait until they answer.

Used by the launcher (:mod:`bot.run`) and by the end-to-end tests, so both start the real Rasa
server, action server and edge the same way. The Rasa server and the action server are
internal: they listen only on :func:`internal_host` (``COUNCIL_INTERNAL_HOST``, loopback by
default, or a private address when they run on other machines than the edge), never on a
public or wildcard address. Only the edge (:mod:`bot.edge`) faces the internet.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot import settings
from bot.errors import CouncilError

__all__ = [
    "Service",
    "ServiceFailedError",
    "action_server_argv",
    "base_env",
    "edge_argv",
    "free_port",
    "internal_host",
    "rasa_server_argv",
    "start_service",
]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class ServiceFailedError(CouncilError):
    """A server process exited or did not become ready in time.

    Args:
        name: The service.
        reason: What happened.
        log_tail: The last lines it printed.
    """

    def __init__(self, name: str, reason: str, log_tail: str = "") -> None:
        self.name = name
        self.reason = reason
        self.log_tail = log_tail
        tail = f"\n--- last output of {name} ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{name} {reason}{tail}")


@dataclass
class Service:
    """A started server process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    _stopped: bool = field(default=False, repr=False)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines the process printed."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the process to stop (SIGTERM), then kill it after ``timeout`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL we built)
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    ready_url: str,
    env: Mapping[str, str],
    log_dir: Path,
    timeout: float = 180.0,
) -> Service:
    """Start ``argv`` and wait until ``ready_url`` answers 2xx.

    Args:
        name: A short name for messages and the log file.
        argv: The command.
        ready_url: A URL that answers 2xx once the service is ready.
        env: The environment of the process.
        log_dir: Where ``<name>.log`` is written.
        timeout: Seconds to wait for readiness.

    Raises:
        ServiceFailedError: The process exited or was not ready in time (with its output).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own fixed commands)
            list(argv), cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    service = Service(name, process, log_path, ready_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceFailedError(
                name, f"exited with code {process.returncode}", service.log_tail()
            )
        if _answers(ready_url):
            return service
        time.sleep(0.5)
    service.stop()
    raise ServiceFailedError(name, f"was not ready within {timeout:.0f} s", service.log_tail())


def internal_host() -> str:
    """The address the internal servers listen on: ``COUNCIL_INTERNAL_HOST`` or 127.0.0.1.

    Raises:
        ConfigError: It is not an IP address, or is a public or wildcard one.
    """
    return settings.current().internal_host


def action_server_argv(port: int) -> list[str]:
    """The command that runs the rasa-sdk action server on ``port``.

    It listens on ``SANIC_HOST`` (rasa-sdk's default is every interface), which
    :func:`base_env` sets to :func:`internal_host`.
    """
    return [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)]


def edge_argv(*, host: str, port: int, credentials: Path) -> list[str]:
    """The command that runs the public edge (:mod:`bot.edge`)."""
    return [
        sys.executable,
        "-m",
        "bot.edge",
        "--host",
        host,
        "--port",
        str(port),
        "--credentials",
        str(credentials),
    ]


def rasa_server_argv(
    *, model: Path, port: int, credentials: Path, endpoints: Path, auth_token: str
) -> list[str]:
    """The command that runs the Rasa server with its HTTP API on ``port``."""
    return [
        str(BIN / "rasa"),
        "run",
        "--model",
        str(model),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(credentials),
        "--port",
        str(port),
        "--interface",
        internal_host(),
        "--enable-api",
        # one argument: a generated token may start with "-", which argparse reads as an option
        f"--auth-token={auth_token}",
    ]


def base_env(**overrides: str) -> dict[str, str]:
    """The environment for child processes: ours, offline model loading, internal address."""
    env = dict(settings.current().environ)
    env.update(
        SANIC_HOST=internal_host(),  # where rasa-sdk's action server listens
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env
