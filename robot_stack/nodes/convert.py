# Over 400 lines: every message conversion lives here by design (the only code that builds or reads messages).
"""The one place where robot_stack's ROS messages, and the standard ones its nodes exchange,
are built and read: each function maps a ROS-free type (``robot_stack.types``, numpy arrays,
plain numbers) to a message or back. Nodes import message classes only to create their
publishers and subscriptions.

Images go through the fast paths only: ``msg.data = arr.tobytes()`` to publish and
``np.frombuffer(msg.data, np.uint8)`` to read (no per-element copies).

Every ``*_from_msg`` function for robot_stack's own messages validates what it reads and
raises :class:`ValueError` naming the field and the problem, so a node can log and drop a bad
message instead of crashing. Stamps (``stamp``) are seconds or a ``builtin_interfaces/Time``.
Step records and images are read by field access in :mod:`robot_stack.types.fields`, which a
replay of a recorded bag applies to the same messages decoded without ROS.

==========================  ====================================  ====================================
message                     ROS-free type                         functions
==========================  ====================================  ====================================
robot_stack/StepRecord      types.records.StepRecord              step_to_msg, step_from_msg
robot_stack/PolicyWeights   types.records.PolicyWeights           weights_to_msg, weights_from_msg
robot_stack/EpisodeSummary  types.records.EpisodeSummary          summary_to_msg, summary_from_msg
robot_stack/StepAck         types.records.StepAck                 ack_to_msg, ack_from_msg
robot_stack/OperatorCommand types.teleop.OperatorCommand          operator_to_msg, operator_from_msg
sensor_msgs/Image           uint8 (H, W, 3) RGB / uint16 depth    image_to_msg, image_from_msg, depth_to_msg
sensor_msgs/CameraInfo      types.intrinsics.CameraIntrinsics     camera_info_to_msg
sensor_msgs/JointState      names, positions, velocities          joint_state_to_msg
sensor_msgs/Joy             axes, buttons                         joy_to_msg, joy_from_msg
geometry_msgs/TwistStamped  :class:`StampedTwist`                 twist_to_msg, twist_from_msg
geometry_msgs/PoseStamped   :class:`StampedPose`                  pose_to_msg, pose_from_msg
robot_stack/FrankaStatus    types.status.FrankaStatus             franka_status_to_msg, franka_status_from_msg
robot_stack/LearnerStats    types.status.LearnerStats             learner_stats_to_msg, learner_stats_from_msg
                            (with RobotStats[] robots: types.status.RobotStats)
robot_stack/OperatorDecision types.status.OperatorDecision        operator_decision_to_msg, operator_decision_from_msg
robot_stack/CommandSent     types.status.CommandSent              command_sent_to_msg, command_sent_from_msg
diagnostic_msgs/            [types.status.Health]                 diagnostics_to_msg, diagnostics_from_msg
DiagnosticArray
srv HomeTo, ResetEpisode,   pose / episode id / nothing;          home_to_request, home_to_target, reset_request,
std_srvs/Trigger            (success, message)                    reset_episode_id, trigger_request, fill_result,
                                                                  result_from_response
std_msgs Float32/Bool       float / bool                          float32_to_msg, float_from_msg, bool_to_msg,
                                                                  bool_from_msg
any stamped message         (seconds, frame id)                   stamp_and_frame
==========================  ====================================  ====================================
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from sensor_msgs.msg import CameraInfo, Image, JointState, Joy
from std_msgs.msg import Bool, Float32, Header
from std_srvs.srv import Trigger

from robot_stack.msg import CommandSent as CommandSentMsg
from robot_stack.msg import EpisodeSummary as EpisodeSummaryMsg
from robot_stack.msg import FrankaStatus as FrankaStatusMsg
from robot_stack.msg import LearnerStats as LearnerStatsMsg
from robot_stack.msg import OperatorDecision as OperatorDecisionMsg
from robot_stack.msg import OperatorCommand as OperatorCommandMsg
from robot_stack.msg import PolicyWeights as PolicyWeightsMsg
from robot_stack.msg import RobotStats as RobotStatsMsg
from robot_stack.msg import StepAck as StepAckMsg
from robot_stack.msg import StepRecord as StepRecordMsg
from robot_stack.srv import HomeTo, ResetEpisode
from robot_stack.types.fields import image_from_fields, stamp_s, step_from_fields
from robot_stack.types.intrinsics import CameraIntrinsics
from robot_stack.types.records import MAX_ID, WEIGHTS_FORMAT, EpisodeSummary, PolicyWeights, StepAck, StepRecord
from robot_stack.types.spec import PolicySpec
from robot_stack.types.status import CommandSent, FrankaStatus, Health, LearnerStats, OperatorDecision, RobotStats
from robot_stack.types.teleop import OperatorCommand

# ----------------------------------------------------------------------------- time
def stamp_to_s(stamp: Time) -> float:
    """builtin_interfaces/Time -> seconds (float; :func:`robot_stack.types.fields.stamp_s`)."""
    return stamp_s(stamp)


def s_to_stamp(t_s: float) -> Time:
    """Seconds -> builtin_interfaces/Time (t_s >= 0)."""
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _time(stamp: float | Time) -> Time:
    return stamp if isinstance(stamp, Time) else s_to_stamp(stamp)


def header(stamp: float | Time, frame_id: str = "") -> Header:
    return Header(stamp=_time(stamp), frame_id=frame_id)


def stamp_and_frame(msg: Any) -> tuple[float, str]:
    """(header stamp in s, header frame id) of any stamped message."""
    return stamp_to_s(msg.header.stamp), msg.header.frame_id


# ----------------------------------------------------------------------------- images
def image_to_msg(img: np.ndarray, stamp: float | Time, frame_id: str = "", encoding: str = "rgb8") -> Image:
    """uint8 (H, W, 3) array -> sensor_msgs/Image (``tobytes`` fast path)."""
    if img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(f"image must be uint8 (H, W, C), got {img.dtype} {img.shape}")
    h, w, c = img.shape
    msg = Image(header=header(stamp, frame_id), height=h, width=w, encoding=encoding,
                is_bigendian=0, step=w * c)
    msg.data = np.ascontiguousarray(img).tobytes()
    return msg


def depth_to_msg(depth: np.ndarray, depth_scale_m: float, stamp: float | Time, frame_id: str = "") -> Image:
    """Depth (H, W) in units of ``depth_scale_m`` -> 16UC1 Image in millimetres (the convention)."""
    msg = Image(header=header(stamp, frame_id), height=int(depth.shape[0]), width=int(depth.shape[1]),
                encoding="16UC1", is_bigendian=0, step=int(depth.shape[1]) * 2)
    if abs(depth_scale_m - 0.001) > 1e-9:
        depth = np.clip(np.round(depth * (depth_scale_m / 0.001)), 0, 65535)
    msg.data = depth.astype("<u2").tobytes()
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> uint8 (H, W, 3) RGB array
    (:func:`robot_stack.types.fields.image_from_fields`; zero-copy for unpadded rgb8)."""
    return image_from_fields(msg)


