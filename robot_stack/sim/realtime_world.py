"""What both real-time sim worlds share: task scene, paced physics thread, fair lock, cameras.

:class:`RealtimeWorld` is the base of :class:`robot_stack.sim.franky_world.FrankyWorld` (the
FR3 behind the libfranka protocol, franky-sim's 1 kHz loop) and
:class:`robot_stack.sim.direct_world.DirectWorld` (the same scene stepped by the resolved-rate
controller, reached over a small UDP link). A subclass says how to build the model
(:meth:`_open`), what one loop iteration does (:meth:`_step`, under the world lock, advancing
sim time by :attr:`step_dt_s`) and how to release it (:meth:`_shutdown`); the base runs the
iterations in a background thread paced to ``realtime_factor`` x wall time and measures the
factor it achieves.

Other threads touch ``model``/``data`` only under the world lock: rendering copies the scene
under the lock and draws outside it; :meth:`reset_scene`, :meth:`is_success` and
:meth:`read` run under it.

Episode resets move task objects only. The arm is left where the robot side holds it
(teleporting it would fight the robot's controller); the start TCP position the task sampled
is returned so the caller can send the arm there through the Franka node
(``/robot_stack/franka/home_to``).

Rendering: set ``MUJOCO_GL=egl`` (or ``osmesa``) before importing mujoco. A renderer (and its
GL context) is created per (calling thread, image size), so :meth:`render` works from any
thread; :meth:`close` releases those of the calling thread (the rest go with the process).
"""
from __future__ import annotations

import abc
import contextlib
import logging
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar, runtime_checkable

import numpy as np

from robot_stack.sim.scene import HOME_Q

logger = logging.getLogger(__name__)

T = TypeVar("T")


@runtime_checkable
class WorldScene(Protocol):
    """What a world needs from a task (TaskDefinition satisfies it)."""

    def add_to_scene(self, worldbody: ET.Element) -> None: ...
    def camera_mounts(self) -> tuple: ...
    def reset(self, model, data, rng: np.random.Generator) -> None: ...
    def is_success(self, model, data) -> bool: ...


@dataclass(frozen=True)
class SceneReset:
    """What an episode reset produced."""

    start_tcp_xyz_m: np.ndarray | None
    """TCP position the task sampled for the episode start (send the arm there), or None."""
    seed: int
    """Seed the scene was reset with."""


@dataclass(frozen=True)
class RealtimeWorldConfig:
    """Settings every real-time world has."""

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
        if self.realtime_factor < 0:
            raise ValueError(f"realtime_factor must be >= 0, got {self.realtime_factor}")
        if len(self.initial_q_rad) != 7:
            raise ValueError(f"initial_q_rad needs 7 joint angles, got {len(self.initial_q_rad)}")


def build_task_scene(config: RealtimeWorldConfig, scene: WorldScene | None):
    """franky-sim's FR3 scene (``MujocoSimulator`` after ``add_robot``) with the task added.

    Both worlds start from it, so they show the same robot, lights, floor and cameras."""
    from franky_sim.mujoco_simulator import MujocoSimulator

    sim = MujocoSimulator()
    sim.init()
    width = getattr(scene, "gripper_width_m", config.initial_gripper_width_m) if scene else config.initial_gripper_width_m
    sim.add_robot(initial_q=tuple(config.initial_q_rad), initial_hand_width=float(width))
    if scene is not None:
        scene.add_to_scene(sim.worldbody)
    if config.fast_rendering:
        make_rendering_cheap(sim.scene)
    return sim


def make_rendering_cheap(scene_root: ET.Element) -> None:
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


class RealtimeWorld(abc.ABC):
    """Paced physics thread + task scene + cameras; see the module docstring."""

    step_dt_s: float = 0.001
    """Sim time one :meth:`_step` advances, s (a subclass sets it)."""
    name: str = "world"
    """For thread names and messages."""

    def __init__(self, config: RealtimeWorldConfig, scene: WorldScene | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        config.validate()
        self.config = config
        self.scene = scene
        self._clock = clock
        self._lock = threading.Lock()
        # threading.Lock is not fair: the physics loop releases and re-takes it every step and
        # would starve readers (renders went seconds stale under load). Readers announce
        # themselves here; the loop steps aside until they have had their turn.
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self._model = None
        self._data = None
        self._thread: threading.Thread | None = None
        self._running = False
        self._error: Exception | None = None
        self.steps = 0
        """Loop iterations taken (sim time = steps * step_dt_s)."""
        self._t_start_wall: float | None = None
        # One renderer per (thread, size): an EGL context is current in one thread only, so a
        # multi-threaded executor's callbacks each get their own.
        self._renderers: dict[tuple[int, int, int], object] = {}
        self._robot_qpos_adr: np.ndarray | None = None
        self._robot_dof_adr: np.ndarray | None = None

    # -- what a subclass provides ----------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> None:
        """Build the simulation; set ``self._model`` and ``self._data``."""

    @abc.abstractmethod
    def _step(self) -> None:
        """One loop iteration (``step_dt_s`` of sim time); called with the world lock held."""

    @abc.abstractmethod
    def _shutdown(self) -> None:
        """Release what :meth:`_open` made (the loop has stopped)."""

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        self._open()
        self._resolve_robot_addresses()
        self._running = True
        self._t_start_wall = self._clock()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
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
        self._shutdown()
        self._model = self._data = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- physics loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        rtf = self.config.realtime_factor
        period = self.step_dt_s / rtf if rtf > 0 else 0.0
        next_t = self._clock()
        try:
            while self._running:
                with self._lock:
                    self._step()
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
            logger.exception("%s loop stopped", self.name)

    def check(self) -> None:
        """Raise the physics thread's exception, if it died."""
        if self._error is not None:
            raise RuntimeError(f"{self.name} loop died: {self._error!r}") from self._error

    # -- access ---------------------------------------------------------------------------------
    @property
    def sim_time_s(self) -> float:
        return self.steps * self.step_dt_s

    @property
    def realtime_factor_measured(self) -> float:
        """Sim time / wall time since start."""
        if self._t_start_wall is None:
            return 0.0
        return self.sim_time_s / max(self._clock() - self._t_start_wall, 1e-9)

    @property
    def model(self):
        return self._model

    def read(self, fn: Callable[[object, object], T]) -> T:
        """Run ``fn(model, data)`` under the world lock (consistent snapshot, physics paused)."""
        self._require()
        with self._turn():
            return fn(self._model, self._data)

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
        if self._model is None:
            raise RuntimeError("world not started: call start() first")
        self.check()

    def _resolve_robot_addresses(self) -> None:
        import mujoco

        model = self._model
        qpos, dof = [], []
        for name in [f"robot0_fr3_joint{i}" for i in range(1, 8)] + ["robot0_finger_joint1", "robot0_finger_joint2"]:
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0:
                raise RuntimeError(f"joint {name} missing from the world's model")
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
            model, data = self._model, self._data
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
            renderer = mujoco.Renderer(self._model, height=key[1], width=key[2])
            self._renderers[key] = renderer
        with self._turn():  # copying the scene is quick; drawing happens outside the lock
            renderer.update_scene(self._data, camera=camera)
        return renderer.render().copy()
