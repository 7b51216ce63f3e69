"""A fork server for the kill -9 tests: pay for `import torch` once, then run each CLI call in a fresh child.

Run as `python helpers_forker.py`; it reads one JSON request per line on stdin and answers one line per request:
    {"argv": [...], "log": PATH, "err": PATH or null, "kill_after": SECONDS or null, "signal": NAME or null,
     "kill_in_save": N or null, "env": {NAME: VALUE} or null, "session": true or absent}
    -> {"pid": PID, "status": EXIT CODE, or -9 when the child was SIGKILLed, "seconds": wall time}

Each child is a separate process running `resnetcli ARGV` through the console script's own function
(`resnetcli.cli.main`), with stdout in LOG and stderr in ERR (or LOG). What a fresh interpreter would take from
its environment at start-up is redone in the child: a PYTHONPATH in ENV is put on sys.path (and the registry,
discovered in the server, forgotten), so installed-by-path plugins are found. session: the child leads its own
process group, as `start_new_session=True` would, for tests that signal the whole group. What a child cannot show:
what Python reads from the environment at start-up alone (PYTHONWARNINGS, the locale, PYTHONIOENCODING), and the
interpreter's own exit (children leave through os._exit); tests about those start a real interpreter.
The forker itself never runs a torch operation, so forking after the import is safe.
- kill_after: the forker sends SIGNAL (default SIGKILL) to the child that many seconds after forking (if it is
  still running). The child is reaped only after the kill, so its pid cannot have been reused by then.
- kill_in_save: the child SIGKILLs itself in the middle of its Nth torch.save (the checkpoint writer's only
  call): half of the bytes are in the temporary file, flushed to disk, when the signal lands. This makes
  "killed during a checkpoint write" deterministic instead of a lucky timing.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # the server only: never change the environment of a test process importing this
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# The point of the fork server: torch, torch._dynamo (torch.optim imports it on first use: seconds each child
# would pay) and resnetcli are imported once, before any fork.
import torch
import torch._dynamo

import resnetcli.cli
import resnetcli.engine.trainer


def _preload() -> None:
    """Import (never run) what a training call imports lazily, so children start warm."""
    import importlib

    for name in ("albumentations", "tqdm.auto", "rich.table", "resnetcli.augment", "resnetcli.data",
                 "resnetcli.models", "resnetcli.optim", "resnetcli.engine.bookkeeping"):
        importlib.import_module(name)
    from resnetcli.registry import registry

    for kind in ("architectures", "optimizers", "schedulers", "augmentations", "datasets"):
        registry(kind).names()



def _child(request: dict) -> None:
    for target, key in ((1, "log"), (2, "err")):
        fd = os.open(request.get(key) or request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin.close()
    if request.get("session"):
        os.setsid()
    env = request.get("env") or {}
    os.environ.update(env)
    if env.get("PYTHONPATH"):
        import importlib

        from resnetcli.registry import registry

        sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
        importlib.invalidate_caches()
        registry.cache_clear()
    torch.set_num_threads(1)
    nth = request.get("kill_in_save")
    if nth:
        real_save = torch.save
        calls = [0]

        def dying_save(obj, f, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls[0] += 1
            if calls[0] < nth:
                return real_save(obj, f, *args, **kwargs)
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            with open(f, "wb") as fh:
                fh.write(data[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = dying_save
    code = 0
    sys.argv = ["resnetcli", *request["argv"]]
    try:
        resnetcli.cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # pragma: no cover - a crash the log will show
        import traceback

        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _reap(pid: int, deadline: float | None, signal_name: str | None) -> int | None:
    """Wait for child `pid`; at `deadline` send it the signal (SIGKILL by default) and wait on. None: still running
    at a deadline given without a signal."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if deadline is not None and time.monotonic() >= deadline:
            if signal_name == "none":
                return None
            # not reaped yet, so this pid is still our child
            os.kill(pid, getattr(signal, signal_name or "SIGKILL"))
            deadline = None
        time.sleep(0.005)


