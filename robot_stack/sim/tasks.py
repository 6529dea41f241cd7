# Over 400 lines: both task definitions (scene, observation, reward, reset) side by side.
"""Task definitions shared by the fast Gymnasium driver and the real-time franky-sim world.

One task definition, two drivers
--------------------------------
A :class:`TaskDefinition` knows the task's scene additions, cameras, reset distribution,
success test, reference value and expert; it holds no simulation state (everything lives in
``model``/``data``: mocap poses for targets and boards), so the same object works in

* the fast driver (:mod:`robot_stack.sim.env`): MuJoCo stepped directly, scene from
  :func:`robot_stack.sim.scene.build_scene`, EE velocity via :class:`~robot_stack.sim.robot.EEVelocityController`;
* the franky-sim world (:mod:`robot_stack.sim.franky_world`): ``franky_sim``'s
  ``MujocoSimulator`` after ``add_robot()`` (robot prefix ``robot0_``, base at the origin).

Use in a franky-sim world (sketch)::

    from franky_sim.mujoco_simulator import MujocoSimulator
    task = make_task("peg_insertion")
    sim = MujocoSimulator()
    sim.add_robot(initial_q=HOME_Q, initial_hand_width=task.gripper_width_m)
    task.add_to_scene(sim.worldbody)          # board/target mocap bodies, peg, cameras
    ... start the server; then, at an episode start:
    task.reset(sim.model, sim.data, np.random.default_rng(seed))   # writes mocap + arm qpos
    ... each control step: task.is_success(sim.model, sim.data), cameras by name
    (task.camera_mounts()), task.reference_value(...), task.expert_velocity(...)

The peg is rigidly part of the hand body (10 g, so franky-sim's pinocchio gravity model,
which does not know it, is off by 0.1 N); hold the gripper at ``gripper_width_m``.

Interface (all positions in the robot base frame = world frame, metres):

``add_to_scene(worldbody)``
    Append the task's MJCF elements (an ``xml.etree`` ``<worldbody>`` element) incl. cameras.
``camera_mounts() -> tuple[CameraMount, ...]``
    Cameras the task offers (``front`` in the world, ``wrist`` on the hand).
``reset(model, data, rng)``
    Sample the task's randomization (mocap poses) and teleport the arm to a sampled start
    TCP pose (qpos written, qvel zeroed, ``mj_forward`` called). A driver that holds the arm
    with its own controller must re-read the joint positions afterwards.
``is_success(model, data) -> bool``
    Sparse success test, stateless.
``goal_position(model, data) -> (3,)``
    Where the tool point must go (reach target; for the peg the point ``insert_depth_m``
    below the hole's top centre).
``tool_pos(model, data) -> (3,)``
    The task's tool point: TCP for reach, peg tip for the peg.
``progress_distance(model, data, tool_pos, goal_offset_m) -> float``
    Shaped distance-to-goal (m) of a tool point; 0 at the goal.
``reference_value(model, data, lin_m_s, goal_offset_m=None) -> float``
    Value of taking the TCP velocity ``lin_m_s`` for one control period:
    ``exp(-D(p + lin_m_s * dt) / value_length_scale_m)`` with ``D`` the progress distance of
    the tool point after a one-step look-ahead (blocked by the board where it could not go).
    In (0, 1]; larger is better, as RLIF's rule ``Q(a_pi) < beta * Q(a_exp)`` needs.
``expert_velocity(model, data, goal_offset_m=None) -> (3,) m/s``
    Scripted expert; ``goal_offset_m`` is a belief error (the operator thinks the goal is
    there), used by :mod:`robot_stack.sim.operator` to model imperfect operators.
"""
from __future__ import annotations

import abc
import logging
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from robot_stack.sim.robot import R_BASE_EE_DOWN, FR3Handles
from robot_stack.sim.scene import HOME_Q, ROBOT_PREFIX, CameraMount, add_camera, find_body, look_at_xyaxes
from robot_stack.types.spec import ActionSpec

