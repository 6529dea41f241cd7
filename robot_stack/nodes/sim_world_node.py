# Over 400 lines: the node runs one of two physics back ends (franky-sim or the direct link), the cameras, the reset service and the simulated operator; about 60 lines document its topics and parameters.
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

The operator judges the command the robot is being sent (``franka/cmd_twist``,
as a person judges the motion they see), with the rule configured (RLIF's value rule by
default), and takes over for ``operator_hold_steps`` control steps at a time.

Topic and service names are relative (robot_stack.nodes.topics; default namespace
``robot_stack``). Two worlds side by side need distinct namespaces and distinct
``hostname``/``direct_port``.

Publishes
  ``cameras/<name>/image_raw`` (sensor_msgs/Image rgb8, ``qos.SENSOR``) and
      ``.../camera_info`` (sensor_msgs/CameraInfo, pinhole from the MuJoCo camera's fovy) at
      ``render_rate_hz``; frame_id ``<name>_optical``.
  ``cameras/<name>/pose`` (geometry_msgs/PoseStamped, ``qos.EPISODES``: reliable,
      transient local, like a static transform): the camera's optical frame (``<name>_optical``,
      z forward, y down) in its parent frame (``base_frame`` for fixed cameras, ``hand`` for the
      wrist camera), from ``<calibration_dir>/<name>_extrinsic.yaml`` when that file exists (the
      hand-eye tool's output), else the sim's true mount. (tf2_msgs is not available as a
      wheel here, so the static transform travels as a PoseStamped.)
  ``sim/success`` (std_msgs/Bool, ``qos.STATE``): the task's success test, at
      ``control_rate_hz``.
  ``sim/operator_joy`` (sensor_msgs/Joy, ``qos.COMMAND``): the simulated
      operator's SpaceMouse reading (6 axes in [-1, 1], buttons), at ``control_rate_hz``;
      read by :class:`robot_stack.nodes.sim_operator_source.JoyTopicSource`.
  ``sim/operator_debug`` (robot_stack/OperatorDecision, ``qos.STATE``): the operator's
      decision each step (intervening, started, probability, reference values).

Subscribes
  ``franka/cmd_twist`` (geometry_msgs/TwistStamped, ``qos.COMMAND``): what the
      robot is told to do; the operator's estimate of the policy's action.

Serves
  ``episode/reset`` (robot_stack/ResetEpisode), called by the actor: re-sample the task
      (seed ``seed + episode_id``), bring the arm to the start pose through the Franka node's
      ``franka/home_to`` service (robot_stack/HomeTo), then answer. The callback awaits the
      home move without blocking the executor (rendering and the operator go on). Without a
      Franka node, or when the move takes longer than ``home_timeout_s``, it answers anyway
      (``success`` false, the reason in ``message``) and the episode starts where the arm is.

Parameters: every field of :class:`SimWorldNodeConfig` (see config/sim_world.yaml).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future

from robot_stack.nodes import convert, topics
from robot_stack.nodes.inbox import Inbox
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.types.config import ConfigError
from robot_stack.types.geometry import R_to_quat_xyzw
from robot_stack.types.intrinsics import CameraIntrinsics
from robot_stack.types.records import MAX_ID
from robot_stack.types.status import OperatorDecision

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
    """Give up waiting for the Franka node's home_to answer after this long (answer the reset anyway), s."""
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
        node_kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
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
            try:
                self.operator = SimulatedOperator(
                    self.task,
                    OperatorConfig(skill=cfg.operator_skill, strategy=cfg.operator_strategy, beta=cfg.operator_beta,
                                   hold_steps=cfg.operator_hold_steps, random_rate=cfg.operator_random_rate,
                                   action_distance_threshold=cfg.operator_action_distance,
                                   min_axis=cfg.operator_min_axis),
                    seed=cfg.seed,
                )
            except ValueError as e:  # an unknown skill preset or strategy: the parameters' fault
                raise ConfigError(f"parameters 'operator_*': {e}") from None
        self.world.start()
        where = cfg.hostname if cfg.physics == "franky" else f"udp://{cfg.hostname}:{cfg.direct_port}"
        self.get_logger().info(
            f"{cfg.physics} world '{cfg.task}' serving on {where} (cameras {list(cfg.cameras)} "
            f"{cfg.image_width}x{cfg.image_height}, operator {cfg.operator_skill if self.operator else 'off'}"
            f"/{cfg.operator_strategy})")

        self._image_pubs = {c: topics.publisher(self, topics.CAMERA_IMAGE, camera=c) for c in cfg.cameras}
        self._info_pubs = {c: topics.publisher(self, topics.CAMERA_INFO, camera=c) for c in cfg.cameras}
        self._intrinsics = {c: camera_intrinsics_for(c, mounts[c].fovy_deg, cfg.image_height, cfg.image_width)
                       for c in cfg.cameras}
        self._pose_pubs = {c: topics.publisher(self, topics.CAMERA_POSE, camera=c) for c in cfg.cameras}
        for c in cfg.cameras:
            parent, T = camera_frame(mounts[c], cfg.base_frame, cfg.calibration_dir)
            self._pose_pubs[c].publish(convert.pose_to_msg(T[:3, 3], R_to_quat_xyzw(T[:3, :3]),
                                                           self.get_clock().now().to_msg(), parent))
        self._success_pub = topics.publisher(self, topics.SIM_SUCCESS)
        self._joy_pub = topics.publisher(self, topics.SIM_OPERATOR_JOY)
        self._debug_pub = topics.publisher(self, topics.SIM_OPERATOR_DEBUG)
        self.inbox = Inbox(self.get_logger())  # malformed messages are dropped and counted, never fatal
        self.inbox.subscribe(self, topics.CMD_TWIST, self._on_cmd)
        # The reset callback awaits the home move: a group of its own, so the default group
        # (render and control timers, commands) keeps running meanwhile.
        reset_group = ReentrantCallbackGroup()
        self._home_client = topics.client(self, topics.FRANKA_HOME_TO, callback_group=reset_group)
        topics.service(self, topics.EPISODE_RESET, self._on_reset, callback_group=reset_group)

        self._last_cmd_lin = np.zeros(3)
        # The reset in progress: (episode id, monotonic deadline, future the callback awaits).
        self._pending_reset: tuple[int, float, Future] | None = None
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

    def _on_cmd(self, msg) -> None:
        self._last_cmd_lin = convert.twist_from_msg(msg, require_finite=True).lin_m_s

    def _on_control(self) -> None:
        self._success_pub.publish(convert.bool_to_msg(self.world.is_success()))
        if self._pending_reset is not None and time.monotonic() > self._pending_reset[1]:
            self._end_reset(False, f"no answer from the Franka node's home_to within {self.cfg.home_timeout_s} s; "
                                   "starting the episode where the arm is (is franka_node running and connected?)")
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
        self._debug_pub.publish(convert.operator_decision_to_msg(OperatorDecision(
            intervening=out.intervening, started=out.started, probability=_finite(out.intervene_probability),
            q_policy=_finite(out.q_policy), q_expert=_finite(out.q_expert), stamp_s=t)))

    def _publish_reading(self, axes, buttons, stamp) -> None:
        self._joy_pub.publish(convert.joy_to_msg(axes, buttons, stamp.to_msg()))

    async def _on_reset(self, request, response):
        """episode/reset: re-sample the scene, bring the arm to its start pose, then answer."""
        episode = convert.reset_episode_id(request)
        if episode > MAX_ID:
            message = f"episode id {episode} is beyond {MAX_ID}"
            self.get_logger().warning(f"reset refused: {message}")
            return convert.fill_result(response, False, message)
        self._end_reset(False, f"superseded by the reset for episode {episode}")  # one reset at a time
        self._operator_active = False
        self._publish_reading(np.zeros(6), (0, 0), self.get_clock().now())
        result = self.world.reset_scene(self.cfg.seed + episode)
        if self.operator is not None:
            self.operator.reset(self.cfg.seed + episode)
        done = Future(executor=self.executor)
        # A done callback makes set_result wake the executor, so this callback resumes at once.
        done.add_done_callback(lambda _f: None)
        self._pending_reset = (episode, time.monotonic() + self.cfg.home_timeout_s, done)
        if result.start_tcp_xyz_m is None:
            self._end_reset(True, "scene reset (the task has no start pose)")
        elif not self._home_client.service_is_ready():
            self._end_reset(False, f"no {self.resolve_service_name(topics.FRANKA_HOME_TO.name)} service (is franka_node running?); "
                                   "starting the episode where the arm is")
        else:
            x, y, z = (float(v) for v in result.start_tcp_xyz_m)
            # Gripper pointing down (R = diag(1, -1, -1)): quaternion x=1, w=0.
            call = self._home_client.call_async(convert.home_to_request(
                (x, y, z), (1.0, 0.0, 0.0, 0.0), self.get_clock().now().to_msg(), self.cfg.base_frame))
            call.add_done_callback(lambda f, ep=episode: self._on_home_answer(ep, f))
            self.get_logger().info(f"episode {episode}: scene reset, arm to start ({x:.3f}, {y:.3f}, {z:.3f})")
        ok, message = await done
        if not ok:
            self.get_logger().warning(f"episode {episode}: {message}")
        return convert.fill_result(response, ok, message)

    def _on_home_answer(self, episode: int, future: Future) -> None:
        if self._pending_reset is None or self._pending_reset[0] != episode:
            return  # that reset was already answered (timeout, superseded)
        try:
            ok, message = convert.result_from_response(future.result())
        except Exception as e:  # noqa: BLE001 - an exception set on the future by rclpy: a failed call
            ok, message = False, f"home_to call failed: {e!r}"
        self._end_reset(ok, message if ok else f"franka home move failed ({message}); starting the episode anyway")

    def _end_reset(self, ok: bool, message: str) -> None:
        """Answer the reset in progress (if any) and let the operator act again."""
        if self._pending_reset is None:
            return
        _, _, done = self._pending_reset
        self._pending_reset = None
        self._operator_active = True
        if not done.done():
            done.set_result((ok, message))

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


def _finite(x: float | None) -> float:
    return float(x) if x is not None and math.isfinite(x) else math.nan


def main(args: list[str] | None = None) -> int:
    return run_node(SimWorldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