def _serve() -> None:
    started: dict[int, float] = {}
    finished: dict[int, int] = {}  # reaped children's statuses: a pid is never waited on twice
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "wait" in request:  # {"wait": pid, "timeout": s or null, "signal": NAME, "none" (just report) or null}
            pid = int(request["wait"])
            deadline = None if request.get("timeout") is None else time.monotonic() + float(request["timeout"])
            code = finished[pid] if pid in finished else _reap(pid, deadline, request.get("signal"))
        elif "kill" in request:  # {"kill": pid, "signal": NAME}: only children not reaped yet
            pid = int(request["kill"])
            if pid not in finished:
                os.kill(pid, getattr(signal, request.get("signal") or "SIGKILL"))
            print(json.dumps({"pid": pid}), flush=True)
            continue
        else:
            pid = os.fork()
            if pid == 0:
                _child(request)
            started[pid] = time.monotonic()
            if request.get("detach"):  # answer now; a later {"wait": pid} reaps it
                print(json.dumps({"pid": pid}), flush=True)
                continue
            deadline = None if request.get("kill_after") is None else started[pid] + float(request["kill_after"])
            code = _reap(pid, deadline, request.get("signal"))
        if code is not None:
            finished[pid] = code
        print(json.dumps({"pid": pid, "status": code, "seconds": time.monotonic() - started[pid]}), flush=True)


class Forker:
    """The test side: start the server once (it pays for `import torch`), then run CLI calls through it."""

    def __init__(self) -> None:
        here = Path(__file__).parent
        # without COLUMNS/LINES: rich would fix its consoles' width at the server's; a child's ENV sets its own
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        self.proc = subprocess.Popen([sys.executable, str(here / "helpers_forker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=here, env=env)

    def run(self, argv: list[str], log: object, *, err: object = None, kill_after: float | None = None,
            signal_name: str | None = None, kill_in_save: int | None = None, env: dict | None = None) -> dict:
        return self._ask({"argv": argv, "log": str(log), "err": None if err is None else str(err),
                          "kill_after": kill_after, "signal": signal_name, "kill_in_save": kill_in_save, "env": env})

    def invoke(self, argv: list[str], *, env: dict | None = None,
               stdout: str | None = None) -> subprocess.CompletedProcess[str]:
        """`resnetcli ARGV` in a child, as subprocess.run(..., capture_output=True, text=True) would give it;
        `stdout`: a file the child writes its stdout to instead (not read back: "" in the result)."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(stdout or Path(tmp, "out")), Path(tmp, "err")
            status = self.run(argv, out, err=err, env=env)["status"]
            return subprocess.CompletedProcess(argv, status, "" if stdout else out.read_text(), err.read_text())

    def start(self, argv: list[str], log: object, *, err: object = None, env: dict | None = None,
              session: bool = False) -> int:
        """Start a child and return its pid at once; wait() reaps it. session: in a process group of its own."""
        return self._ask({"argv": argv, "log": str(log), "err": None if err is None else str(err), "env": env,
                          "detach": True, "session": session})["pid"]

    def wait(self, pid: int, *, timeout: float | None = None, signal_name: str | None = "none") -> int | None:
        """The child's exit status; None if still running after `timeout` (signal_name 'none'), else it gets
        that signal at the timeout and its status is returned."""
        return self._ask({"wait": pid, "timeout": timeout, "signal": signal_name})["status"]

    def kill(self, pid: int, signal_name: str = "SIGKILL") -> None:
        self._ask({"kill": pid, "signal": signal_name})

    def _ask(self, request: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the fork server died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


_SHARED: list[Forker] = []


def shared_forker() -> Forker:
    """One fork server for the whole test session (torch imported once), stopped when the session ends."""
    if not _SHARED or _SHARED[0].proc.poll() is not None:
        import atexit

        _SHARED[:] = [Forker()]
        atexit.register(_SHARED[0].close)
    return _SHARED[0]


if __name__ == "__main__":
    _preload()
    _serve()
