"""The real ``claude`` and ``codex`` programs, pinned, for tests that run them offline.

:func:`install_clis` installs the pinned versions from npm into a cache folder shared by
every test run on the machine (``~/.cache/looprunner-test-clis/<versions>``, or
``LOOPRUNNER_TEST_CLI_CACHE``); a file lock keeps parallel test workers from installing
twice, and a marker written last means a half-done install is never used.
:func:`fake_model_env` returns the environment that points both programs at a
:class:`~looprunner.testing.fake_model_server.FakeModelServer` and nowhere else: fake
keys, their own config folders, no auto-update and no telemetry.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import attrs

from looprunner.testing.fake_model_server import FakeModelServer

#: the versions the tests run (docs/providers.md names them as tested)
CLAUDE_CODE_VERSION = "2.1.332"
CODEX_VERSION = "0.171.0"
PACKAGES = (f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}", f"@openai/codex@{CODEX_VERSION}")
CACHE_ENV = "LOOPRUNNER_TEST_CLI_CACHE"
#: the model the fake Codex provider is configured with
CODEX_FAKE_MODEL = "gpt-fake"


class CLIsUnavailable(Exception):
    """The real CLIs cannot be had here (no npm, or the install failed); tests skip."""


@attrs.frozen
class RealCLIs:
    """Where the installed programs are: ``bin`` goes first on an agent's PATH."""

    bin: Path

    @property
    def claude(self) -> Path:
        """The ``claude`` program."""
        return self.bin / "claude"

    @property
    def codex(self) -> Path:
        """The ``codex`` program."""
        return self.bin / "codex"


def cache_folder() -> Path:
    """Return the folder the pinned CLIs are installed into."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "looprunner-test-clis"
    return base / f"claude-code-{CLAUDE_CODE_VERSION}+codex-{CODEX_VERSION}"


def install_clis(folder: Path | None = None, *, timeout: float = 900) -> RealCLIs:
    """Install the pinned CLIs into ``folder`` (the shared cache) unless already there.

    Raises
    ------
    CLIsUnavailable
        ``npm`` is not on PATH, or the install failed (the reason is in the message).
    """
    folder = folder or cache_folder()
    clis = RealCLIs(bin=folder / "node_modules" / ".bin")
    marker = folder / ".installed"
    if marker.is_file():
        return clis
    npm = shutil.which("npm")
    if npm is None:
        raise CLIsUnavailable("npm is not on PATH: the real claude and codex cannot be installed")
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer; the others wait, then find it done
        if marker.is_file():
            return clis
        argv = [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", *PACKAGES]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise CLIsUnavailable(f"npm install of {' '.join(PACKAGES)} timed out") from None
        if done.returncode != 0 or not (clis.claude.exists() and clis.codex.exists()):
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise CLIsUnavailable(f"npm install of {' '.join(PACKAGES)} failed: {' '.join(tail)}")
        marker.write_text(" ".join(PACKAGES) + "\n")
    return clis


def codex_config(server: FakeModelServer, retries: int | None = None) -> str:
    """Return a ``config.toml`` that makes ``codex`` use only the fake server.

    ``retries`` sets the provider's ``request_max_retries`` and ``stream_max_retries``
    (Codex's own defaults: 4 and 5).
    """
    config = (
        f'model = "{CODEX_FAKE_MODEL}"\n'
        'model_provider = "fake"\n'
        "[model_providers.fake]\n"
        'name = "fake"\n'
        f'base_url = "{server.url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "OPENAI_API_KEY"\n'
    )
    if retries is not None:
        config += f"request_max_retries = {retries}\nstream_max_retries = {retries}\n"
    return config


def fake_model_env(
    server: FakeModelServer, clis: RealCLIs, home: Path, *, retries: int | None = None
) -> dict[str, str]:
    """Return the variables that point both CLIs at ``server``, configured under ``home``.

    ``home`` holds each program's own configuration (``CLAUDE_CONFIG_DIR``,
    ``CODEX_HOME``), so a test never reads or changes the user's, and is the agents'
    ``HOME``: the login shells both CLIs run their tools in then read no profile of the
    user's (a ``pyenv init`` there runs ``pyenv rehash``, whose lock, left behind by a
    shell an iteration's end killed, stalls every later shell). ``retries`` bounds
    how often each CLI tries a failed model request again on its own before it gives up
    (``CLAUDE_CODE_MAX_RETRIES``; Codex's ``request_max_retries`` and
    ``stream_max_retries``), so a test of a persistent 429 takes seconds, not minutes.
    """
    claude_home = home / "claude"
    codex_home = home / "codex"
    claude_home.mkdir(parents=True, exist_ok=True)
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(server, retries))
    env = {
        "PATH": f"{clis.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "sk-ant-fake-for-tests",
        "CLAUDE_CONFIG_DIR": str(claude_home),
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "OPENAI_API_KEY": "sk-fake-for-tests",
        "CODEX_HOME": str(codex_home),
        "HOME": str(home),
    }
    if retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(retries)
    return env
