"""Conversions between robot_stack's ROS messages and the ROS-free core types.

Images go through the fast paths only (see PLATFORM.md): ``msg.data = arr.tobytes()`` to
publish and ``np.frombuffer(msg.data, np.uint8)`` to read (no per-element copies).

Every ``*_from_msg`` function validates what it reads and raises :class:`ValueError` naming
the field and the problem, so a node can log and drop a bad message instead of crashing.

=====================  ==========================================  ============================
message                ROS-free type                               functions
=====================  ==========================================  ============================
sensor_msgs/Image      uint8 (H, W, 3) RGB array                   image_to_msg, image_from_msg
StepRecord             core.actor.ActorStep -> msg -> rl Step      step_to_msg, step_from_msg
PolicyWeights          :class:`PolicyWeightsData`                  weights_to_msg, weights_from_msg
EpisodeSummary         core.actor.EpisodeSummaryData               summary_to_msg, summary_from_msg
OperatorCommand        core.teleop.OperatorCommand                 operator_to_msg, operator_from_msg
=====================  ==========================================  ============================
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from robot_stack.core.actor import ActorStep, EpisodeSummaryData
from robot_stack.core.teleop import OperatorCommand as OperatorCommandData
from robot_stack.msg import EpisodeSummary, OperatorCommand, PolicyWeights, StepRecord

WEIGHTS_FORMAT = "torch_state_dict"
"""The only PolicyWeights.format this version reads (see msg/PolicyWeights.msg)."""


# ----------------------------------------------------------------------------- time
def stamp_to_s(stamp: Time) -> float:
    """builtin_interfaces/Time -> seconds (float)."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def s_to_stamp(t_s: float) -> Time:
    """Seconds -> builtin_interfaces/Time (t_s >= 0)."""
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def header(t_s: float, frame_id: str = "") -> Header:
    return Header(stamp=s_to_stamp(t_s), frame_id=frame_id)


