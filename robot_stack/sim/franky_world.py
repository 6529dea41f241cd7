"""The real-time sim world: a task scene inside franky-sim, served on a loopback address.

:class:`FrankyWorld` builds a ``franky_sim.MujocoSimulator`` with one FR3, lets a scene
(a :class:`robot_stack.sim.tasks.TaskDefinition`, or anything with the same small
:class:`WorldScene` interface) add its bodies and cameras, and starts a
``franky_sim.SimulationServer`` bound to ``hostname`` (TCP 1337 robot, 1338 gripper). The
Franka node then connects with the ``franky`` backend exactly as it would to a real robot.

The physics loop runs in a background thread at 1 kHz of sim time, paced to
``realtime_factor`` x wall time (it cannot run faster than the CPU allows: see
:attr:`FrankyWorld.realtime_factor_measured`). Other threads touch ``model``/``data`` only
under the world's lock: rendering copies the scene under the lock and draws outside it;
:meth:`reset_scene`, :meth:`is_success` and :meth:`read` run under it.

Episode resets move task objects only. The arm is left where the robot server holds it
(teleporting it would fight the server's hold controller); the start TCP position the task
sampled is returned so the caller can send the arm there through the Franka node
(``/robot_stack/franka/home_to``).

Rendering: set ``MUJOCO_GL=egl`` (or ``osmesa``) before importing mujoco. A renderer (and
its GL context) is created per (calling thread, image size), so :meth:`render` works from any
thread; :meth:`close` releases those of the calling thread (the rest go with the process).

Run as a process (also used by tests and ``benchmarks/franky_sim_realtime.py``)::

    python -m robot_stack.sim.franky_world --hostname 127.0.0.1 --task reach \
        --render-hz 10 --camera front

prints ``ready <hostname>`` once the server accepts connections, runs until SIGINT/SIGTERM,
then prints one JSON line of statistics.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar, runtime_checkable

import numpy as np

from robot_stack.sim.scene import HOME_Q

logger = logging.getLogger(__name__)

SIM_DT_S = 0.001
"""franky-sim physics step (1 kHz, like the real robot's control loop)."""

T = TypeVar("T")


@runtime_checkable
class WorldScene(Protocol):
    """What the world needs from a task (TaskDefinition satisfies it)."""

    def add_to_scene(self, worldbody: ET.Element) -> None: ...
    def camera_mounts(self) -> tuple: ...
    def reset(self, model, data, rng: np.random.Generator) -> None: ...
    def is_success(self, model, data) -> bool: ...


@dataclass(frozen=True)
class FrankyWorldConfig:
    """Real-time sim world settings."""

    hostname: str = "127.0.0.1"
    """Loopback address the franky-sim server binds (TCP 1337/1338); the Franka node's robot_ip."""
    realtime_factor: float = 1.0
    """Target sim speed relative to wall time (1.0 = real time); 0 runs as fast as possible."""
    initial_q_rad: tuple[float, ...] = HOME_Q
    """Arm joint configuration at start, rad (EE pointing down in front of the robot)."""
    initial_gripper_width_m: float = 0.08
    """Finger width at start, m (a scene's gripper_width_m overrides it)."""
    fast_rendering: bool = True
    """Turn off shadows and multisampling and coarsen the floor grid (software GL is slow)."""
    max_lag_s: float = 0.1
    """When the loop falls behind by more than this, it stops trying to catch up (no bursts), s."""

    def validate(self) -> None:
        if not self.hostname:
            raise ValueError("hostname must not be empty (use a loopback address such as 127.0.0.1)")
        if self.realtime_factor < 0:
            raise ValueError(f"realtime_factor must be >= 0, got {self.realtime_factor}")
        if len(self.initial_q_rad) != 7:
            raise ValueError(f"initial_q_rad needs 7 joint angles, got {len(self.initial_q_rad)}")


@dataclass(frozen=True)
class SceneReset:
    """What an episode reset produced."""

    start_tcp_xyz_m: np.ndarray | None
    """TCP position the task sampled for the episode start (send the arm there), or None."""
    seed: int
    """Seed the scene was reset with."""


class FrankyWorld:
    """franky-sim + a task scene + cameras; see the module docstring."""

    def __init__(self, config: FrankyWorldConfig | None = None, scene: WorldScene | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.config = config or FrankyWorldConfig()
        self.config.validate()
        self.scene = scene
        self._clock = clock
        self._lock = threading.Lock()
        # threading.Lock is not fair: the physics loop releases and re-takes it every 1 ms and
        # would starve readers (renders went seconds stale under load). Readers announce
        # themselves here; the loop steps aside until they have had their turn.
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self._sim = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._error: Exception | None = None
        self.steps = 0
        """Physics steps taken (sim time = steps * 1 ms)."""
        self._t_start_wall: float | None = None
        # One renderer per (thread, size): an EGL context is current in one thread only, so a
        # multi-threaded executor's callbacks each get their own.
        self._renderers: dict[tuple[int, int, int], object] = {}
        self._robot_qpos_adr: np.ndarray | None = None
        self._robot_dof_adr: np.ndarray | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "FrankyWorld":
        import franky_sim
        from franky_sim.mujoco_simulator import MujocoSimulator

        cfg = self.config
        sim = MujocoSimulator()
        sim.init()
        width = getattr(self.scene, "gripper_width_m", cfg.initial_gripper_width_m) if self.scene else cfg.initial_gripper_width_m
        sim.add_robot(initial_q=tuple(cfg.initial_q_rad), initial_hand_width=float(width))
        if self.scene is not None:
            self.scene.add_to_scene(sim.worldbody)
        if cfg.fast_rendering:
            _make_rendering_cheap(sim.scene)
        server = franky_sim.SimulationServer(sim, hostname_candidates=[cfg.hostname])
        try:
            server.init()  # binds the sockets, compiles the model (sim.start())
        except OSError as e:
            sim.cleanup()
            raise OSError(f"franky-sim could not bind {cfg.hostname}:1337/1338 ({e}): another world "
                          f"is running on that address; pick another 127.x.y.z") from e
        self._sim, self._server = sim, server
        self._resolve_robot_addresses()
        self._running = True
        self._t_start_wall = self._clock()
        self._thread = threading.Thread(target=self._loop, name="franky-world", daemon=True)
        self._thread.start()
        logger.info("franky-sim world serving on %s", cfg.hostname)
        return self

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        me = threading.get_ident()
        for (owner, _, _), r in self._renderers.items():
            if owner == me:
                r.close()
            # Renderers of other threads cannot be released from here (EGL_BAD_ACCESS); the
            # process exit frees them.
        self._renderers.clear()
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._sim is not None:
            self._sim.cleanup()
            self._sim = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- physics loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        period = SIM_DT_S / self.config.realtime_factor if self.config.realtime_factor > 0 else 0.0
        next_t = self._clock()
        try:
            while self._running:
                with self._lock:
                    self._server.run_once(realtime=False)
                self.steps += 1
                while self._waiting:
                    time.sleep(0.0001)  # let a waiting reader take the lock (see __init__)
                if period == 0.0:
                    continue
                next_t += period
                ahead = next_t - self._clock()
                if ahead > 0.002:
                    # Pacing (not synchronization): sleep in >= 2 ms chunks to keep overhead low.
                    time.sleep(ahead)
                elif ahead < -self.config.max_lag_s:
                    next_t = self._clock()  # too far behind: drop the backlog instead of bursting
        except Exception as e:  # noqa: BLE001 - thread top level: reported through check()
            self._error = e
            logger.exception("franky-sim loop stopped")

    def check(self) -> None:
        """Raise the physics thread's exception, if it died."""
        if self._error is not None:
            raise RuntimeError(f"franky-sim loop died: {self._error!r}") from self._error

    # -- access ---------------------------------------------------------------------------------
    @property
    def hostname(self) -> str:
        return self.config.hostname

    @property
    def sim_time_s(self) -> float:
        return self.steps * SIM_DT_S

    @property
    def realtime_factor_measured(self) -> float:
        """Sim time / wall time since start."""
        if self._t_start_wall is None:
            return 0.0
        return self.sim_time_s / max(self._clock() - self._t_start_wall, 1e-9)

    @property
    def model(self):
        return None if self._sim is None else self._sim.model

    def read(self, fn: Callable[[object, object], T]) -> T:
        """Run ``fn(model, data)`` under the world lock (consistent snapshot, physics paused)."""
        self._require()
        with self._turn():
            return fn(self._sim.model, self._sim.data)

    @contextlib.contextmanager
    def _turn(self):
        """The world lock, taken fairly against the physics loop."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _require(self) -> None:
        if self._sim is None:
            raise RuntimeError("world not started: call start() first")
        self.check()

    def _resolve_robot_addresses(self) -> None:
        import mujoco

        model = self._sim.model
        qpos, dof = [], []
        for name in [f"robot0_fr3_joint{i}" for i in range(1, 8)] + ["robot0_finger_joint1", "robot0_finger_joint2"]:
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0:
                raise RuntimeError(f"joint {name} missing from the franky-sim model")
            qpos.append(model.jnt_qposadr[jid])
            dof.append(model.jnt_dofadr[jid])
        self._robot_qpos_adr, self._robot_dof_adr = np.array(qpos), np.array(dof)

    # -- task -------------------------------------------------------------------------------------
    def reset_scene(self, seed: int) -> SceneReset:
        """Re-sample the task's objects (the arm stays where it is; see the module docstring)."""
        import mujoco

        self._require()
        if self.scene is None:
            return SceneReset(None, seed)
        rng = np.random.default_rng(seed)
        with self._turn():
            model, data = self._sim.model, self._sim.data
            q_arm = data.qpos[self._robot_qpos_adr].copy()
            dq_arm = data.qvel[self._robot_dof_adr].copy()
            self.scene.reset(model, data, rng)
            start = None
            robot = getattr(self.scene, "robot", None)
            if callable(robot):
                start = np.asarray(robot(model).tcp_pos(data), dtype=np.float64).copy()
            data.qpos[self._robot_qpos_adr] = q_arm
            data.qvel[self._robot_dof_adr] = dq_arm
            mujoco.mj_forward(model, data)
        return SceneReset(start, seed)

    def is_success(self) -> bool:
        self._require()
        if self.scene is None:
            return False
        return bool(self.read(self.scene.is_success))

    def camera_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.scene.camera_mounts()) if self.scene is not None else ()

    def render(self, camera: str, height: int = 64, width: int = 64) -> np.ndarray:
        """RGB uint8 (height, width, 3) image from a named camera (call from one thread only)."""
        import mujoco

        self._require()
        key = (threading.get_ident(), int(height), int(width))
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = mujoco.Renderer(self._sim.model, height=key[1], width=key[2])
            self._renderers[key] = renderer
        with self._turn():  # copying the scene is quick; drawing happens outside the lock
            renderer.update_scene(self._sim.data, camera=camera)
        return renderer.render().copy()


def _make_rendering_cheap(scene_root: ET.Element) -> None:
    """No shadows, no multisampling, coarse floor grid: ~10x faster software rendering."""
    visual = scene_root.find("visual")
    if visual is not None:
        for q in visual.findall("quality"):
            q.set("shadowsize", "0")
            q.set("offsamples", "0")
    for light in scene_root.iter("light"):
        light.set("castshadow", "false")
    for geom in scene_root.iter("geom"):
        if geom.get("type") == "plane":
            size = (geom.get("size") or "10 10 0.1").split()
            if len(size) == 3:
                geom.set("size", f"{size[0]} {size[1]} 0.5")


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
