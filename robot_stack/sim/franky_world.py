"""The real-time sim world: a task scene inside franky-sim, served on a loopback address.

:class:`FrankyWorld` builds a ``franky_sim.MujocoSimulator`` with one FR3, lets a scene
(a :class:`robot_stack.sim.tasks.TaskDefinition`, or anything with the same small
:class:`~robot_stack.sim.realtime_world.WorldScene` interface) add its bodies and cameras, and
starts a ``franky_sim.SimulationServer`` bound to ``hostname`` (TCP 1337 robot, 1338 gripper).
The Franka node then connects with the ``franky`` backend exactly as it would to a real robot.

The physics loop runs in a background thread at 1 kHz of sim time, paced to
``realtime_factor`` x wall time (it cannot run faster than the CPU allows: see
:attr:`FrankyWorld.realtime_factor_measured`). Locking, episode resets (objects only; the arm
stays where the robot server holds it) and rendering are the shared ones of
:class:`robot_stack.sim.realtime_world.RealtimeWorld`; see there.
:class:`robot_stack.sim.direct_world.DirectWorld` is the same task without the libfranka
protocol, for machines where this loop cannot keep real time next to the whole graph.

Run as a process (also used by tests and ``benchmarks/franky_sim_realtime.py``)::

    python -m robot_stack.sim.franky_world --hostname 127.0.0.1 --task reach \
        --render-hz 10 --camera front

prints ``ready <hostname>`` once the server accepts connections, runs until SIGINT/SIGTERM,
then prints one JSON line of statistics.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np

from robot_stack.sim.realtime_world import (  # noqa: F401  (WorldScene, SceneReset: public here too)
    RealtimeWorld,
    RealtimeWorldConfig,
    SceneReset,
    WorldScene,
    build_task_scene,
)

logger = logging.getLogger(__name__)

SIM_DT_S = 0.001
"""franky-sim physics step (1 kHz, like the real robot's control loop)."""


@dataclass(frozen=True)
class FrankyWorldConfig(RealtimeWorldConfig):
    """Real-time sim world settings (franky-sim)."""

    hostname: str = "127.0.0.1"
    """Loopback address the franky-sim server binds (TCP 1337/1338); the Franka node's robot_ip."""

    def validate(self) -> None:
        super().validate()
        if not self.hostname:
            raise ValueError("hostname must not be empty (use a loopback address such as 127.0.0.1)")


class FrankyWorld(RealtimeWorld):
    """franky-sim + a task scene + cameras; see the module docstring."""

    step_dt_s = SIM_DT_S
    name = "franky-world"

    def __init__(self, config: FrankyWorldConfig | None = None, scene: WorldScene | None = None,
                 clock=time.perf_counter):
        super().__init__(config or FrankyWorldConfig(), scene, clock)
        self._sim = None
        self._server = None

    def _open(self) -> None:
        import franky_sim

        cfg = self.config
        sim = build_task_scene(cfg, self.scene)
        server = franky_sim.SimulationServer(sim, hostname_candidates=[cfg.hostname])
        try:
            server.init()  # binds the sockets, compiles the model (sim.start())
        except OSError as e:
            sim.cleanup()
            raise OSError(f"franky-sim could not bind {cfg.hostname}:1337/1338 ({e}): another world "
                          f"is running on that address; pick another 127.x.y.z") from e
        self._sim, self._server = sim, server
        self._model, self._data = sim.model, sim.data
        logger.info("franky-sim world serving on %s", cfg.hostname)

    def _step(self) -> None:
        self._server.run_once(realtime=False)

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._sim is not None:
            self._sim.cleanup()
            self._sim = None

    @property
    def hostname(self) -> str:
        return self.config.hostname


# -- process entry point ------------------------------------------------------------------------
class WorldProcess:
    """A world served by a child process (``python -m robot_stack.sim.franky_world``).

    ``with WorldProcess("127.0.0.42", task="reach") as w:`` returns once the server accepts
    connections (it waits for the child's ``ready`` line, not a fixed time) and terminates
    the child on exit; :attr:`stats` then holds the child's final statistics.
    """

    def __init__(self, hostname: str, task: str = "none", extra_args: tuple[str, ...] = (), ready_timeout_s: float = 90.0):
        self.hostname = hostname
        self.args = [sys.executable, "-m", "robot_stack.sim.franky_world", "--hostname", hostname, "--task", task, *extra_args]
        self.ready_timeout_s = ready_timeout_s
        self.proc = None
        self.stats: dict | None = None

    def __enter__(self) -> "WorldProcess":
        import selectors
        import subprocess

        # stderr goes to a file: an unread pipe would fill up and block the child after a while.
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.ready_timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    raise TimeoutError(f"franky-sim world on {self.hostname} not ready after {self.ready_timeout_s} s")
                line = self.proc.stdout.readline()
                if not line:
                    self._stderr.seek(0)
                    raise RuntimeError(f"franky-sim world on {self.hostname} exited early: {self._stderr.read()[-2000:]}")
                if line.startswith("ready"):
                    return self
        except BaseException:
            self._stop()
            raise
        finally:
            sel.close()

    def _stop(self) -> None:
        import subprocess

        if self.proc is None:
            return
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        for line in (out or "").splitlines()[::-1]:
            if line.startswith("{"):
                self.stats = json.loads(line)
                break
        self.proc = None
        self._stderr.close()

    def __exit__(self, *exc):
        self._stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a task scene in franky-sim on a loopback address.")
    parser.add_argument("--hostname", default="127.0.0.1")
    parser.add_argument("--task", default="none", help="task name (robot_stack.sim.tasks) or 'none'")
    parser.add_argument("--realtime-factor", type=float, default=1.0)
    parser.add_argument("--render-hz", type=float, default=0.0, help="render the camera at this rate (0: never)")
    parser.add_argument("--camera", default="front")
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MUJOCO_GL", "egl")

    scene = None
    if args.task != "none":
        from robot_stack.sim.tasks import make_task

        scene = make_task(args.task)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    render_ms: list[float] = []
    world = FrankyWorld(FrankyWorldConfig(hostname=args.hostname, realtime_factor=args.realtime_factor), scene)
    with world:
        if scene is not None:
            world.reset_scene(0)
        print(f"ready {world.hostname}", flush=True)
        period = 1.0 / args.render_hz if args.render_hz > 0 else None
        camera = args.camera if scene is not None else None
        while not stop.is_set():
            if period is None or camera is None:
                stop.wait(0.5)
            else:
                t0 = time.perf_counter()
                world.render(camera, args.image_size, args.image_size)
                render_ms.append((time.perf_counter() - t0) * 1e3)
                stop.wait(max(0.0, period - (time.perf_counter() - t0)))
            world.check()
        stats = {
            "sim_time_s": world.sim_time_s,
            "realtime_factor": world.realtime_factor_measured,
            "renders": len(render_ms),
            "render_ms_mean": float(np.mean(render_ms)) if render_ms else None,
        }
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