def camera_info_to_msg(intr: CameraIntrinsics, stamp: float | Time, frame_id: str = "") -> CameraInfo:
    """Intrinsics of the published image -> sensor_msgs/CameraInfo."""
    msg = CameraInfo()
    msg.header = header(stamp, frame_id)
    msg.width, msg.height = int(intr.width), int(intr.height)
    msg.distortion_model = intr.distortion_model
    msg.d = [float(v) for v in intr.dist]
    msg.k = [float(v) for v in intr.K.ravel()]
    msg.r = [float(v) for v in intr.R.ravel()]
    msg.p = [float(v) for v in intr.P.ravel()]
    return msg


# ----------------------------------------------------------------------------- steps
def step_to_msg(step: StepRecord, frame_id: str = "") -> StepRecordMsg:
    """StepRecord -> message (images as rgb8, each with its capture stamp and optical frame)."""
    msg = StepRecordMsg()
    msg.header = header(step.stamp_s, frame_id)
    msg.episode_id = int(step.episode_id)
    msg.step_index = int(step.step_index)
    names = step.camera_names
    msg.camera_names = list(names)
    stamps = step.image_stamps_s or [step.stamp_s] * len(names)
    frame_ids = step.image_frame_ids or [f"{n}_optical_frame" for n in names]
    msg.images = [image_to_msg(step.obs[n], ts, frame_id=fid) for n, ts, fid in zip(names, stamps, frame_ids)]
    msg.proprio_names = list(step.proprio_names)
    msg.proprio = np.asarray(step.proprio, np.float32)
    msg.action = np.asarray(step.action, np.float32)
    msg.policy_action = np.asarray(step.policy_action, np.float32)
    msg.intervention = bool(step.intervention)
    msg.is_first = bool(step.is_first)
    msg.is_last = bool(step.is_last)
    msg.is_terminal = bool(step.is_terminal)
    msg.success = bool(step.success)
    msg.policy_version = int(step.policy_version)
    return msg


