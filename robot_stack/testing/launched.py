"""A launch file run by our launch runner in a subprocess, for tests that start whole graphs.

:class:`Launched` starts ``robot-stack launch <file> name:=value ...`` in its own session,
collects its console lines, stops it the way a user would (SIGINT, then SIGKILL after a
timeout) and afterwards kills any node the runner reported starting, so a failed test never
leaves a node behind.
"""
from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading

ROOT = pathlib.Path(__file__).resolve().parents[2]
_STARTED = re.compile(r"\[launch\] started '([^']+)' \(pid (\d+)\)")


def params_of(proc) -> dict:
    """The parameters a planned launch process gets, merged over its --params-file files in order."""
    import yaml

    out: dict = {}
    for i, a in enumerate(proc.cmd):
        if a == "--params-file":
            with open(proc.cmd[i + 1]) as f:
                for section in (yaml.safe_load(f) or {}).values():
                    out.update(section["ros__parameters"])
    return out


class Launched:
    """``Launched("sim.launch.yaml", ["physics:=direct"], env={...})``; see the module docstring."""

    def __init__(self, launch_file: str, args=(), env: dict | None = None):
        path = pathlib.Path(launch_file)
        if not path.is_absolute():
            path = ROOT / "launch" / path
        cmd = [sys.executable, str(ROOT / "scripts" / "robot-stack"), "launch", str(path), *args]
        self.proc = subprocess.Popen(cmd, env=dict(os.environ if env is None else env, PYTHONUNBUFFERED="1"),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()

    def running(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        return "".join(list(self.lines)[-n:])

    def pid_of(self, name: str) -> int:
        """The pid the runner reported for node ``name``."""
        for line in list(self.lines):
            m = _STARTED.search(line)
            if m and m.group(1) == name:
                return int(m.group(2))
        raise AssertionError(f"launch output never reported the pid of '{name}'")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGINT (as Ctrl-C), wait up to ``timeout_s``, then SIGKILL; kill every node it
        started that is still there. Returns the runner's exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for line in list(self.lines):
            m = _STARTED.search(line)
            if m:
                try:
                    os.kill(int(m.group(2)), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._reader.join(timeout=5.0)
        return rc

    def save(self, path: pathlib.Path) -> None:
        """The whole console, for a failure's post-mortem."""
        path.write_text("".join(self.lines))


__all__ = ["Launched"]