# ----------------------------------------------------------------------------- images
_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_msg(img: np.ndarray, stamp_s: float, frame_id: str = "", encoding: str = "rgb8") -> Image:
    """uint8 (H, W, 3) array -> sensor_msgs/Image (``tobytes`` fast path)."""
    if img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(f"image must be uint8 (H, W, C), got {img.dtype} {img.shape}")
    h, w, c = img.shape
    msg = Image(header=header(stamp_s, frame_id), height=h, width=w, encoding=encoding,
                is_bigendian=0, step=w * c)
    msg.data = np.ascontiguousarray(img).tobytes()
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> uint8 (H, W, 3) RGB array.

    rgb8 with no row padding is a zero-copy read-only view of the message buffer.
    """
    enc = msg.encoding.lower()
    c = _CHANNELS.get(enc)
    if c is None:
        raise ValueError(f"image encoding '{msg.encoding}' is not supported; publish one of {sorted(_CHANNELS)}")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise ValueError(f"image is empty ({h}x{w})")
    if step < w * c:
        raise ValueError(f"image step {step} is less than width*channels = {w * c}")
    buf = np.frombuffer(msg.data, np.uint8)
    if buf.size != h * step:
        raise ValueError(f"image data has {buf.size} bytes, expected height*step = {h * step}")
    arr = buf.reshape(h, step)[:, : w * c].reshape(h, w, c)
    if enc == "rgb8":
        return arr
    if enc == "bgr8":
        return arr[:, :, ::-1]
    if enc == "rgba8":
        return arr[:, :, :3]
    if enc == "bgra8":
        return arr[:, :, 2::-1]
    return np.repeat(arr, 3, axis=2)  # mono8


# ----------------------------------------------------------------------------- steps
def step_to_msg(step: ActorStep, frame_id: str = "") -> StepRecord:
    """ActorStep -> StepRecord (images as rgb8, each with its capture stamp)."""
    msg = StepRecord()
    msg.header = header(step.stamp_s, frame_id)
    msg.episode_id = int(step.episode_id)
    msg.step_index = int(step.step_index)
    msg.camera_names = list(step.camera_names)
    frame_ids = step.image_frame_ids or [f"{n}_optical_frame" for n in step.camera_names]
    msg.images = [
        image_to_msg(img, ts, frame_id=fid)
        for img, ts, fid in zip(step.images, step.image_stamps_s, frame_ids)
    ]
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


def step_from_msg(msg: StepRecord, spec=None):
    """StepRecord -> :class:`robot_stack.rl.labelling.Step` (validated).

    With ``spec`` (a PolicySpec) the cameras, image sizes, proprio layout and action size
    must match it. Raises ValueError naming the problem.
    """
    from robot_stack.rl.labelling import Step

    where = f"StepRecord episode {msg.episode_id} step {msg.step_index}"
    if len(msg.camera_names) != len(msg.images):
        raise ValueError(f"{where}: {len(msg.camera_names)} camera_names but {len(msg.images)} images")
    if len(msg.proprio_names) != len(msg.proprio):
        raise ValueError(f"{where}: {len(msg.proprio_names)} proprio_names but {len(msg.proprio)} values")
    obs = {}
    for name, img in zip(msg.camera_names, msg.images):
        try:
            obs[name] = image_from_msg(img)
        except ValueError as e:
            raise ValueError(f"{where}: camera '{name}': {e}") from None
    proprio = np.asarray(msg.proprio, np.float32)
    if not np.all(np.isfinite(proprio)):
        raise ValueError(f"{where}: proprio has non-finite values")
    obs["proprio"] = proprio
    action = policy_action = None
    if msg.is_last:
        if len(msg.action):
            raise ValueError(f"{where}: the is_last record must not carry an action")
    else:
        action = np.asarray(msg.action, np.float32)
        policy_action = np.asarray(msg.policy_action, np.float32)
        if action.size == 0:
            raise ValueError(f"{where}: no action (only the is_last record may omit it)")
        if not np.all(np.isfinite(action)) or np.any(np.abs(action) > 1.0 + 1e-5):
            raise ValueError(f"{where}: action {action.tolist()} is not finite within [-1, 1]")
        if policy_action.shape != action.shape:
            raise ValueError(f"{where}: policy_action has {policy_action.size} values, action {action.size}")
    if spec is not None:
        if tuple(msg.camera_names) != spec.camera_names:
            raise ValueError(f"{where}: cameras {list(msg.camera_names)} differ from the spec's {list(spec.camera_names)}")
        if tuple(msg.proprio_names) != spec.proprio_names:
            raise ValueError(f"{where}: proprio_names {list(msg.proprio_names)} differ from the spec's {list(spec.proprio_names)}")
        try:
            spec.check_observation(obs)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if action is not None and action.shape != (spec.action.dim,):
            raise ValueError(f"{where}: action has {action.size} values, the spec has {spec.action.dim}")
    return Step(
        episode_id=int(msg.episode_id),
        step_index=int(msg.step_index),
        obs=obs,
        action=action,
        policy_action=policy_action,
        intervention=bool(msg.intervention),
        is_first=bool(msg.is_first),
        is_last=bool(msg.is_last),
        is_terminal=bool(msg.is_terminal),
        success=bool(msg.success),
        policy_version=int(msg.policy_version),
    )


# ----------------------------------------------------------------------------- weights
@dataclass
class PolicyWeightsData:
    """ROS-free content of a PolicyWeights message."""

    version: int
    learner_step: int
    env_steps: int
    spec_json: str
    data: bytes
    format: str = WEIGHTS_FORMAT
    stamp_s: float = 0.0

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def weights_to_msg(w: PolicyWeightsData) -> PolicyWeights:
    msg = PolicyWeights()
    msg.header = header(w.stamp_s)
    msg.version = int(w.version)
    msg.learner_step = int(w.learner_step)
    msg.env_steps = int(w.env_steps)
    msg.format = w.format
    msg.spec_json = w.spec_json
    msg.data = bytes(w.data)
    msg.sha256 = w.sha256
    return msg


def weights_from_msg(msg: PolicyWeights) -> PolicyWeightsData:
    """PolicyWeights -> PolicyWeightsData; ValueError when the SHA-256 or format is wrong."""
    data = np.frombuffer(msg.data, np.uint8).tobytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != msg.sha256.lower():
        raise ValueError(
            f"policy weights version {msg.version}: SHA-256 mismatch (message says {msg.sha256[:16]}..., "
            f"data hashes to {digest[:16]}...): corrupted or truncated, rejected"
        )
    if msg.format != WEIGHTS_FORMAT:
        raise ValueError(f"policy weights version {msg.version}: format '{msg.format}' unsupported (expected '{WEIGHTS_FORMAT}')")
    return PolicyWeightsData(
        version=int(msg.version), learner_step=int(msg.learner_step), env_steps=int(msg.env_steps),
        spec_json=msg.spec_json, data=data, format=msg.format, stamp_s=stamp_to_s(msg.header.stamp),
    )


# ----------------------------------------------------------------------------- summaries
def summary_to_msg(s: EpisodeSummaryData) -> EpisodeSummary:
    return EpisodeSummary(
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


def summary_from_msg(m: EpisodeSummary) -> EpisodeSummaryData:
    return EpisodeSummaryData(
        stamp_s=stamp_to_s(m.header.stamp), episode_id=int(m.episode_id), steps=int(m.steps),
        intervention_steps=int(m.intervention_steps), interventions=int(m.interventions),
        intervention_rate=float(m.intervention_rate), success=bool(m.success), truncated=bool(m.truncated),
        window=int(m.window), success_rate=float(m.success_rate),
        intervention_rate_window=float(m.intervention_rate_window), policy_version=int(m.policy_version),
        evaluation=bool(m.evaluation),
    )


# ----------------------------------------------------------------------------- operator
def operator_to_msg(c: OperatorCommandData, frame_id: str = "base") -> OperatorCommand:
    msg = OperatorCommand()
    msg.header = header(c.t, frame_id)
    msg.intervening = bool(c.intervening)
    lin = np.asarray(c.lin_m_s, float)
    ang = np.asarray(c.ang_rad_s, float)
    msg.twist = Twist()
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in ang)
    msg.axes = [float(v) for v in np.asarray(c.axes, float)]
    msg.gripper = int(c.gripper)
    msg.episode_mark = int(c.episode_mark)
    return msg


def operator_from_msg(msg: OperatorCommand) -> OperatorCommandData:
    """OperatorCommand -> teleop.OperatorCommand; ValueError for non-finite twists."""
    lin = np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z])
    ang = np.array([msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z])
    if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
        raise ValueError(f"operator twist is not finite: linear {lin.tolist()}, angular {ang.tolist()}")
    t = stamp_to_s(msg.header.stamp)
    return OperatorCommandData(
        t=t if math.isfinite(t) else 0.0,
        intervening=bool(msg.intervening),
        lin_m_s=lin,
        ang_rad_s=ang,
        axes=np.asarray(msg.axes, float),
        gripper=int(msg.gripper),
        episode_mark=int(msg.episode_mark),
    )