def step_from_msg(msg: StepRecordMsg, spec: PolicySpec | None = None) -> StepRecord:
    """StepRecord message -> :class:`StepRecord` (validated; with ``spec`` the cameras, image
    sizes, proprio layout and action size must match it). The reading itself is
    :func:`robot_stack.types.fields.step_from_fields`, which a replay of a recorded bag uses
    on the same message decoded without ROS, so both get the same record. Raises ValueError
    naming the problem."""
    return step_from_fields(msg, spec)


# ----------------------------------------------------------------------------- weights
def weights_to_msg(w: PolicyWeights) -> PolicyWeightsMsg:
    msg = PolicyWeightsMsg()
    msg.header = header(w.stamp_s)
    msg.version = int(w.version)
    msg.learner_step = int(w.learner_step)
    msg.env_steps = int(w.env_steps)
    msg.format = w.format
    msg.spec_json = w.spec_json
    msg.data = bytes(w.data)
    msg.sha256 = w.sha256
    return msg


def weights_from_msg(msg: PolicyWeightsMsg) -> PolicyWeights:
    """PolicyWeights message -> PolicyWeights; ValueError when the SHA-256, the format, the
    version or the spec_json (:meth:`PolicyWeights.parse_spec`) is wrong. The network itself is
    checked when it is loaded (``robot_stack.rl.policy_io.load_policy_from_bytes``)."""
    data = np.frombuffer(msg.data, np.uint8).tobytes()
    w = PolicyWeights(
        version=int(msg.version), learner_step=int(msg.learner_step), env_steps=int(msg.env_steps),
        spec_json=msg.spec_json, data=data, format=msg.format, stamp_s=stamp_to_s(msg.header.stamp),
    )
    if w.sha256 != msg.sha256.lower():
        raise ValueError(
            f"policy weights version {msg.version}: SHA-256 mismatch (message says {msg.sha256[:16]}..., "
            f"data hashes to {w.sha256[:16]}...): corrupted or truncated, rejected"
        )
    if msg.format != WEIGHTS_FORMAT:
        raise ValueError(f"policy weights version {msg.version}: format '{msg.format[:40]}' unsupported (expected '{WEIGHTS_FORMAT}')")
    if msg.version > MAX_ID:
        raise ValueError(f"policy weights version {msg.version} is beyond {MAX_ID}")
    try:
        w.parse_spec()
    except ValueError as e:
        raise ValueError(f"policy weights version {msg.version}: {e}") from None
    return w


# ----------------------------------------------------------------------------- acknowledgements
def ack_to_msg(a: StepAck) -> StepAckMsg:
    msg = StepAckMsg()
    msg.header = header(a.stamp_s)
    msg.learner_id = int(a.learner_id)
    msg.has_watermark = a.watermark is not None
    if a.watermark is not None:
        msg.episode_id, msg.step_index = int(a.watermark[0]), int(a.watermark[1])
    msg.stored, msg.duplicates, msg.early = int(a.stored), int(a.duplicates), int(a.early)
    return msg


