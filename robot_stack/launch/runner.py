"""Run a :class:`~robot_stack.launch.description.LaunchPlan`: one child process per node.

Behaviour (what ``ros2 launch`` does, plus the differences marked *):

* Each node runs as its own process (its own process group), with the environment inherited
  intact (the ROS wheels' ``LD_LIBRARY_PATH`` bootstrap relies on it).
* Output lines are prefixed ``[name]``. ``output: screen``/``both`` show stdout and stderr;
  ``log`` (the default) shows stderr and writes stdout to ``$ROS_LOG_DIR`` (or
  ``~/.ros/log``) ``/launch-<time>/<name>.log``.
* ``respawn: "true"``: a process that exits (with any status) is started again after
  ``respawn_delay`` seconds, unless the launch is shutting down; its exit never ends the launch.
* Shutdown (Ctrl-C or SIGTERM to the runner, or a failed process): SIGINT to every process,
  SIGTERM to one still running ``sigterm_timeout`` seconds later, SIGKILL ``sigkill_timeout``
  seconds after that (per process: its node attribute, else the launch configurations).
  A stop requested by a signal exits 0.
  * A second Ctrl-C escalates every process to the next signal at once (ros2 launch ignores
    it), and SIGTERM to the runner shuts down in order too (ros2 launch exits at once and
    may orphan its processes).
* * A process without ``respawn`` that exits with a non-zero status fails the launch: the
  others are stopped as above and the runner exits 1, naming the process, its status and
  where it is declared (ros2 launch logs the death and runs on). A process that exits 0
  just ends. When every process has ended, the runner exits 0.
"""
from __future__ import annotations

import datetime as _dt
import os
import pathlib
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

from robot_stack.launch.description import LaunchPlan, ProcessSpec

_POLL_S = 0.1  # event-loop wake-up period: signal flags and deadlines are checked this often
_AFTER_SIGKILL_S = 5.0  # how long to wait for the exits of killed processes to be reported


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen
    readers: list[threading.Thread]
    log_file: IO[str] | None
    returncode: int | None = None
    """Set by the waiting thread as soon as the process has exited."""
    reported: bool = False
    """Set by the supervising loop once it took the exit event (output drained, log closed,
    exit reported): until then the child counts as running, so no exit goes unreported."""
    stage: int = 0
    """Shutdown signals sent so far: 1 SIGINT, 2 SIGTERM, 3 SIGKILL."""


