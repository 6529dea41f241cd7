"""Observation and action layouts as data (shared by the sim, the agent and the nodes).

A learner on another machine reads a :class:`PolicySpec` (JSON) and never needs to build
a robot environment to learn shapes.

Conventions
-----------
* Images are RGB ``uint8`` arrays of shape ``(H, W, 3)`` per camera, in ``cameras`` order.
* Proprioception is one flat ``float32`` vector whose entries are named by ``proprio_names``
  (positions in m in the robot base frame, velocities in m/s, gripper width in m).
* Actions are ``float32`` in ``[-1, 1]`` per dimension. Dimension names:
  ``vx, vy, vz`` (EE linear velocity, base frame, scaled by ``max_lin_speed_m_s``),
  optional ``wx, wy, wz`` (EE angular velocity, base frame, scaled by ``max_ang_speed_rad_s``),
  optional ``gripper`` (> 0 open, < 0 close).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np


MAX_IMAGE_SIDE = 4096
"""Largest image height or width a spec may name, in pixels."""
ACTION_NAMES = frozenset({"vx", "vy", "vz", "wx", "wy", "wz", "gripper"})
"""Action dimension names a spec may use (see the module docstring)."""


def _list(v, where: str) -> list:
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"invalid policy spec: {where} must be a list, got {type(v).__name__}")
    return list(v)


def _name(v, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"invalid policy spec: {where} must be a non-empty string, got {v!r:.40}")
    return v


def _int(v, where: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"invalid policy spec: {where} must be an integer in [{lo}, {hi}], got {v!r:.40}")
    return v


def _float(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"invalid policy spec: {where} must be a finite number > 0, got {v!r:.40}")
    return float(v)


@dataclass(frozen=True)
class CameraSpec:
    """One camera stream as the policy sees it."""

    name: str
    """Camera name, also the key in observation dicts (e.g. ``wrist``, ``front``)."""
    height: int
    """Image height in pixels after crop/resize."""
    width: int
    """Image width in pixels after crop/resize."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)


