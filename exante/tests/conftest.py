"""A live demo server, as ``make run`` leaves it: gunicorn on a free port over a temporary
SQLite database holding the demo data, its static files collected. Shared by the tests
that exercise the service from outside (the README's walk-through, the offline pages)."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoServer:
    port: int
    url: str
    env: dict


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer /readyz within 30 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def demo_server():
    with tempfile.TemporaryDirectory(prefix="exante-demo-") as tmp:
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {
                "DATABASE_URL",
                "REDIS_URL",
                "DJANGO_SETTINGS_MODULE",
                "PORT",
                "STATIC_ROOT",
                "DEBUG",
            }
        }
        env.update(
            DJANGO_SETTINGS_MODULE="exante.settings.base",
            EXANTE_VAR_DIR=tmp,
            HOST="127.0.0.1",
            WEB_CONCURRENCY="2",
            LOG_LEVEL="WARNING",
        )
        python = sys.executable
        for command in (
            ["migrate", "--noinput", "-v0"],
            ["seed_demo", "--quiet"],
            ["collectstatic", "--noinput", "-v0"],
        ):
            subprocess.run(
                [python, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True
            )
        port = _free_port()
        env["PORT"] = str(port)
        log = Path(tmp) / "gunicorn.log"
        gunicorn = Path(python).parent / "gunicorn"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [str(gunicorn), "-c", "exante/gunicorn.conf.py", "exante.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, process, log)
            yield DemoServer(port=port, url=url, env=env)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