_STAGES = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def _normal_scheduling() -> None:
    """In the child before exec: ordinary time-sharing scheduling. A caller that runs at real-time
    priority (franky.Robot() raises its caller to SCHED_FIFO 99) must not hand that to every
    node: a busy real-time process starves the machine. Nodes that need real time (libfranka's
    control thread) set it for themselves."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass  # not permitted or not supported: keep what we have


class LaunchRunner:
    """Starts the plan's processes and supervises them until the launch ends."""

    def __init__(self, plan: LaunchPlan, *, out: IO[str] | None = None, log_dir: str | os.PathLike | None = None,
                 debug: bool = False) -> None:
        self.plan = plan
        self.out = out or sys.stdout
        self.debug = debug
        base = pathlib.Path(log_dir or os.environ.get("ROS_LOG_DIR") or pathlib.Path.home() / ".ros" / "log")
        self.log_dir = base / f"launch-{_dt.datetime.now().strftime('%Y-%m-%d-%H-%M-%S')}-{os.getpid()}"
        self._out_lock = threading.Lock()
        self._out_broken = False
        self._events: queue.Queue[_Child] = queue.Queue()
        self._children: dict[str, _Child] = {}
        self._signals = 0  # Ctrl-C/SIGTERM count; set by the signal handler, read by the loop
        self._respawn_at: dict[str, float] = {}  # name -> monotonic time of its restart

    # -- output --------------------------------------------------------------------------
    def _write(self, text: str) -> None:
        with self._out_lock:
            if self._out_broken:
                return
            try:
                self.out.write(text)
                self.out.flush()
            except (BrokenPipeError, OSError, ValueError):
                # Whoever read our output went away (closed pipe): keep supervising silently;
                # dying here would orphan the children.
                self._out_broken = True

    def say(self, text: str) -> None:
        self._write(f"[launch] {text}\n")

    def _pump(self, child_name: str, stream: IO[bytes], show: bool, log_file: IO[str] | None) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            if log_file is not None:
                log_file.write(line + "\n")
                log_file.flush()
            if show:
                self._write(f"[{child_name}] {line}\n")
        stream.close()

    # -- processes -------------------------------------------------------------------------
    def _start(self, spec: ProcessSpec) -> None:
        env = os.environ.copy()  # intact: LD_LIBRARY_PATH and the wheels' bootstrap flag stay
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the prefixer as they are printed
        env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")
        log_file = None
        if spec.output in ("log", "both"):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_file = open(self.log_dir / f"{spec.name}.log", "a")
        try:
            proc = subprocess.Popen(
                spec.cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True,  # own group: we forward signals once
                preexec_fn=_normal_scheduling,
            )
        except OSError as e:
            if log_file is not None:
                log_file.close()
            raise RuntimeError(f"cannot start '{spec.name}' ({spec.where}): {e}") from e
        show_stdout = spec.output in ("screen", "both")
        readers = [
            threading.Thread(target=self._pump, args=(spec.name, proc.stdout, show_stdout, log_file), daemon=True),
            threading.Thread(target=self._pump, args=(spec.name, proc.stderr, True, log_file), daemon=True),
        ]
        for t in readers:
            t.start()
        child = _Child(spec, proc, readers, log_file)
        self._children[spec.name] = child
        threading.Thread(target=self._wait, args=(child,), daemon=True).start()
        self.say(f"started '{spec.name}' (pid {proc.pid})")
        if self.debug:
            self.say(f"debug: '{spec.name}': {shlex.join(spec.cmd)} (output: {spec.output}, respawn: {spec.respawn}, "
                     f"sigterm_timeout {spec.sigterm_timeout_s:g} s, sigkill_timeout {spec.sigkill_timeout_s:g} s)")

    def _wait(self, child: _Child) -> None:
        child.returncode = child.proc.wait()
        for t in child.readers:
            t.join(timeout=2.0)
        if child.log_file is not None:
            child.log_file.close()
        self._events.put(child)

    def _alive(self) -> list[_Child]:
        return [c for c in self._children.values() if not c.reported]

    def _next_exit(self, timeout_s: float) -> _Child | None:
        """The next child whose exit has been fully handled (output pumped, log closed), marked
        reported and said; None after ``timeout_s``."""
        try:
            child = self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None
        child.reported = True
        self.say(f"'{child.spec.name}' exited with {_describe_rc(child.returncode)}")
        return child

    def _signal(self, child: _Child, stage: int) -> None:
        """Send shutdown signal number ``stage`` (1 SIGINT, 2 SIGTERM, 3 SIGKILL) to ``child``."""
        child.stage = stage
        if child.returncode is not None:
            return  # exited (and reaped): its group id may belong to someone else now
        try:
            os.killpg(child.proc.pid, _STAGES[stage - 1])
        except ProcessLookupError:
            pass  # exited in the meantime

    # -- signals ---------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._signals += 1  # only a flag: the loop acts on it (no locks in a signal handler)

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> int:
        """Run until the launch ends; return the exit status (see module docstring)."""
        if not self.plan.processes:
            self.say("nothing to launch")
            self.plan.cleanup()
            return 0
        in_main = threading.current_thread() is threading.main_thread()
        old = {}
        if in_main:
            for s in (signal.SIGINT, signal.SIGTERM):
                old[s] = signal.signal(s, self._on_signal)
        try:
            try:
                return self._supervise()
            except BaseException:
                # Whatever went wrong in the runner itself, never leave children behind.
                self._shutdown(1, "runner error")
                raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.plan.cleanup()

    def _supervise(self) -> int:
        try:
            for spec in self.plan.processes:
                self._start(spec)
        except RuntimeError as e:
            self.say(str(e))
            return self._shutdown(1, "a process could not start")
        while True:
            if self._signals:
                return self._shutdown(0, "stop requested (signal)")
            child = self._next_exit(_POLL_S)
            try:
                self._respawn_due()
            except RuntimeError as e:
                self.say(str(e))
                return self._shutdown(1, "a process could not be restarted")
            if child is not None:
                spec = child.spec
                if spec.respawn:
                    self.say(f"respawning '{spec.name}' in {spec.respawn_delay_s:g} s")
                    self._respawn_at[spec.name] = time.monotonic() + spec.respawn_delay_s
                elif child.returncode != 0:
                    self.say(f"'{spec.name}' ({spec.where}) failed: stopping the launch. A process without respawn "
                             "that exits with a non-zero status fails the whole launch (robot_stack runner rule)")
                    return self._shutdown(1, f"'{spec.name}' failed")
            if not self._alive() and not self._respawn_at:
                return 0

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for name, at in list(self._respawn_at.items()):
            if now >= at:
                del self._respawn_at[name]
                self._start(self._children[name].spec)

    def _shutdown(self, status: int, reason: str) -> int:
        self._respawn_at.clear()  # nothing is restarted from here on
        alive = self._alive()
        if not alive:
            return status
        self.say(f"shutting down ({reason}): SIGINT to {', '.join(c.spec.name for c in alive)}")
        start = time.monotonic()
        for c in alive:
            self._signal(c, 1)
        signals_seen = self._signals
        killed_at = None
        while self._alive():
            now = time.monotonic()
            escalate = self._signals > signals_seen  # another Ctrl-C: every process to the next signal now
            signals_seen = self._signals
            for c in self._alive():
                term_at = start + c.spec.sigterm_timeout_s
                kill_at = term_at + c.spec.sigkill_timeout_s
                if c.stage == 1 and (escalate or now >= term_at):
                    self.say(f"'{c.spec.name}' still running {now - start:.1f} s after SIGINT: sending SIGTERM")
                    self._signal(c, 2)
                elif c.stage == 2 and (escalate or now >= kill_at):
                    self.say(f"'{c.spec.name}' still running {now - start:.1f} s after SIGINT: sending SIGKILL")
                    self._signal(c, 3)
            if all(c.stage == 3 for c in self._alive()):
                killed_at = killed_at or now
                if now - killed_at > _AFTER_SIGKILL_S:
                    break
            self._next_exit(_POLL_S)
        return status


def _describe_rc(rc: int | None) -> str:
    if rc is None:
        return "unknown status"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"status {rc}"