def ack_from_msg(msg: StepAckMsg) -> StepAck:
    """StepAck message -> StepAck; ValueError for an episode id whose successor is beyond the
    int64 range (the actor numbers its next episode above the watermark's)."""
    if msg.episode_id >= MAX_ID:
        raise ValueError(f"step ack: episode_id {msg.episode_id} leaves no episode id after it (max {MAX_ID})")
    return StepAck(learner_id=int(msg.learner_id),
                   watermark=(int(msg.episode_id), int(msg.step_index)) if msg.has_watermark else None,
                   stored=int(msg.stored), duplicates=int(msg.duplicates), early=int(msg.early),
                   stamp_s=stamp_to_s(msg.header.stamp))


# ----------------------------------------------------------------------------- summaries
def summary_to_msg(s: EpisodeSummary) -> EpisodeSummaryMsg:
    return EpisodeSummaryMsg(
        header=header(s.stamp_s),
        episode_id=int(s.episode_id),
        steps=int(s.steps),
        intervention_steps=int(s.intervention_steps),
        interventions=int(s.interventions),
        intervention_rate=float(s.intervention_rate),
        success=bool(s.success),
        truncated=bool(s.truncated),
        window=int(s.window),
        success_rate=float(s.success_rate),
        intervention_rate_window=float(s.intervention_rate_window),
        policy_version=int(s.policy_version),
        evaluation=bool(s.evaluation),
    )


def summary_from_msg(m: EpisodeSummaryMsg) -> EpisodeSummary:
    """EpisodeSummary message -> EpisodeSummary; ValueError for out-of-range counts or rates."""
    s = EpisodeSummary(
        stamp_s=stamp_to_s(m.header.stamp), episode_id=int(m.episode_id), steps=int(m.steps),
        intervention_steps=int(m.intervention_steps), interventions=int(m.interventions),
        intervention_rate=float(m.intervention_rate), success=bool(m.success), truncated=bool(m.truncated),
        window=int(m.window), success_rate=float(m.success_rate),
        intervention_rate_window=float(m.intervention_rate_window), policy_version=int(m.policy_version),
        evaluation=bool(m.evaluation),
    )
    s.validate()
    return s


# ----------------------------------------------------------------------------- operator
def _twist(lin, ang) -> Twist:
    tw = Twist()
    tw.linear.x, tw.linear.y, tw.linear.z = (float(v) for v in np.asarray(lin, float))
    tw.angular.x, tw.angular.y, tw.angular.z = (float(v) for v in np.asarray(ang, float))
    return tw


def operator_to_msg(c: OperatorCommand, frame_id: str = "base", stamp: float | Time | None = None) -> OperatorCommandMsg:
    """OperatorCommand -> message, stamped ``c.t`` unless ``stamp`` is given (e.g. the ROS time of the read)."""
    msg = OperatorCommandMsg()
    msg.header = header(c.t if stamp is None else stamp, frame_id)
    msg.intervening = bool(c.intervening)
    msg.twist = _twist(c.lin_m_s, c.ang_rad_s)
    msg.axes = [float(v) for v in np.asarray(c.axes, float)]
    msg.gripper = int(c.gripper)
    msg.episode_mark = int(c.episode_mark)
    return msg


def operator_from_msg(msg: OperatorCommandMsg, require_finite: bool = True) -> OperatorCommand:
    """OperatorCommand message -> OperatorCommand; ValueError for non-finite twists unless
    ``require_finite`` is false (a safety filter that counts such commands wants to see them)."""
    lin = np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z])
    ang = np.array([msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z])
    if require_finite and not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
        raise ValueError(f"operator twist is not finite: linear {lin.tolist()}, angular {ang.tolist()}")
    t = stamp_to_s(msg.header.stamp)
    return OperatorCommand(
        t=t if math.isfinite(t) else 0.0,
        intervening=bool(msg.intervening),
        lin_m_s=lin,
        ang_rad_s=ang,
        axes=np.asarray(msg.axes, float),
        gripper=int(msg.gripper),
        episode_mark=int(msg.episode_mark),
    )


# ----------------------------------------------------------------------------- geometry_msgs
class StampedTwist(NamedTuple):
    """A TwistStamped's content."""

    lin_m_s: np.ndarray
    ang_rad_s: np.ndarray
    stamp_s: float
    frame_id: str


