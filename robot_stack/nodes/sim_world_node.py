"""Sim world node: a simulated task standing in for the robot, cameras and operator.

In the sim graph this node is the only difference from the real one. With ``physics: franky``
(default) it runs :class:`robot_stack.sim.franky_world.FrankyWorld` (the FR3 in MuJoCo behind
the libfranka protocol on ``hostname``; the Franka node connects to it with the ``franky``
backend, exactly as to a robot). With ``physics: direct`` it runs
:class:`robot_stack.sim.direct_world.DirectWorld` instead: the same task scene stepped at a
modest rate without libfranka, served on ``hostname:direct_port`` (UDP) to the Franka node's
``direct`` backend, for machines where franky-sim's 1 kHz loop cannot keep real time next to
the whole graph. Either way it renders the task's cameras into the camera topics, reports
success, resets the task's objects between episodes, and runs the simulated operator, whose
SpaceMouse readings go to the SpaceMouse node's ``sim`` backend (so intervention detection is
the same code as with a person).

The operator judges the command the robot is being sent (``/robot_stack/franka/cmd_twist``,
as a person judges the motion they see), with the rule configured (RLIF's value rule by
default), and takes over for ``operator_hold_steps`` control steps at a time.

Publishes
  ``/robot_stack/cameras/<name>/image_raw`` (sensor_msgs/Image rgb8, ``qos.SENSOR``) and
      ``.../camera_info`` (sensor_msgs/CameraInfo, pinhole from the MuJoCo camera's fovy) at
      ``render_rate_hz``; frame_id ``<name>_optical``.
  ``/robot_stack/cameras/<name>/pose`` (geometry_msgs/PoseStamped, ``qos.EPISODES``: reliable,
      transient local, like a static transform): the camera's optical frame (``<name>_optical``,
      z forward, y down) in its parent frame (``base_frame`` for fixed cameras, ``hand`` for the
      wrist camera), from ``<calibration_dir>/<name>_extrinsic.yaml`` when that file exists (the
      hand-eye tool's output), else the sim's true mount. (tf2_msgs is not available as a
      wheel here, so the static transform travels as a PoseStamped.)
  ``/robot_stack/sim/success`` (std_msgs/Bool, ``qos.STATE``): the task's success test, at
      ``control_rate_hz``.
  ``/robot_stack/sim/operator_joy`` (sensor_msgs/Joy, ``qos.COMMAND``): the simulated
      operator's SpaceMouse reading (6 axes in [-1, 1], buttons), at ``control_rate_hz``;
      read by :class:`robot_stack.nodes.sim_operator_source.JoyTopicSource`.
  ``/robot_stack/sim/operator_debug`` (std_msgs/String JSON, ``qos.STATE``): the operator's
      decision each step (intervening, started, probability, reference values).
  ``/robot_stack/franka/home_to`` (geometry_msgs/PoseStamped, ``qos.COMMAND``): the episode's
      sampled start pose, sent to the Franka node during a reset.
  ``/robot_stack/episode/reset_done`` (std_msgs/UInt64, ``qos.COMMAND``): the reset for that
      episode id is complete.

Subscribes
  ``/robot_stack/episode/reset`` (std_msgs/UInt64, ``qos.COMMAND``): reset request from the
      actor: re-sample the task (seed ``seed + episode_id``), send the arm to the start pose,
      wait for the Franka node's ``home_done``, then answer on ``reset_done``.
  ``/robot_stack/franka/cmd_twist`` (geometry_msgs/TwistStamped, ``qos.COMMAND``): what the
      robot is told to do; the operator's estimate of the policy's action.
  ``/robot_stack/franka/status`` (std_msgs/String JSON, ``qos.EPISODES``): ``home_done`` /
      ``home_failed`` events.

Parameters: every field of :class:`SimWorldNodeConfig` (see config/sim_world.yaml).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, Joy
from std_msgs.msg import Bool, String, UInt64

from robot_stack.nodes import convert, qos
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.types.config import ConfigError
from robot_stack.types.geometry import R_to_quat_xyzw
from robot_stack.types.intrinsics import CameraIntrinsics

CAMERA_TOPIC = "/robot_stack/cameras/{name}/image_raw"
CAMERA_INFO_TOPIC = "/robot_stack/cameras/{name}/camera_info"
CAMERA_POSE_TOPIC = "/robot_stack/cameras/{name}/pose"
SUCCESS_TOPIC = "/robot_stack/sim/success"
OPERATOR_JOY_TOPIC = "/robot_stack/sim/operator_joy"
OPERATOR_DEBUG_TOPIC = "/robot_stack/sim/operator_debug"
HOME_TO_TOPIC = "/robot_stack/franka/home_to"
RESET_TOPIC = "/robot_stack/episode/reset"
RESET_DONE_TOPIC = "/robot_stack/episode/reset_done"
CMD_TWIST_TOPIC = "/robot_stack/franka/cmd_twist"
FRANKA_STATUS_TOPIC = "/robot_stack/franka/status"
PHYSICS = ("franky", "direct")


@dataclass(frozen=True)
class SimWorldNodeConfig:
    """Sim world parameters."""

    task: str = "reach"
    """Task to run: reach or peg_insertion (robot_stack.sim.tasks)."""
    physics: str = "franky"
    """Robot side of the world: 'franky' (franky-sim behind the libfranka protocol; Franka node
    robot.backend franky) or 'direct' (DirectWorld over a UDP link, no libfranka; Franka node
    robot.backend direct). The launch file's physics argument sets both."""
    hostname: str = "127.0.0.1"
    """Loopback address the world serves the robot on (the Franka node's robot_ip)."""
    direct_port: int = 17337
    """physics direct: UDP port of the direct link (the Franka node's robot.direct_port)."""
    realtime_factor: float = 1.0
    """Sim speed relative to wall time (1.0 = real time)."""
    spec_file: str = ""
    """PolicySpec JSON (policies/specs/...): when set, its cameras and image size are rendered
    (and the cameras/image_* parameters are ignored), so world and learner agree."""
    cameras: tuple[str, ...] = ("front",)
    """Cameras to render (names of the task's camera mounts: front, wrist)."""
    image_height: int = 64
    """Rendered image height in pixels."""
    image_width: int = 64
    """Rendered image width in pixels."""
    render_rate_hz: float = 10.0
    """Camera frame rate in Hz."""
    control_rate_hz: float = 10.0
    """Rate of the operator's decisions and of the success reports, Hz (the actor's rate)."""
    seed: int = 0
    """Base seed; episode k's scene is sampled with seed + k."""
    base_frame: str = "base"
    """Frame of the start poses sent to the Franka node and of the fixed cameras' poses."""
    calibration_dir: str = ""
    """Folder with <camera>_extrinsic.yaml files (robot_stack.calibration handeye output) whose
    poses are published instead of the sim's true camera mounts ("" = true mounts)."""
    home_timeout_s: float = 20.0
    """Give up waiting for the Franka node's home_done after this long (answer the reset anyway)."""
    operator_enabled: bool = True
    """Run the simulated operator (off: nobody intervenes)."""
    operator_skill: str = "expert_50"
    """Operator skill preset (robot_stack.sim.operator: expert_90, expert_50, expert_20)."""
    operator_strategy: str = "value"
    """Intervention rule: value, action_distance, random, always, never."""
    operator_beta: float = 0.9
    """Value rule: intervene (p=0.95) when Q(a_policy) < beta * Q(a_expert)."""
    operator_hold_steps: int = 4
    """Control steps the operator keeps control once it took over (RLIF: 4)."""
    operator_random_rate: float = 0.1
    """Random rule: intervention probability per decision."""
    operator_action_distance: float = 0.8
    """Action-distance rule threshold (normalized action units)."""
    operator_min_axis: float = 0.25
    """Smallest deflection while in control; must exceed the SpaceMouse node's engage threshold."""

    def validate(self) -> None:
        from robot_stack.sim.tasks import TASKS

        if self.task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got '{self.task}'")
        if self.physics not in PHYSICS:
            raise ValueError(f"physics must be one of {PHYSICS}, got '{self.physics}'")
        if not 1 <= self.direct_port <= 65535:
            raise ValueError(f"direct_port must be a UDP port in 1..65535, got {self.direct_port}")
        if self.image_height < 8 or self.image_width < 8:
            raise ValueError(f"image size must be at least 8x8, got {self.image_height}x{self.image_width}")
        for name, v in (("render_rate_hz", self.render_rate_hz), ("control_rate_hz", self.control_rate_hz)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if not self.cameras:
            raise ValueError("cameras must name at least one camera (front, wrist)")
        if not 0.0 < self.operator_min_axis <= 1.0:
            raise ValueError(f"operator_min_axis must be in (0, 1], got {self.operator_min_axis}")


def mount_T_parent_optical(mount) -> np.ndarray:
    """True pose of a MuJoCo camera mount's optical frame (OpenCV: z forward, y down) in its
    parent frame. MuJoCo cameras look along -z with y up: optical = mount axes @ diag(1, -1, -1)."""
    x = np.asarray(mount.xyaxes[:3], dtype=np.float64)
    y = np.asarray(mount.xyaxes[3:], dtype=np.float64)
    x /= np.linalg.norm(x)
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    R_mj = np.column_stack([x, y, np.cross(x, y)])
    T = np.eye(4)
    T[:3, :3] = R_mj @ np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = mount.pos
    return T


def camera_frame(mount, base_frame: str, calibration_dir: str) -> tuple[str, np.ndarray]:
    """(parent frame, T_parent_optical) of a camera: the calibration file if present, else the mount."""
    import pathlib

    if calibration_dir:
        path = pathlib.Path(calibration_dir).expanduser() / f"{mount.name}_extrinsic.yaml"
        if path.is_file():
            from robot_stack.calibration.handeye import load_extrinsic_yaml

            ext = load_extrinsic_yaml(path)
            return ext.parent_frame, np.asarray(ext.T_parent_child, dtype=np.float64)
    return (mount.parent_body or base_frame), mount_T_parent_optical(mount)


def camera_intrinsics_for(name: str, fovy_deg: float, height: int, width: int) -> CameraIntrinsics:
    """Pinhole intrinsics of a MuJoCo camera (square pixels, principal point at the centre)."""
    fy = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    fx = fy
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return CameraIntrinsics(width, height, K, np.zeros(5), name)


class SimWorldNode(Node):
    """ROS shell over FrankyWorld + SimulatedOperator; see the module docstring."""

    def __init__(self, **node_kwargs):
        super().__init__("sim_world", **node_kwargs)
        self.cfg: SimWorldNodeConfig = declare_config(self, SimWorldNodeConfig)
        from robot_stack.sim.operator import OperatorConfig, SimulatedOperator
        from robot_stack.sim.tasks import make_task

        cfg = self.cfg
        if cfg.spec_file:
            cfg = self.cfg = _apply_spec_file(cfg)
        self.task = make_task(cfg.task)
        mounts = {m.name: m for m in self.task.camera_mounts()}
        unknown = [c for c in cfg.cameras if c not in mounts]
        if unknown:
            raise ConfigError(f"cameras: task '{cfg.task}' has no camera {unknown}; it has {sorted(mounts)}")
        self._mounts = mounts
        self.world = _make_world(cfg, self.task)
        self.operator = None
        if cfg.operator_enabled:
            self.operator = SimulatedOperator(
                self.task,
                OperatorConfig(skill=cfg.operator_skill, strategy=cfg.operator_strategy, beta=cfg.operator_beta,
                               hold_steps=cfg.operator_hold_steps, random_rate=cfg.operator_random_rate,
                               action_distance_threshold=cfg.operator_action_distance,
                               min_axis=cfg.operator_min_axis),
                seed=cfg.seed,
            )
        self.world.start()
        where = cfg.hostname if cfg.physics == "franky" else f"udp://{cfg.hostname}:{cfg.direct_port}"
        self.get_logger().info(
            f"{cfg.physics} world '{cfg.task}' serving on {where} (cameras {list(cfg.cameras)} "
            f"{cfg.image_width}x{cfg.image_height}, operator {cfg.operator_skill if self.operator else 'off'}"
            f"/{cfg.operator_strategy})")

        self._image_pubs = {c: self.create_publisher(Image, CAMERA_TOPIC.format(name=c), qos.SENSOR) for c in cfg.cameras}
        self._info_pubs = {c: self.create_publisher(CameraInfo, CAMERA_INFO_TOPIC.format(name=c), qos.SENSOR)
                           for c in cfg.cameras}
        self._intrinsics = {c: camera_intrinsics_for(c, mounts[c].fovy_deg, cfg.image_height, cfg.image_width)
                       for c in cfg.cameras}
        self._pose_pubs = {c: self.create_publisher(PoseStamped, CAMERA_POSE_TOPIC.format(name=c), qos.EPISODES)
                           for c in cfg.cameras}
        for c in cfg.cameras:
            parent, T = camera_frame(mounts[c], cfg.base_frame, cfg.calibration_dir)
            self._pose_pubs[c].publish(convert.pose_to_msg(T[:3, 3], R_to_quat_xyzw(T[:3, :3]),
                                                           self.get_clock().now().to_msg(), parent))
        self._success_pub = self.create_publisher(Bool, SUCCESS_TOPIC, qos.STATE)
        self._joy_pub = self.create_publisher(Joy, OPERATOR_JOY_TOPIC, qos.COMMAND)
        self._debug_pub = self.create_publisher(String, OPERATOR_DEBUG_TOPIC, qos.STATE)
        self._home_pub = self.create_publisher(PoseStamped, HOME_TO_TOPIC, qos.COMMAND)
        self._reset_done_pub = self.create_publisher(UInt64, RESET_DONE_TOPIC, qos.COMMAND)
        self.create_subscription(UInt64, RESET_TOPIC, self._on_reset, qos.COMMAND)
        self.create_subscription(TwistStamped, CMD_TWIST_TOPIC, self._on_cmd, qos.COMMAND)
        self.create_subscription(String, FRANKA_STATUS_TOPIC, self._on_status, qos.EPISODES)

        self._last_cmd_lin = np.zeros(3)
        self._pending_reset: tuple[int, float] | None = None  # (episode id, wall time requested)
        self._operator_active = False  # off between a reset request and its completion
        self.frames_published = 0
        self._rtf_mark = (0.0, time.monotonic())
        self.create_timer(1.0 / cfg.render_rate_hz, self._on_render)
        self.create_timer(30.0, self._log_realtime)
        self.create_timer(1.0 / cfg.control_rate_hz, self._on_control)

    # -- callbacks (thin: the work is in FrankyWorld / SimulatedOperator) -------------------------
    def _on_render(self) -> None:
        cfg = self.cfg
        stamp = self.get_clock().now().to_msg()
        for cam in cfg.cameras:
            rgb = self.world.render(cam, cfg.image_height, cfg.image_width)
            frame_id = f"{cam}_optical"
            self._image_pubs[cam].publish(convert.image_to_msg(rgb, stamp, frame_id))
            self._info_pubs[cam].publish(convert.camera_info_to_msg(self._intrinsics[cam], stamp, frame_id))
        self.frames_published += 1

    def _log_realtime(self) -> None:
        # The world paces physics to wall time; on a loaded machine it falls behind: say so.
        sim_t, wall_t = self.world.sim_time_s, time.monotonic()
        last_sim, last_wall = self._rtf_mark
        self._rtf_mark = (sim_t, wall_t)
        self.get_logger().info(f"sim time {sim_t:.0f} s, real-time factor {self.world.realtime_factor_measured:.3f} "
                               f"since start, {(sim_t - last_sim) / max(wall_t - last_wall, 1e-9):.3f} "
                               f"over the last {wall_t - last_wall:.0f} s ({self.cfg.physics})")

    def _on_cmd(self, msg: TwistStamped) -> None:
        self._last_cmd_lin = convert.twist_from_msg(msg).lin_m_s

    def _on_control(self) -> None:
        self._success_pub.publish(convert.bool_to_msg(self.world.is_success()))
        if self._pending_reset is not None and time.monotonic() - self._pending_reset[1] > self.cfg.home_timeout_s:
            self.get_logger().warning(
                f"no home_done from the Franka node within {self.cfg.home_timeout_s} s; starting episode "
                f"{self._pending_reset[0]} where the arm is (is franka_node running and connected?)")
            self._finish_reset()
        if self.operator is None:
            return
        stamp = self.get_clock().now()
        if not self._operator_active:
            self._publish_reading(np.zeros(6), (0, 0), stamp)
            return
        policy_action = self.task.action_spec.from_twist(self._last_cmd_lin)
        t = stamp.nanoseconds * 1e-9
        out = self.world.read(lambda m, d: self.operator.step(m, d, policy_action, t))
        self._publish_reading(out.reading.axes, out.reading.buttons, stamp)
        self._debug_pub.publish(convert.json_to_msg({
            "intervening": out.intervening, "started": out.started, "p": _finite(out.intervene_probability),
            "q_policy": _finite(out.q_policy), "q_expert": _finite(out.q_expert)}))

    def _publish_reading(self, axes, buttons, stamp) -> None:
        self._joy_pub.publish(convert.joy_to_msg(axes, buttons, stamp.to_msg()))

    def _on_reset(self, msg: UInt64) -> None:
        episode = convert.int_from_msg(msg)
        self._operator_active = False
        self._publish_reading(np.zeros(6), (0, 0), self.get_clock().now())
        result = self.world.reset_scene(self.cfg.seed + episode)
        if self.operator is not None:
            self.operator.reset(self.cfg.seed + episode)
        self._pending_reset = (episode, time.monotonic())
        if result.start_tcp_xyz_m is None:
            self._finish_reset()
            return
        x, y, z = (float(v) for v in result.start_tcp_xyz_m)
        # Gripper pointing down (R = diag(1, -1, -1)): quaternion x=1, w=0.
        self._home_pub.publish(convert.pose_to_msg((x, y, z), (1.0, 0.0, 0.0, 0.0), self.get_clock().now().to_msg(),
                                                   self.cfg.base_frame))
        self.get_logger().info(f"episode {episode}: scene reset, arm to start ({x:.3f}, {y:.3f}, {z:.3f})")

    def _on_status(self, msg: String) -> None:
        if self._pending_reset is None:
            return
        try:
            event = convert.json_from_msg(msg)
        except ValueError:
            return
        if event.get("event") not in ("home_done", "home_failed"):
            return
        # Transient-local history replays old events: only those after the request count.
        if float(event.get("t", 0.0)) < self._pending_reset_wall:
            return
        if event["event"] == "home_failed":
            self.get_logger().warning(f"franka home move failed ({event.get('detail')}); starting the episode anyway")
        self._finish_reset()

    @property
    def _pending_reset_wall(self) -> float:
        # Franka status times are wall-clock (time.time()); convert our monotonic request time.
        assert self._pending_reset is not None
        return time.time() - (time.monotonic() - self._pending_reset[1]) - 0.05

    def _finish_reset(self) -> None:
        if self._pending_reset is None:
            return
        episode = self._pending_reset[0]
        self._pending_reset = None
        self._operator_active = True
        self._reset_done_pub.publish(convert.uint64_to_msg(episode))

    def close(self) -> None:
        """Stop the physics thread and the world's server (run_node calls this on exit)."""
        if self.world.model is not None:
            self._log_realtime()  # the session's figure (benchmarks/sim_direct_realtime.py reads it)
        self.world.close()


def _make_world(cfg: SimWorldNodeConfig, task):
    """The world of ``cfg.physics`` (not started)."""
    if cfg.physics == "direct":
        from robot_stack.sim.direct_world import DirectWorld, DirectWorldConfig

        return DirectWorld(DirectWorldConfig(hostname=cfg.hostname, port=cfg.direct_port,
                                             realtime_factor=cfg.realtime_factor), scene=task)
    from robot_stack.sim.franky_world import FrankyWorld, FrankyWorldConfig

    return FrankyWorld(FrankyWorldConfig(hostname=cfg.hostname, realtime_factor=cfg.realtime_factor), scene=task)


def _apply_spec_file(cfg: SimWorldNodeConfig) -> SimWorldNodeConfig:
    """Cameras and image size from a PolicySpec file (ConfigError naming the file if unusable)."""
    import dataclasses
    import pathlib

    from robot_stack.types.spec import PolicySpec

    path = pathlib.Path(cfg.spec_file).expanduser()
    try:
        spec = PolicySpec.from_json(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"spec_file '{path}' cannot be used: {e}") from e
    if not spec.cameras:
        raise ConfigError(f"spec_file '{path}' names no cameras: the sim world renders the spec's cameras")
    sizes = {(c.height, c.width) for c in spec.cameras}
    if len(sizes) != 1:
        raise ConfigError(f"spec_file '{path}': cameras of different sizes {sorted(sizes)} are not supported")
    (h, w), = sizes
    return dataclasses.replace(cfg, cameras=spec.camera_names, image_height=h, image_width=w)


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def main(args: list[str] | None = None) -> int:
    return run_node(SimWorldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
