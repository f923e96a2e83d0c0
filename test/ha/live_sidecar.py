"""Starts and stops the real sidecar (`node dist/cli.js serve`) for the live tests."""

from __future__ import annotations

import asyncio
import ctypes
from pathlib import Path
import shutil
import signal
import socket
import subprocess
from typing import IO, Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "dist" / "cli.js"
# A valid-looking pin: the nodes are never reached (nothing listens on ports 1 and 2).
HOST_KEY = "SHA256:" + "A" * 43
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """SIGTERM the sidecar should pytest itself die, so no process outlives a run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def config_text(state_dir: Path, port: int, *, tls: bool = False) -> str:
    """Two nodes whose SSH ports are closed: reachable they are not.

    No mDNS announcement: the tests talk to loopback only. `tls`: HTTPS with the sidecar's own
    self-signed certificate (made in <state_dir>/tls at the first start).
    """
    nodes = "".join(
        f"""  - id: node{n}
    ssh: {{ host: 127.0.0.1, port: {n}, user: zigbee, private_key: /nonexistent, host_key: "{HOST_KEY}" }}
    staging_dir: /home/zigbee/ha
"""
        for n in (1, 2)
    )
    return (
        f"state_dir: {state_dir}\n"
        f"server: {{ host: 127.0.0.1, port: {port}, zeroconf: false"
        + (", tls: self_signed" if tls else "")
        + " }\n"
        "mqtt: { url: mqtt://127.0.0.1:1 }\n"
        f"nodes:\n{nodes}"
    )


class LiveSidecar:
    """One sidecar process on a fixed port and state dir, stopped and started at will."""

    def __init__(self, workdir: Path, *, tls: bool = False) -> None:
        """Write the config; `start()` runs it."""
        node = shutil.which("node")
        if node is None or not CLI.is_file():
            raise RuntimeError(
                f"the live test needs node on PATH and {CLI} (run `npm run build`)"
            )
        self.node = node
        self.state_dir = workdir / "state"
        self.port = free_port()
        self.config = workdir / "sidecar.yaml"
        self.tls = tls
        self.config.write_text(config_text(self.state_dir, self.port, tls=tls))
        self.log_path = workdir / "sidecar.log"
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The API's base URL."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The token the sidecar generated on its first start."""
        return (self.state_dir / "token").read_text().strip()

    @property
    def fingerprint(self) -> str:
        """The certificate fingerprint the sidecar printed at start, as a user copies it."""
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "API certificate fingerprint" in line:
                return line.rsplit(" ", 1)[-1].strip()
        raise AssertionError(
            f"no certificate fingerprint in the log:\n{self.log_tail()}"
        )

    def log_tail(self) -> str:
        """The end of the sidecar's output, for failure messages."""
        return self.log_path.read_text(errors="replace")[-3000:]

    async def start(self) -> None:
        """Run `node dist/cli.js serve` and wait until it answers /healthz."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [self.node, str(CLI), "serve", "--config", str(self.config)],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets a signal
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"the sidecar exited:\n{self.log_tail()}")
                try:
                    # The probe only asks whether it is up; the tests check the certificate.
                    async with session.get(
                        f"{self.url}/healthz", ssl=False
                    ) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the sidecar did not come up:\n{self.log_tail()}")

    async def stop(self) -> None:
        """SIGTERM, as systemd would, and wait for the process to end."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            for _ in range(200):
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API directly, as another client (the CLI) would."""
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                f"{self.url}/api/v1{path}",
                json=body,
                ssl=False,
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response,
        ):
            return await response.json()