class StampedPose(NamedTuple):
    """A PoseStamped's content."""

    xyz_m: np.ndarray
    quat_xyzw: np.ndarray
    stamp_s: float
    frame_id: str


def twist_to_msg(lin_m_s, ang_rad_s, stamp: float | Time, frame_id: str = "") -> TwistStamped:
    return TwistStamped(header=header(stamp, frame_id), twist=_twist(lin_m_s, ang_rad_s))


def twist_from_msg(msg: TwistStamped, require_finite: bool = False) -> StampedTwist:
    """TwistStamped -> StampedTwist; with ``require_finite`` ValueError for NaN/inf (a safety
    filter that counts such commands leaves it off)."""
    lin, ang = msg.twist.linear, msg.twist.angular
    out = StampedTwist(np.array([lin.x, lin.y, lin.z]), np.array([ang.x, ang.y, ang.z]),
                       stamp_to_s(msg.header.stamp), msg.header.frame_id)
    if require_finite and not (np.all(np.isfinite(out.lin_m_s)) and np.all(np.isfinite(out.ang_rad_s))):
        raise ValueError(f"twist is not finite: {out.lin_m_s.tolist()} {out.ang_rad_s.tolist()}")
    return out


def pose_to_msg(xyz_m, quat_xyzw, stamp: float | Time, frame_id: str = "") -> PoseStamped:
    msg = PoseStamped(header=header(stamp, frame_id))
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in np.asarray(xyz_m, float))
    o.x, o.y, o.z, o.w = (float(v) for v in np.asarray(quat_xyzw, float))
    return msg


def pose_from_msg(msg: PoseStamped, require_finite: bool = False) -> StampedPose:
    """PoseStamped -> StampedPose; with ``require_finite`` ValueError for NaN/inf or a
    quaternion far from unit length."""
    p, o = msg.pose.position, msg.pose.orientation
    out = StampedPose(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]),
                      stamp_to_s(msg.header.stamp), msg.header.frame_id)
    if require_finite and not (np.all(np.isfinite(out.xyz_m)) and np.all(np.isfinite(out.quat_xyzw))
                               and abs(float(np.linalg.norm(out.quat_xyzw)) - 1.0) < 0.1):
        raise ValueError(f"pose is not finite or its quaternion not unit: {out.xyz_m.tolist()} {out.quat_xyzw.tolist()}")
    return out


# ----------------------------------------------------------------------------- sensor_msgs
def joint_state_to_msg(names, positions, velocities, stamp: float | Time) -> JointState:
    return JointState(header=header(stamp), name=list(names), position=np.asarray(positions, float).tolist(),
                      velocity=np.asarray(velocities, float).tolist())


def joy_to_msg(axes, buttons, stamp: float | Time, frame_id: str = "spacemouse") -> Joy:
    return Joy(header=header(stamp, frame_id), axes=[float(a) for a in axes], buttons=[int(b) for b in buttons])


def joy_from_msg(msg: Joy) -> tuple[np.ndarray, tuple[int, ...]]:
    """(axes float64, buttons) of a Joy message."""
    return np.asarray(msg.axes, dtype=np.float64), tuple(int(b) for b in msg.buttons)


# ----------------------------------------------------------------------------- std_msgs
def float32_to_msg(value: float) -> Float32:
    return Float32(data=float(value))


def float_from_msg(msg: Float32, require_finite: bool = False) -> float:
    """Float32 -> float; with ``require_finite`` ValueError for NaN/inf."""
    v = float(msg.data)
    if require_finite and not math.isfinite(v):
        raise ValueError(f"value {v} is not finite")
    return v


def bool_to_msg(value: bool) -> Bool:
    return Bool(data=bool(value))


def bool_from_msg(msg: Bool) -> bool:
    return bool(msg.data)


# ----------------------------------------------------------------------------- status messages
def franka_status_to_msg(s: FrankaStatus) -> FrankaStatusMsg:
    msg = FrankaStatusMsg(header=header(s.stamp_s), event=s.event, detail=s.detail, mode=s.mode)
    msg.counter_names = list(s.counters)
    msg.counter_values = [int(v) for v in s.counters.values()]
    return msg


