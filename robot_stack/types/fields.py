"""Reading a step record message by its fields, without ROS (numpy only).

A ``robot_stack/StepRecord`` has the same fields whether an rclpy subscription delivers it or it
is decoded from a recorded bag (rosbags' CDR decoder): :func:`step_from_fields` reads either,
so the learner node (through ``robot_stack.nodes.convert.step_from_msg``) and a replay of a bag
(``robot_stack.recording.replay``) turn a record into exactly the same :class:`StepRecord`, with
the same checks. ``robot_stack.nodes.convert`` stays the one place that builds messages.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from robot_stack.types.records import MAX_ID, StepRecord
from robot_stack.types.spec import PolicySpec

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
"""Colour image encodings the readers take, with their channels."""


def stamp_s(stamp: Any) -> float:
    """A ``builtin_interfaces/Time`` (any object with sec and nanosec) -> seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def image_from_fields(msg: Any) -> np.ndarray:
    """A sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> uint8 (H, W, 3) RGB array.

    rgb8 with no row padding is a zero-copy read-only view of the message buffer.
    """
    enc = msg.encoding.lower()
    c = CHANNELS.get(enc)
    if c is None:
        raise ValueError(f"image encoding '{msg.encoding}' is not supported; publish one of {sorted(CHANNELS)}")
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


def step_from_fields(msg: Any, spec: PolicySpec | None = None) -> StepRecord:
    """A StepRecord message -> :class:`StepRecord` (validated).

    With ``spec`` (a PolicySpec) the cameras, image sizes, proprio layout and action size
    must match it. Raises ValueError naming the problem.
    """
    where = f"StepRecord episode {msg.episode_id} step {msg.step_index}"
    for name in ("episode_id", "step_index", "policy_version"):
        if getattr(msg, name) > MAX_ID:
            raise ValueError(f"{where}: {name} {getattr(msg, name)} is beyond {MAX_ID} (a signed 64-bit integer)")
    if len(set(msg.camera_names)) != len(msg.camera_names):
        raise ValueError(f"{where}: camera names repeat: {list(msg.camera_names)[:8]}")
    if len(msg.camera_names) != len(msg.images):
        raise ValueError(f"{where}: {len(msg.camera_names)} camera_names but {len(msg.images)} images")
    if len(msg.proprio_names) != len(msg.proprio):
        raise ValueError(f"{where}: {len(msg.proprio_names)} proprio_names but {len(msg.proprio)} values")
    obs = {}
    for name, img in zip(msg.camera_names, msg.images):
        try:
            obs[name] = image_from_fields(img)
        except ValueError as e:
            raise ValueError(f"{where}: camera '{name}': {e}") from None
    proprio = np.asarray(msg.proprio, np.float32)
    if not np.all(np.isfinite(proprio)):
        raise ValueError(f"{where}: proprio has non-finite values")
    obs["proprio"] = proprio
    action = policy_action = np.zeros(0, np.float32)
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
        if not np.all(np.isfinite(policy_action)):
            raise ValueError(f"{where}: policy_action is not finite")
    if spec is not None:
        if tuple(msg.camera_names) != spec.camera_names:
            raise ValueError(f"{where}: cameras {list(msg.camera_names)} differ from the spec's {list(spec.camera_names)}")
        if tuple(msg.proprio_names) != spec.proprio_names:
            raise ValueError(f"{where}: proprio_names {list(msg.proprio_names)} differ from the spec's {list(spec.proprio_names)}")
        try:
            spec.check_observation(obs)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if action.size and action.shape != (spec.action.dim,):
            raise ValueError(f"{where}: action has {action.size} values, the spec has {spec.action.dim}")
    return StepRecord(
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
        stamp_s=stamp_s(msg.header.stamp),
        image_stamps_s=[stamp_s(img.header.stamp) for img in msg.images],
        image_frame_ids=[img.header.frame_id for img in msg.images],
        proprio_names=tuple(msg.proprio_names),
    )


__all__ = ["CHANNELS", "image_from_fields", "stamp_s", "step_from_fields"]
