"""Fixtures that run the real `huggingface_hub` client against a real modelyard server.

One server per pytest session (port 0, fresh data dir). The client's environment is set here,
at conftest import time, before anything imports `huggingface_hub`; `HF_ENDPOINT` is set once the
server's port is known, and the `hf` fixture imports the package only after that. Tests also pass
`endpoint=` explicitly wherever the API accepts it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

# --- client environment, set before huggingface_hub is imported -------------------------------
_TMP_ROOT = Path(tempfile.mkdtemp(prefix="modelyard-hf-tests-"))
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "HF_HUB_CACHE",
             "HF_XET_CACHE", "HF_ASSETS_CACHE", "HF_HUB_ENABLE_HF_TRANSFER", "HF_ENDPOINT"):
    os.environ.pop(_var, None)
os.environ["HF_HOME"] = str(_TMP_ROOT / "hf-home")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HUB_DISABLE_UPDATE_CHECK"] = "1"
os.environ["HF_HUB_DISABLE_SYMLINKS_WARNING"] = "1"
os.environ["HF_HUB_DISABLE_EXPERIMENTAL_WARNING"] = "1"

assert "huggingface_hub" not in sys.modules, "huggingface_hub was imported before HF_ENDPOINT was set"

_SERVER_LOG = _TMP_ROOT / "server.stderr.log"
_any_failure = False


class Server:
    def __init__(self, binary: str, data_dir: Path):
        self.binary = binary
        self.data_dir = data_dir
        self.url = ""
        self.admin_token: str | None = None
        self.stdout_lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def extra_args() -> list[str]:
        """With HF_TESTS_BLOB_STORE (an s3:// URL, set by scripts/hf-tests under scripts/services),
        blobs go to that S3 store and LFS downloads are redirected to pre-signed URLs."""
        store = os.environ.get("HF_TESTS_BLOB_STORE")
        return ["--blob-store", store, "--download-redirect", "true"] if store else []

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.setdefault("RUST_LOG", "info")
        return env

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(_SERVER_LOG, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--bind", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
            + self.extra_args(),
            stdout=subprocess.PIPE, stderr=log, cwd=str(self.data_dir.parent), env=self._env(),
            text=True, bufsize=1,
        )
        first: list[str] = []
        got_first = threading.Event()

        def drain():
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                self.stdout_lines.append(line)
                if not got_first.is_set():
                    first.append(line)
                    got_first.set()

        threading.Thread(target=drain, daemon=True, name="modelyard-stdout").start()
        if not got_first.wait(60):
            self.stop()
            raise RuntimeError(f"modelyard did not print its URL within 60 s; log:\n{server_log()}")
        if not first or not first[0].startswith("modelyard listening on "):
            self.stop()
            raise RuntimeError(f"unexpected first stdout line {first!r}; log:\n{server_log()}")
        self.url = first[0].split("modelyard listening on ", 1)[1].strip().rstrip("/")
        # The admin token (if any) follows on its own line; it is not needed but wait briefly for it.
        deadline = time.time() + 5
        while time.time() < deadline and len(self.stdout_lines) < 2:
            time.sleep(0.05)
        if len(self.stdout_lines) >= 2 and self.stdout_lines[1].startswith("created the admin account"):
            while time.time() < deadline and len(self.stdout_lines) < 3:
                time.sleep(0.05)
            if len(self.stdout_lines) >= 3:
                self.admin_token = self.stdout_lines[2].strip()

    def create_user(self, name: str) -> str:
        out = subprocess.run(
            [self.binary, "admin", "create-user", name, "--token", "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, cwd=str(self.data_dir.parent), env=self._env(), timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"create-user {name} failed ({out.returncode}): {out.stderr}")
        token = out.stdout.strip().splitlines()[-1].strip()
        assert token and " " not in token, f"unexpected create-user output {out.stdout!r}"
        return token

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def server_log(tail: int = 80) -> str:
    try:
        lines = _SERVER_LOG.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(lines[-tail:])


def _binary() -> str:
    root = Path(__file__).resolve().parents[2]
    default = Path(os.environ.get("CARGO_TARGET_DIR", str(root / "target"))) / "debug" / "modelyard"
    binary = os.environ.get("MODELYARD_BIN") or str(default)
    if not os.path.isabs(binary):
        binary = str(root / binary)
    if not os.access(binary, os.X_OK):
        pytest.exit(f"modelyard binary not found or not executable: {binary} (set MODELYARD_BIN)", returncode=2)
    return binary


@pytest.fixture(scope="session")
def server():
    srv = Server(_binary(), _TMP_ROOT / "data")
    srv.start()
    os.environ["HF_ENDPOINT"] = srv.url
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def hf(server):
    """The huggingface_hub package, imported after HF_ENDPOINT points at the server."""
    import huggingface_hub
    from huggingface_hub import constants

    assert constants.ENDPOINT == server.url, (constants.ENDPOINT, server.url)
    return huggingface_hub


@pytest.fixture(scope="session")
def hf_major(hf) -> int:
    return int(hf.__version__.split(".")[0])


@pytest.fixture(scope="session")
def make_user(server):
    def _make(prefix: str = "u") -> tuple[str, str]:
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        return name, server.create_user(name)

    return _make


@pytest.fixture(scope="session")
def alice(make_user):
    return make_user("alice")


@pytest.fixture(scope="session")
def bob(make_user):
    return make_user("bob")


@pytest.fixture(scope="session")
def api(hf, server, alice):
    """HfApi authenticated as alice."""
    return hf.HfApi(endpoint=server.url, token=alice[1])


@pytest.fixture(scope="session")
def bob_api(hf, server, bob):
    return hf.HfApi(endpoint=server.url, token=bob[1])


@pytest.fixture(scope="session")
def anon_api(hf, server):
    return hf.HfApi(endpoint=server.url, token=False)


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "hf-cache"
    d.mkdir()
    return d


# --- failure reporting ----------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    global _any_failure
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        _any_failure = True


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _any_failure or exitstatus not in (0, 5):
        terminalreporter.section("modelyard server log (stderr, last 80 lines; full log kept in the temp dir named below)")
        terminalreporter.write_line(server_log())


def pytest_unconfigure(config):
    if not _any_failure:
        shutil.rmtree(_TMP_ROOT, ignore_errors=True)
    else:
        print(f"\nmodelyard-hf-tests: kept {_TMP_ROOT} (server data and log)", file=sys.stderr)