def franka_status_from_msg(msg: FrankaStatusMsg) -> FrankaStatus:
    """FrankaStatus message -> FrankaStatus; ValueError when the counter arrays differ in length."""
    if len(msg.counter_names) != len(msg.counter_values):
        raise ValueError(f"FrankaStatus '{msg.event}': {len(msg.counter_names)} counter names but "
                         f"{len(msg.counter_values)} values")
    return FrankaStatus(event=msg.event, detail=msg.detail, mode=msg.mode,
                        counters={n: int(v) for n, v in zip(msg.counter_names, msg.counter_values)},
                        stamp_s=stamp_to_s(msg.header.stamp))


_STATS_INTS = ("env_steps", "transitions", "buffer", "intervention_buffer", "updates", "update_backlog",
               "policy_version", "episodes", "dropped_steps", "rejected_steps")
_STATS_FLOATS = ("updates_per_s", "success_rate", "intervention_rate")


def learner_stats_to_msg(s: LearnerStats) -> LearnerStatsMsg:
    msg = LearnerStatsMsg(header=header(s.stamp_s))
    for name in _STATS_INTS:
        setattr(msg, name, max(0, int(getattr(s, name))))
    for name in _STATS_FLOATS:
        setattr(msg, name, float(getattr(s, name)))
    msg.metric_names = list(s.metrics)
    msg.metric_values = [float(v) for v in s.metrics.values()]
    msg.robots = [_robot_stats_to_msg(r) for r in s.robots]
    return msg


_ROBOT_INTS = ("records", "env_steps", "transitions", "intervention_transitions", "episodes", "dropped_steps")


def _robot_stats_to_msg(r: RobotStats) -> RobotStatsMsg:
    msg = RobotStatsMsg(robot_id=r.robot_id, success_rate=float(r.success_rate),
                        intervention_rate=float(r.intervention_rate),
                        last_record_age_s=_float_or_nan(r.last_record_age_s), active=bool(r.active))
    for name in _ROBOT_INTS:
        setattr(msg, name, max(0, int(getattr(r, name))))
    return msg


def _check_count(where: str, name: str, value: int) -> int:
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{where}: {name}={value} is beyond {MAX_ID}")
    return int(value)


