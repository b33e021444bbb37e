"""A fast stand-in for ``meltano run tap-zoho-crm target-postgres``, faithful where it counts.

What stays exactly as Meltano does it (checked against meltano 4.4.1's source):

- The real ``tap-zoho-crm`` console script and the real ``target-postgres`` of the project's
  Meltano plugin venv, with the configs Meltano resolves from ``meltano.yml`` (read once per
  session with ``meltano config --unsafe print``) and the loader's ``env`` (``PGTZ``).
- The catalog: the tap's discovery with every stream and property selected (Meltano's
  default ``select: ["*.*"]``).
- The tap's stdout is proxied line by line into the target's stdin; when the tap exits, for
  whatever reason, the target's stdin is closed and the target finishes on its own.
- STATE: every non-empty JSON line the target prints replaces the stored state; the last one
  becomes the next run's ``--state``. A killed or failed run keeps the last STATE the target
  printed before it exited (``BookmarkWriter`` with ``Payload.STATE``).

What differs, for speed only: importing target-postgres takes ~2.5 s, so a fork server
imports it once and forks a fresh process per run, handing it the pipe ends with
``SCM_RIGHTS``. Each run is still its own process with its own environment and exit code.
Set ``TZC_PIPELINE_EXEC=1`` to start the console script instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from tests.integration import harness

TAP = harness.BIN / "tap-zoho-crm"
TARGET_VENV = harness.REPO / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin"
TARGET = TARGET_VENV / "target-postgres"
EXEC_TARGET = os.environ.get("TZC_PIPELINE_EXEC") == "1"

# Runs in the target's own interpreter: import once, fork per run. One JSON command per
# message on the socket; a run's three fds travel with it. Answers are JSON lines.
_FORK_SERVER = r"""
import json, os, signal, socket, sys
from target_postgres.target import TargetPostgres
# What a run imports lazily anyway (the driver, zone data); importing it once saves ~0.4 s.
import ctypes.util, multiprocessing.dummy, psycopg, zoneinfo
import sqlalchemy.dialects.postgresql.psycopg

sock = socket.socket(fileno=int(sys.argv[1]))
answers = sock.makefile("w")