logger = logging.getLogger(__name__)

FRONT_CAMERA = CameraMount(
    name="front", pos=(1.05, 0.45, 0.55), xyaxes=look_at_xyaxes((1.05, 0.45, 0.55), (0.5, 0.0, 0.25)), fovy_deg=50.0
)
"""Camera in front of the robot, off to its left, looking at the workspace centre."""

WRIST_CAMERA = CameraMount(
    name="wrist", pos=(0.07, 0.0, 0.02), xyaxes=(0.0, -1.0, 0.0, -0.94, 0.0, -0.34),
    fovy_deg=70.0, parent_body="hand",
)
"""Camera on the hand, behind the fingers, looking down past the tool."""

PROPRIO_NAMES = (
    "tcp_x_m", "tcp_y_m", "tcp_z_m",
    "tcp_qw", "tcp_qx", "tcp_qy", "tcp_qz",
    "tcp_vx_m_s", "tcp_vy_m_s", "tcp_vz_m_s",
    "gripper_width_m",
)
"""Proprioception layout (TCP pose in the base frame, TCP linear velocity, gripper width)."""


class _Handles:
    """Per-model cache of ids; a task may be used with several models over its life."""

    def __init__(self) -> None:
        self._model = None
        self._cache: dict = {}

    def get(self, model: mujoco.MjModel, build) -> dict:
        if model is not self._model:
            self._model = model
            self._cache = build(model)
        return self._cache