def _check_rate(where: str, name: str, value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{where}: {name}={value} is not a rate in [0, 1]")
    return float(value)


def _robot_stats_from_msg(msg: RobotStatsMsg) -> RobotStats:
    where = f"LearnerStats robot '{msg.robot_id[:40]}'"
    for name in _ROBOT_INTS:
        _check_count(where, name, getattr(msg, name))
    for name in ("success_rate", "intervention_rate"):
        _check_rate(where, name, getattr(msg, name))
    age = float(msg.last_record_age_s)
    if not (math.isnan(age) or (math.isfinite(age) and age >= 0.0)):
        raise ValueError(f"{where}: last_record_age_s={age} is not a finite age (NaN: none yet)")
    return RobotStats(robot_id=msg.robot_id, **{n: int(getattr(msg, n)) for n in _ROBOT_INTS},
                      success_rate=float(msg.success_rate), intervention_rate=float(msg.intervention_rate),
                      last_record_age_s=None if math.isnan(age) else age, active=bool(msg.active))


def learner_stats_from_msg(msg: LearnerStatsMsg) -> LearnerStats:
    """LearnerStats message -> LearnerStats; ValueError when the metric arrays differ in length,
    a count is beyond a signed 64-bit integer, a rate is not in [0, 1], updates_per_s is not a
    finite rate, or a robot id repeats (metric values may be NaN: a diverged loss is news)."""
    where = "LearnerStats"
    if len(msg.metric_names) != len(msg.metric_values):
        raise ValueError(f"{where}: {len(msg.metric_names)} metric names but {len(msg.metric_values)} values")
    for name in _STATS_INTS:
        _check_count(where, name, getattr(msg, name))
    for name in ("success_rate", "intervention_rate"):
        _check_rate(where, name, getattr(msg, name))
    if not (math.isfinite(msg.updates_per_s) and msg.updates_per_s >= 0.0):
        raise ValueError(f"{where}: updates_per_s={msg.updates_per_s} is not a finite rate")
    ids = [r.robot_id for r in msg.robots]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: robot ids repeat: {ids[:8]}")
    return LearnerStats(
        **{n: int(getattr(msg, n)) for n in _STATS_INTS}, **{n: float(getattr(msg, n)) for n in _STATS_FLOATS},
        metrics={n: float(v) for n, v in zip(msg.metric_names, msg.metric_values)},
        robots=tuple(_robot_stats_from_msg(r) for r in msg.robots),
        stamp_s=stamp_to_s(msg.header.stamp))


def operator_decision_to_msg(d: OperatorDecision) -> OperatorDecisionMsg:
    return OperatorDecisionMsg(header=header(d.stamp_s), intervening=bool(d.intervening), started=bool(d.started),
                               probability=_float_or_nan(d.probability), q_policy=_float_or_nan(d.q_policy),
                               q_expert=_float_or_nan(d.q_expert))


def operator_decision_from_msg(msg: OperatorDecisionMsg) -> OperatorDecision:
    return OperatorDecision(intervening=bool(msg.intervening), started=bool(msg.started),
                            probability=float(msg.probability), q_policy=float(msg.q_policy),
                            q_expert=float(msg.q_expert), stamp_s=stamp_to_s(msg.header.stamp))


def _float_or_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def command_sent_to_msg(c: CommandSent) -> CommandSentMsg:
    return CommandSentMsg(command_stamp=s_to_stamp(max(0.0, c.command_stamp_s)), received=s_to_stamp(c.received_s),
                          sent=s_to_stamp(c.sent_s), trigger=c.trigger)


def command_sent_from_msg(msg: CommandSentMsg) -> CommandSent:
    return CommandSent(command_stamp_s=stamp_to_s(msg.command_stamp), received_s=stamp_to_s(msg.received),
                       sent_s=stamp_to_s(msg.sent), trigger=msg.trigger)


def diagnostics_to_msg(healths: list[Health], stamp: float | Time) -> DiagnosticArray:
    """Health reports -> one DiagnosticArray (for /diagnostics)."""
    return DiagnosticArray(header=header(stamp), status=[
        DiagnosticStatus(level=bytes([int(h.level)]), name=h.name, message=h.message, hardware_id=h.hardware_id,
                         values=[KeyValue(key=str(k), value=str(v)) for k, v in h.values.items()])
        for h in healths])


def diagnostics_from_msg(msg: DiagnosticArray) -> list[Health]:
    def level(v) -> int:
        return v[0] if isinstance(v, (bytes, bytearray)) else int(v)

    return [Health(name=s.name, level=level(s.level), message=s.message, hardware_id=s.hardware_id,
                   values={kv.key: kv.value for kv in s.values}) for s in msg.status]


# ----------------------------------------------------------------------------- services
def home_to_request(xyz_m, quat_xyzw, stamp: float | Time, frame_id: str = "") -> HomeTo.Request:
    """A HomeTo request for a TCP pose in ``frame_id`` (the base frame)."""
    return HomeTo.Request(target=pose_to_msg(xyz_m, quat_xyzw, stamp, frame_id))


def home_to_target(req: HomeTo.Request) -> StampedPose:
    return pose_from_msg(req.target)


def reset_request(episode_id: int) -> ResetEpisode.Request:
    return ResetEpisode.Request(episode_id=int(episode_id))


def reset_episode_id(req: ResetEpisode.Request) -> int:
    return int(req.episode_id)


def trigger_request() -> Trigger.Request:
    return Trigger.Request()


def fill_result(response: Any, success: bool, message: str = "") -> Any:
    """Set a (success, message) response (Trigger, HomeTo, ResetEpisode) and return it."""
    response.success = bool(success)
    response.message = str(message)
    return response


def result_from_response(response: Any) -> tuple[bool, str]:
    """(success, message) of a Trigger, HomeTo or ResetEpisode response."""
    return bool(response.success), str(response.message)