def run_child(command, fds):
    os.setsid()
    for fd, target in zip(fds, (0, 1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    sock.close()
    os.environ.clear()
    os.environ.update(command["env"])
    os.chdir(command["cwd"])
    sys.stdin = os.fdopen(0, "r", encoding="utf-8", closefd=False)
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", encoding="utf-8", buffering=1, closefd=False)
    sys.argv = command["argv"]
    code = 1
    try:
        TargetPostgres.cli()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

while True:
    message, fds, _, _ = socket.recv_fds(sock, 65536, 3)
    if not message:
        break
    command = json.loads(message)
    if command["op"] == "run":
        pid = os.fork()
        if pid == 0:
            run_child(command, fds)
        for fd in fds:
            os.close(fd)
        answers.write(json.dumps({"pid": pid}) + "\n")
    elif command["op"] == "wait":
        _, status = os.waitpid(command["pid"], 0)
        answers.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    answers.flush()
"""


@dataclass(frozen=True)
class PluginConfigs:
    """Tap and loader configs as Meltano resolves them for the ``dev`` environment."""

    tap: dict[str, Any]
    target: dict[str, Any]
    target_env: dict[str, str]

    @classmethod
    def from_meltano(cls, workdir: Path) -> PluginConfigs:
        """Ask the real Meltano CLI once; per-run values are overridden by the caller."""
        env = {
            **os.environ,
            "MELTANO_DATABASE_URI": f"sqlite:///{workdir}/meltano.db",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_ENVIRONMENT": "dev",
        }
        configs = []
        for plugin in ("tap-zoho-crm", "target-postgres"):
            done = subprocess.run(
                [str(harness.BIN / "meltano"), "config", "--unsafe", "print", plugin],
                cwd=harness.REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            configs.append(json.loads(done.stdout))
        return cls(tap=configs[0], target=configs[1], target_env=_loader_env())


def _loader_env() -> dict[str, str]:
    """The ``env`` block meltano.yml gives target-postgres (PGTZ)."""
    project = yaml.safe_load((harness.REPO / "meltano.yml").read_text(encoding="utf-8"))
    for loader in project["plugins"]["loaders"]:
        if loader["name"] == "target-postgres":
            return {key: str(value) for key, value in (loader.get("env") or {}).items()}
    return {}


def discover_catalog(tap_config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The tap's catalog with everything selected, as Meltano's default ``*.*`` leaves it."""
    config_path = workdir / "discover-config.json"
    config_path.write_text(json.dumps(tap_config), encoding="utf-8")
    done = subprocess.run(
        [str(TAP), "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    catalog = json.loads(done.stdout)
    for stream in catalog["streams"]:
        for entry in stream.get("metadata", []):
            entry["metadata"]["selected"] = True
    return dict(catalog)


class TargetForkServer:
    """A target-postgres interpreter that has imported the target and forks one per run."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [str(TARGET_VENV / "python"), "-c", _FORK_SERVER, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            start_new_session=True,
        )
        theirs.close()
        self.sock = ours
        self.answers = ours.makefile("r")
        self.lock = threading.Lock()

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, fds: list[int]) -> int:
        """Fork a target run reading ``fds[0]`` and writing ``fds[1]``/``fds[2]``."""
        command = {"op": "run", "argv": argv, "env": env, "cwd": str(cwd)}
        return int(self._ask(command, fds)["pid"])

    def wait(self, pid: int) -> int:
        """Wait for a forked run and return its exit code."""
        return int(self._ask({"op": "wait", "pid": pid}, [])["code"])

    def _ask(self, command: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        with self.lock:
            socket.send_fds(self.sock, [json.dumps(command).encode()], fds)
            line = self.answers.readline()
        if not line:
            msg = "the target fork server died"
            raise RuntimeError(msg)
        return dict(json.loads(line))

    def close(self) -> None:
        """Stop the server (runs it forked have already been waited for)."""
        self.answers.close()
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class RunResult:
    """How one pipeline run ended."""

    tap_code: int
    target_code: int
    records: int
    killed: bool
    state_lines: int
    seconds: float
    tap_log: Path
    target_log: Path

    @property
    def ok(self) -> bool:
        """Both sides exited 0 (a killed run never counts as ok)."""
        return not self.killed and self.tap_code == 0 and self.target_code == 0

    def describe(self) -> str:
        """One line for assertion messages, with the end of the tap's log."""
        tail = self.tap_log.read_text(encoding="utf-8", errors="replace")[-3000:]
        target_tail = self.target_log.read_text(encoding="utf-8", errors="replace")[-1500:]
        return (
            f"tap exit {self.tap_code}, target exit {self.target_code}, "
            f"{self.records} records, killed={self.killed}\n--- tap log ---\n{tail}"
            f"\n--- target log ---\n{target_tail}"
        )


@dataclass
class Pipeline:
    """One tap-to-target pipeline with Meltano's state handling, run as often as needed."""

    workdir: Path
    tap_config: dict[str, Any]
    target_config: dict[str, Any]
    target_env: dict[str, str]
    catalog: dict[str, Any]
    fork_server: TargetForkServer | None = None
    state: dict[str, Any] | None = None
    runs: int = 0
    history: list[RunResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write("tap-config.json", self.tap_config)
        self._write("target-config.json", self.target_config)
        self._write("catalog.json", self.catalog)

    def _write(self, name: str, content: dict[str, Any]) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(content), encoding="utf-8")
        return path

    def run(self, *, kill_after_records: int | None = None, timeout: float = 120) -> RunResult:
        """Run tap | target once; SIGKILL the tap after that many RECORD lines if asked."""
        self.runs += 1
        started = time.monotonic()
        tap_log = self.workdir / f"run{self.runs}-tap.log"
        target_log = self.workdir / f"run{self.runs}-target.log"
        tap = self._start_tap(tap_log)
        target = _TargetRun(self, target_log)
        watchdog = threading.Timer(timeout, _kill, args=(tap,))
        watchdog.start()
        try:
            records, killed = _proxy(tap, target.stdin, kill_after_records)
        finally:
            watchdog.cancel()
            target.close_stdin()
            tap_code = tap.wait()
        target_code, lines = target.finish()
        for line in lines:
            self._keep_state(line)
        result = RunResult(
            tap_code,
            target_code,
            records,
            killed,
            len(lines),
            time.monotonic() - started,
            tap_log,
            target_log,
        )
        self.history.append(result)
        return result

    def _start_tap(self, log: Path) -> subprocess.Popen[bytes]:
        args = [
            str(TAP),
            "--config",
            str(self.workdir / "tap-config.json"),
            "--catalog",
            str(self.workdir / "catalog.json"),
        ]
        if self.state:
            args += ["--state", str(self._write(f"state-{self.runs}.json", self.state))]
        with log.open("wb") as err:
            return subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=self.workdir,
                start_new_session=True,
            )

    def _keep_state(self, line: str) -> None:
        """Meltano's BookmarkWriter: a non-empty JSON object replaces the stored state."""
        try:
            state = json.loads(line)
        except ValueError:
            return
        if isinstance(state, dict) and state:
            self.state = state


class _TargetRun:
    """One target process: its stdin pipe, and the STATE lines it prints."""

    def __init__(self, pipeline: Pipeline, log: Path) -> None:
        argv = [str(TARGET), "--config", str(pipeline.workdir / "target-config.json")]
        env = {**os.environ, **pipeline.target_env}
        self.lines: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self.server = pipeline.fork_server
        with log.open("wb") as err:
            if self.server is None or EXEC_TARGET:
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env=env,
                    cwd=pipeline.workdir,
                    start_new_session=True,
                )
                assert self.proc.stdin is not None
                assert self.proc.stdout is not None
                self.stdin: IO[bytes] = self.proc.stdin
                stdout: IO[bytes] = self.proc.stdout
            else:
                in_read, in_write = os.pipe()
                out_read, out_write = os.pipe()
                fds = [in_read, out_write, err.fileno()]
                self.pid = self.server.start(argv, env, pipeline.workdir, fds)
                os.close(in_read)
                os.close(out_write)
                self.stdin = os.fdopen(in_write, "wb")
                stdout = os.fdopen(out_read, "rb")
        self.reader = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self.reader.start()

    def _read(self, stdout: IO[bytes]) -> None:
        with stdout:
            for raw in stdout:
                line = raw.decode("utf-8", errors="replace").strip()
                if line:
                    self.lines.append(line)

    def close_stdin(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.stdin.close()

    def finish(self) -> tuple[int, list[str]]:
        if self.proc is not None:
            code = self.proc.wait()
        else:
            assert self.server is not None
            code = self.server.wait(self.pid)
        self.reader.join(timeout=30)
        return code, self.lines


def _proxy(
    tap: subprocess.Popen[bytes], target_stdin: IO[bytes], kill_after: int | None
) -> tuple[int, bool]:
    """Copy the tap's lines to the target; kill the tap after ``kill_after`` records.

    After a kill the lines already in the pipe are still forwarded, as Meltano's proxy
    reads the tap's stdout to its end.
    """
    assert tap.stdout is not None
    records, killed = 0, False
    for line in tap.stdout:
        try:
            target_stdin.write(line)
        except BrokenPipeError:
            _kill(tap)
            break
        if line.startswith(b'{"type":"RECORD"'):
            records += 1
            if kill_after is not None and records >= kill_after and not killed:
                _kill(tap)
                killed = True
    with contextlib.suppress(BrokenPipeError):
        target_stdin.flush()
    return records, killed


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