@dataclass(frozen=True)
class ActionSpec:
    """Normalized EE-velocity action layout and its physical scale."""

    names: tuple[str, ...] = ("vx", "vy", "vz")
    """Action dimension names, see module docstring."""
    max_lin_speed_m_s: float = 0.1
    """Linear speed at action magnitude 1, in m/s."""
    max_ang_speed_rad_s: float = 0.5
    """Angular speed at action magnitude 1, in rad/s."""

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def has_rotation(self) -> bool:
        return "wx" in self.names

    @property
    def has_gripper(self) -> bool:
        return "gripper" in self.names

    def to_twist(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Map a normalized action to (linear m/s, angular rad/s, gripper or None)."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        idx = {n: i for i, n in enumerate(self.names)}
        lin = np.array([a[idx["vx"]], a[idx["vy"]], a[idx["vz"]]]) * self.max_lin_speed_m_s
        ang = np.zeros(3)
        if self.has_rotation:
            ang = np.array([a[idx["wx"]], a[idx["wy"]], a[idx["wz"]]]) * self.max_ang_speed_rad_s
        grip = float(a[idx["gripper"]]) if self.has_gripper else None
        return lin, ang, grip

    def from_twist(self, lin_m_s, ang_rad_s=None, gripper: float | None = None) -> np.ndarray:
        """Inverse of :meth:`to_twist`, clipped to [-1, 1]."""
        out = np.zeros(self.dim, dtype=np.float32)
        idx = {n: i for i, n in enumerate(self.names)}
        lin = np.asarray(lin_m_s, dtype=np.float64) / self.max_lin_speed_m_s
        out[idx["vx"]], out[idx["vy"]], out[idx["vz"]] = lin
        if self.has_rotation and ang_rad_s is not None:
            ang = np.asarray(ang_rad_s, dtype=np.float64) / self.max_ang_speed_rad_s
            out[idx["wx"]], out[idx["wy"]], out[idx["wz"]] = ang
        if self.has_gripper and gripper is not None:
            out[idx["gripper"]] = gripper
        return np.clip(out, -1.0, 1.0)


@dataclass(frozen=True)
class PolicySpec:
    """Everything needed to build a policy's networks and check its inputs."""

    cameras: tuple[CameraSpec, ...] = ()
    """Camera inputs; empty for state-only policies."""
    proprio_names: tuple[str, ...] = ()
    """Names of the proprioception vector's entries."""
    action: ActionSpec = field(default_factory=ActionSpec)
    """Action layout."""
    control_rate_hz: float = 10.0
    """Rate at which the policy is queried."""

    @property
    def proprio_dim(self) -> int:
        return len(self.proprio_names)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "PolicySpec":
        """A spec from its dict form, every field checked (types, sizes within
        :data:`MAX_IMAGE_SIDE`, known action names); ValueError names the problem."""
        if not isinstance(d, dict):
            raise ValueError(f"invalid policy spec: expected an object, got {type(d).__name__}")
        unknown = set(d) - {"cameras", "proprio_names", "action", "control_rate_hz"}
        if unknown:
            raise ValueError(f"invalid policy spec: unknown key(s) {sorted(unknown)}")
        cams = []
        for i, c in enumerate(_list(d.get("cameras", ()), "cameras")):
            if not isinstance(c, dict) or set(c) != {"name", "height", "width"}:
                raise ValueError(f"invalid policy spec: cameras[{i}] must be {{name, height, width}}, got {c!r:.80}")
            cams.append(CameraSpec(_name(c["name"], f"cameras[{i}].name"),
                                   _int(c["height"], f"cameras[{i}].height", 1, MAX_IMAGE_SIDE),
                                   _int(c["width"], f"cameras[{i}].width", 1, MAX_IMAGE_SIDE)))
        if len({c.name for c in cams}) != len(cams):
            raise ValueError(f"invalid policy spec: camera names repeat: {[c.name for c in cams]}")
        proprio = tuple(_name(n, "proprio_names[]") for n in _list(d.get("proprio_names", ()), "proprio_names"))
        a = d.get("action", {})
        if not isinstance(a, dict) or set(a) - {"names", "max_lin_speed_m_s", "max_ang_speed_rad_s"}:
            raise ValueError(f"invalid policy spec: action must be {{names, max_lin_speed_m_s, max_ang_speed_rad_s}}, got {a!r:.80}")
        names = tuple(_name(n, "action.names[]") for n in _list(a.get("names", ActionSpec.names), "action.names"))
        if (not set(names) <= ACTION_NAMES or len(set(names)) != len(names) or not {"vx", "vy", "vz"} <= set(names)
                or len({"wx", "wy", "wz"} & set(names)) not in (0, 3)):
            raise ValueError(f"invalid policy spec: action.names {list(names)} must hold vx, vy, vz, optionally "
                             "wx, wy, wz (all three) and gripper, each once")
        act = ActionSpec(names=names,
                         max_lin_speed_m_s=_float(a.get("max_lin_speed_m_s", ActionSpec.max_lin_speed_m_s), "action.max_lin_speed_m_s"),
                         max_ang_speed_rad_s=_float(a.get("max_ang_speed_rad_s", ActionSpec.max_ang_speed_rad_s), "action.max_ang_speed_rad_s"))
        return cls(cameras=tuple(cams), proprio_names=proprio, action=act,
                   control_rate_hz=_float(d.get("control_rate_hz", 10.0), "control_rate_hz"))

    @classmethod
    def from_json(cls, s: str) -> "PolicySpec":
        try:
            d = json.loads(s)
        except (json.JSONDecodeError, TypeError, RecursionError) as e:
            raise ValueError(f"policy spec is not valid JSON: {e}") from None
        return cls.from_dict(d)

    def check_observation(self, obs: dict) -> None:
        """Raise ValueError naming the first key whose shape or dtype does not match."""
        for cam in self.cameras:
            img = obs.get(cam.name)
            if img is None:
                raise ValueError(f"observation lacks camera '{cam.name}' (have: {sorted(obs)})")
            if img.shape != cam.shape or img.dtype != np.uint8:
                raise ValueError(
                    f"camera '{cam.name}': expected uint8 {cam.shape}, got {img.dtype} {img.shape}"
                )
        if self.proprio_names:
            p = obs.get("proprio")
            if p is None or np.shape(p) != (self.proprio_dim,):
                raise ValueError(
                    f"observation 'proprio': expected shape ({self.proprio_dim},), got {None if p is None else np.shape(p)}"
                )


def parse_spec_json(text: str) -> tuple[PolicySpec, dict | None]:
    """(PolicySpec, network config dict or None) from a PolicySpec JSON or from the
    ``spec_json`` of a policy export (``{"format", "policy_spec", "network"}``).
    Raises ValueError naming the problem."""
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError) as e:
        raise ValueError(f"policy spec is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise ValueError("policy spec JSON must be an object")
    if "policy_spec" in meta:
        network = meta.get("network")
        if network is not None and not isinstance(network, dict):
            raise ValueError(f"the spec's 'network' must be an object, got {type(network).__name__}")
        return PolicySpec.from_dict(meta["policy_spec"]), network
    return PolicySpec.from_dict(meta), None