class TaskDefinition(abc.ABC):
    """Base class: see the module docstring for the interface contract."""

    name: str = ""
    default_cameras: tuple[str, ...] = ("front",)
    value_length_scale_m: float = 0.05
    """Length scale of the reference value exp(-D / L) (m)."""

    def __init__(
        self,
        robot_prefix: str = ROBOT_PREFIX,
        horizon_steps: int = 50,
        control_rate_hz: float = 10.0,
        action_spec: ActionSpec | None = None,
    ) -> None:
        self.robot_prefix = robot_prefix
        self.horizon_steps = int(horizon_steps)
        self.control_rate_hz = float(control_rate_hz)
        self.action_spec = action_spec or ActionSpec()
        self._handles = _Handles()

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    # -- scene ------------------------------------------------------------------------------
    def camera_mounts(self) -> tuple[CameraMount, ...]:
        return (FRONT_CAMERA, WRIST_CAMERA)

    def add_to_scene(self, worldbody: ET.Element) -> None:
        """Add task bodies and the cameras to a worldbody that already holds the robot."""
        self._add_task_elements(worldbody)
        for cam in self.camera_mounts():
            add_camera(worldbody, cam, self.robot_prefix)

    @abc.abstractmethod
    def _add_task_elements(self, worldbody: ET.Element) -> None: ...

    @property
    def gripper_width_m(self) -> float:
        """Gripper width the task expects the hand to hold (m)."""
        return 0.04

    # -- ids ---------------------------------------------------------------------------------
    def robot(self, model: mujoco.MjModel) -> FR3Handles:
        return self.handles(model)["robot"]

    def handles(self, model: mujoco.MjModel) -> dict:
        def build(m):
            d = {"robot": FR3Handles(m, self.robot_prefix)}
            d.update(self._build_handles(m))
            return d

        return self._handles.get(model, build)

    def _build_handles(self, model: mujoco.MjModel) -> dict:
        return {}

    @staticmethod
    def _mocap_id(model: mujoco.MjModel, body_name: str) -> int:
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body_name)
        if bid < 0 or model.body_mocapid[bid] < 0:
            raise KeyError(f"mocap body '{body_name}' missing: was task.add_to_scene() called?")
        return int(model.body_mocapid[bid])

    # -- task logic --------------------------------------------------------------------------
    def tool_pos(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """The point the task is about (TCP for reach, peg tip for the peg)."""
        return self.robot(model).tcp_pos(data)

    @abc.abstractmethod
    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None: ...

    @abc.abstractmethod
    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool: ...

    @abc.abstractmethod
    def goal_position(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray: ...

    @abc.abstractmethod
    def progress_distance(
        self, model: mujoco.MjModel, data: mujoco.MjData, tool_pos: np.ndarray, goal_offset_m: np.ndarray | None = None
    ) -> float: ...

    @abc.abstractmethod
    def expert_velocity(
        self, model: mujoco.MjModel, data: mujoco.MjData, goal_offset_m: np.ndarray | None = None
    ) -> np.ndarray: ...

    def task_state(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """Privileged state for ``obs_mode='state'``: goal position and goal minus tool (6,)."""
        g = self.goal_position(model, data)
        return np.concatenate([g, g - self.tool_pos(model, data)]).astype(np.float32)

    def lookahead_tool_pos(
        self, model: mujoco.MjModel, data: mujoco.MjData, lin_m_s: np.ndarray, goal_offset_m: np.ndarray | None = None
    ) -> np.ndarray:
        """Tool position after moving at ``lin_m_s`` for one control period (no physics)."""
        return self.tool_pos(model, data) + np.asarray(lin_m_s, dtype=np.float64) * self.control_period_s

    def reference_value(
        self, model: mujoco.MjModel, data: mujoco.MjData, lin_m_s: np.ndarray, goal_offset_m: np.ndarray | None = None
    ) -> float:
        """exp(-D(one-step look-ahead) / L) in (0, 1]; see the module docstring."""
        p_next = self.lookahead_tool_pos(model, data, lin_m_s, goal_offset_m)
        return float(np.exp(-self.progress_distance(model, data, p_next, goal_offset_m) / self.value_length_scale_m))

    def expert_action(
        self, model: mujoco.MjModel, data: mujoco.MjData, goal_offset_m: np.ndarray | None = None
    ) -> np.ndarray:
        """The expert's velocity as a normalized action of ``action_spec``."""
        return self.action_spec.from_twist(self.expert_velocity(model, data, goal_offset_m))

    def proprio(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        r = self.robot(model)
        return np.concatenate(
            [r.tcp_pos(data), r.tcp_quat(data), r.tcp_linvel(data), [r.gripper_width(data)]]
        ).astype(np.float32)

    def _place_arm(
        self, model: mujoco.MjModel, data: mujoco.MjData, tcp_pos: np.ndarray, finger_width_m: float
    ) -> None:
        r = self.robot(model)
        data.qvel[:] = 0.0
        data.qpos[r.finger_qpos_adr] = finger_width_m / 2.0
        err = r.set_tcp_pose(model, data, tcp_pos, R_BASE_EE_DOWN, q_start=np.asarray(HOME_Q))
        if err > 2e-3:
            logger.warning("reset IK residual %.4f m for TCP target %s", err, np.round(tcp_pos, 3))


class ReachTask(TaskDefinition):
    """Move the TCP to a randomized target (a small red ball) and hold it there.

    Success: TCP within ``success_radius_m`` of the target and TCP speed below
    ``max_success_speed_m_s`` (stateless version of "reach and stay").
    Reset: start TCP = nominal + U(+-start_range_m); target = start + U(+-target_range_m)
    per axis, clipped to the target box, at least ``min_target_distance_m`` away.
    """

    name = "reach"
    default_cameras = ("front",)

    def __init__(
        self,
        robot_prefix: str = ROBOT_PREFIX,
        horizon_steps: int = 50,
        control_rate_hz: float = 10.0,
        action_spec: ActionSpec | None = None,
        success_radius_m: float = 0.03,
        max_success_speed_m_s: float = 0.05,
        start_center_m: tuple[float, float, float] = (0.5, 0.0, 0.3),
        start_range_m: tuple[float, float, float] = (0.08, 0.12, 0.06),
        target_range_m: tuple[float, float, float] = (0.15, 0.15, 0.12),
        min_target_distance_m: float = 0.06,
    ) -> None:
        super().__init__(robot_prefix, horizon_steps, control_rate_hz, action_spec)
        self.success_radius_m = success_radius_m
        self.max_success_speed_m_s = max_success_speed_m_s
        self.start_center_m = np.asarray(start_center_m)
        self.start_range_m = np.asarray(start_range_m)
        self.target_range_m = np.asarray(target_range_m)
        self.min_target_distance_m = min_target_distance_m
        self.target_low_m = np.array([0.3, -0.3, 0.1])
        self.target_high_m = np.array([0.7, 0.3, 0.5])

    def _add_task_elements(self, worldbody: ET.Element) -> None:
        body = ET.SubElement(worldbody, "body", name="reach_target", mocap="true", pos="0.5 0 0.3")
        ET.SubElement(body, "geom", name="reach_target_geom", type="sphere", size=f"{self.success_radius_m:g}",
                      rgba="0.9 0.1 0.1 1", contype="0", conaffinity="0")

    def _build_handles(self, model):
        return {"target": self._mocap_id(model, "reach_target")}

    def reset(self, model, data, rng):
        start = self.start_center_m + rng.uniform(-1, 1, 3) * self.start_range_m
        for _ in range(100):
            target = np.clip(start + rng.uniform(-1, 1, 3) * self.target_range_m, self.target_low_m, self.target_high_m)
            if np.linalg.norm(target - start) >= self.min_target_distance_m:
                break
        data.mocap_pos[self.handles(model)["target"]] = target
        self._place_arm(model, data, start, self.gripper_width_m)

    def goal_position(self, model, data):
        return data.mocap_pos[self.handles(model)["target"]].copy()

    def is_success(self, model, data):
        r = self.robot(model)
        d = np.linalg.norm(r.tcp_pos(data) - self.goal_position(model, data))
        return bool(d < self.success_radius_m and np.linalg.norm(r.tcp_linvel(data)) < self.max_success_speed_m_s)

    def progress_distance(self, model, data, tool_pos, goal_offset_m=None):
        g = self.goal_position(model, data)
        if goal_offset_m is not None:
            g = g + goal_offset_m
        return float(np.linalg.norm(np.asarray(tool_pos) - g))

    def expert_velocity(self, model, data, goal_offset_m=None):
        g = self.goal_position(model, data)
        if goal_offset_m is not None:
            g = g + goal_offset_m
        v = 2.0 * (g - self.tool_pos(model, data))  # P gain 2/s: slows down inside ~5 cm
        vmax = self.action_spec.max_lin_speed_m_s
        n = np.linalg.norm(v)
        return v if n <= vmax else v * (vmax / n)


class PegInsertionTask(TaskDefinition):
    """Insert a peg held in the gripper into a square hole in a board (RLIF's peg task).

    The peg (cylinder) is rigidly attached to the hand between the closed fingers (an ideal
    grasp: it never slips), its tip ``peg_length_below_tcp_m`` below the TCP. The board is a
    mocap body (fixed during an episode) made of a base plate and four walls around the hole.
    Success: peg tip at least ``insert_depth_m`` below the board's top face with the tip
    inside the hole's footprint. Reset: board centre x, y uniform in ``board_xy_range_m``
    around ``board_center_m``; peg tip start = hole + (U(+-start_xy_m), U(+-start_xy_m),
    U(start_height_m)) above the board's top face.
    """

    name = "peg_insertion"
    default_cameras = ("wrist",)
    value_length_scale_m = 0.05

    def __init__(
        self,
        robot_prefix: str = ROBOT_PREFIX,
        horizon_steps: int = 100,
        control_rate_hz: float = 10.0,
        action_spec: ActionSpec | None = None,
        peg_radius_m: float = 0.012,
        hole_half_width_m: float = 0.017,
        hole_depth_m: float = 0.05,
        insert_depth_m: float = 0.03,
        board_top_z_m: float = 0.10,
        board_center_m: tuple[float, float] = (0.52, 0.0),
        board_xy_range_m: tuple[float, float] = (0.06, 0.10),
        start_xy_m: float = 0.05,
        start_height_m: tuple[float, float] = (0.06, 0.12),
        peg_length_below_tcp_m: float = 0.06,
    ) -> None:
        super().__init__(robot_prefix, horizon_steps, control_rate_hz, action_spec)
        if hole_half_width_m <= peg_radius_m:
            raise ValueError(
                f"hole_half_width_m ({hole_half_width_m}) must exceed peg_radius_m ({peg_radius_m})"
            )
        self.peg_radius_m = peg_radius_m
        self.hole_half_width_m = hole_half_width_m
        self.hole_depth_m = hole_depth_m
        self.insert_depth_m = insert_depth_m
        self.board_top_z_m = board_top_z_m
        self.board_center_m = np.asarray(board_center_m)
        self.board_xy_range_m = np.asarray(board_xy_range_m)
        self.start_xy_m = start_xy_m
        self.start_height_m = start_height_m
        self.peg_length_below_tcp_m = peg_length_below_tcp_m

    @property
    def clearance_m(self) -> float:
        """Radial play of the peg in the hole (m): the largest lateral error that still fits."""
        return self.hole_half_width_m - self.peg_radius_m

    @property
    def gripper_width_m(self) -> float:
        return 2.0 * self.peg_radius_m

    def _add_task_elements(self, worldbody: ET.Element) -> None:
        from robot_stack.sim.robot import TCP_OFFSET_M

        hand = find_body(worldbody, self.robot_prefix + "hand")
        # Peg geoms live in the hand body itself: contacts with the hand and its fingers are
        # then filtered out by MuJoCo (same body / parent-child), so the grasp is ideal.
        top = TCP_OFFSET_M - 0.045  # peg starts between the finger roots
        tip = TCP_OFFSET_M + self.peg_length_below_tcp_m
        half = (tip - top) / 2.0
        ET.SubElement(hand, "geom", name="peg", type="cylinder", size=f"{self.peg_radius_m:g} {half:g}",
                      pos=f"0 0 {top + half:g}", rgba="0.95 0.6 0.1 1", mass="0.01",
                      friction="0.3 0.005 0.0001", condim="3")
        ET.SubElement(hand, "site", name="peg_tip", pos=f"0 0 {tip:g}", size="0.003", rgba="1 0 0 1", group="4")

        z_top = self.board_top_z_m
        base_h = z_top - self.hole_depth_m
        board = ET.SubElement(worldbody, "body", name="peg_board", mocap="true",
                              pos=f"{self.board_center_m[0]:g} {self.board_center_m[1]:g} 0")
        w = self.hole_half_width_m
        outer = 0.09
        rgba = "0.35 0.25 0.15 1"
        ET.SubElement(board, "geom", name="board_base", type="box", size=f"{outer} {outer} {base_h / 2:g}",
                      pos=f"0 0 {base_h / 2:g}", rgba=rgba)
        wall_hz = self.hole_depth_m / 2.0
        zc = base_h + wall_hz
        side = (outer - w) / 2.0
        # Four walls around the hole: +-x slabs span the full width, +-y slabs fill between.
        for sx in (-1, 1):
            ET.SubElement(board, "geom", name=f"board_wall_x{sx:+d}", type="box",
                          size=f"{side:g} {outer:g} {wall_hz:g}", pos=f"{sx * (w + side):g} 0 {zc:g}", rgba=rgba)
        for sy in (-1, 1):
            ET.SubElement(board, "geom", name=f"board_wall_y{sy:+d}", type="box",
                          size=f"{w:g} {side:g} {wall_hz:g}", pos=f"0 {sy * (w + side):g} {zc:g}", rgba=rgba)
        # A light square marks the hole for the cameras.
        ET.SubElement(board, "geom", name="hole_mark", type="box", size=f"{w:g} {w:g} 0.0005",
                      pos=f"0 0 {base_h + 0.0005:g}", rgba="0.1 0.1 0.1 1", contype="0", conaffinity="0")

    def _build_handles(self, model):
        tip = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "peg_tip")
        if tip < 0:
            raise KeyError("site 'peg_tip' missing: was task.add_to_scene() called?")
        return {"board": self._mocap_id(model, "peg_board"), "tip": tip}

    def tool_pos(self, model, data):
        return data.site_xpos[self.handles(model)["tip"]].copy()

    def hole_top_center(self, model, data) -> np.ndarray:
        b = data.mocap_pos[self.handles(model)["board"]]
        return np.array([b[0], b[1], self.board_top_z_m])

    def goal_position(self, model, data):
        return self.hole_top_center(model, data) - np.array([0.0, 0.0, self.insert_depth_m])

    def reset(self, model, data, rng):
        board_xy = self.board_center_m + rng.uniform(-1, 1, 2) * self.board_xy_range_m
        data.mocap_pos[self.handles(model)["board"]] = [board_xy[0], board_xy[1], 0.0]
        tip = np.array([
            board_xy[0] + rng.uniform(-self.start_xy_m, self.start_xy_m),
            board_xy[1] + rng.uniform(-self.start_xy_m, self.start_xy_m),
            self.board_top_z_m + rng.uniform(*self.start_height_m),
        ])
        tcp = tip + np.array([0.0, 0.0, self.peg_length_below_tcp_m])
        self._place_arm(model, data, tcp, self.gripper_width_m)

    def is_success(self, model, data):
        tip = self.tool_pos(model, data)
        hole = self.hole_top_center(model, data)
        inside = np.all(np.abs(tip[:2] - hole[:2]) < self.hole_half_width_m)
        return bool(inside and tip[2] <= hole[2] - self.insert_depth_m)

    def progress_distance(self, model, data, tool_pos, goal_offset_m=None):
        """D = 3 * lateral error + height above the insertion depth (m).

        Lateral error weighs triple: a misaligned peg cannot go down at all.
        """
        g = self.goal_position(model, data)
        if goal_offset_m is not None:
            g = g + goal_offset_m
        p = np.asarray(tool_pos, dtype=np.float64)
        lateral = float(np.linalg.norm(p[:2] - g[:2]))
        return 3.0 * lateral + max(0.0, float(p[2] - g[2]))

    def lookahead_tool_pos(self, model, data, lin_m_s, goal_offset_m=None):
        p = super().lookahead_tool_pos(model, data, lin_m_s, goal_offset_m)
        hole = self.hole_top_center(model, data)
        # Outside the hole's play the board stops the tip at its top face.
        if np.any(np.abs(p[:2] - hole[:2]) > self.clearance_m) and p[2] < hole[2]:
            p[2] = max(p[2], hole[2])
        return p

    def expert_velocity(self, model, data, goal_offset_m=None):
        """Align above the (believed) hole at hover height, then descend while centring."""
        hole = self.hole_top_center(model, data)
        if goal_offset_m is not None:
            hole = hole + goal_offset_m
        p = self.tool_pos(model, data)
        vmax = self.action_spec.max_lin_speed_m_s
        e_xy = hole[:2] - p[:2]
        lateral = np.linalg.norm(e_xy)
        v = np.zeros(3)
        v[:2] = 3.0 * e_xy
        hover_z = hole[2] + 0.02
        if lateral > 0.004 and p[2] > hole[2] - 0.002:
            v[2] = 3.0 * (hover_z - p[2])  # go to hover height while aligning
        else:
            v[2] = -vmax
        n = np.linalg.norm(v)
        return v if n <= vmax else v * (vmax / n)


TASKS = {"reach": ReachTask, "peg_insertion": PegInsertionTask}


def make_task(name: str, **kwargs) -> TaskDefinition:
    """Task by name (``reach`` or ``peg_insertion``); kwargs go to its constructor."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task '{name}'; choose one of {sorted(TASKS)}") from None
    return cls(**kwargs)
