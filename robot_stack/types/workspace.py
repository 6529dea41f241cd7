"""Workspace box: the axis-aligned region the end effector may occupy (franka safety layer).

Dependency-free (numpy + yaml) so the safety layer can load it without OpenCV. File format::

    frame: fr3_link0          # robot base frame the box is expressed in
    min_xyz_m: [0.30, -0.25, 0.02]
    max_xyz_m: [0.65,  0.25, 0.45]

:func:`load_workspace_box` refuses a box that is non-finite, inverted (min > max on an axis),
empty/too thin (an edge shorter than ``min_edge_m``), or with a corner outside the robot's
reach (distance from the shoulder point ``reach_center_xyz_m`` above ``max_reach_m``).
All refusals raise :class:`InvalidWorkspaceBoxError` (a ``ValueError``) naming the problem.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import pathlib
from dataclasses import dataclass

import numpy as np
import yaml

from robot_stack.types.errors import InvalidWorkspaceBoxError
from robot_stack.types.files import read_yaml_mapping, write_text_with_backup

_AXES = "xyz"


@dataclass(frozen=True)
class ReachLimits:
    """What counts as reachable when a box is validated. Defaults are for the Franka FR3."""

    max_reach_m: float = 0.855
    """Largest distance from ``reach_center_xyz_m`` any box corner may have (FR3: 855 mm)."""
    reach_center_xyz_m: tuple[float, float, float] = (0.0, 0.0, 0.333)
    """Centre of the reach sphere in the box frame: the FR3 shoulder (joint 2 axis) above the base."""
    min_edge_m: float = 0.02
    """Shortest allowed box edge; a thinner box is treated as empty (a mis-recorded axis)."""


@dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned box in ``frame``; min and max corners in m."""

    frame: str
    min_xyz_m: tuple[float, float, float]
    max_xyz_m: tuple[float, float, float]

    @property
    def lower(self) -> np.ndarray:
        return np.asarray(self.min_xyz_m, dtype=np.float64)

    @property
    def upper(self) -> np.ndarray:
        return np.asarray(self.max_xyz_m, dtype=np.float64)

    def contains(self, p_xyz_m) -> bool:
        p = np.asarray(p_xyz_m, dtype=np.float64)
        return bool(np.all(p >= self.lower) and np.all(p <= self.upper))

    def clip(self, p_xyz_m) -> np.ndarray:
        """Nearest point of the box to ``p`` (what a safety layer clamps a target to)."""
        return np.clip(np.asarray(p_xyz_m, dtype=np.float64), self.lower, self.upper)

    def corners(self) -> np.ndarray:
        return np.array([[(self.lower, self.upper)[b][i] for i, b in enumerate(bits)]
                         for bits in itertools.product((0, 1), repeat=3)])

    def validate(self, limits: ReachLimits | None = None) -> None:
        """Raise InvalidWorkspaceBoxError if the box is unusable (see module docstring)."""
        limits = limits or ReachLimits()
        if not self.frame:
            raise InvalidWorkspaceBoxError("workspace box has an empty 'frame': name the robot base frame it is expressed in")
        lo, hi = self.lower, self.upper
        if lo.shape != (3,) or hi.shape != (3,):
            raise InvalidWorkspaceBoxError(f"workspace box min/max must have 3 values each, got {lo.tolist()} / {hi.tolist()}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InvalidWorkspaceBoxError(f"workspace box has non-finite values: min {lo.tolist()}, max {hi.tolist()}")
        for i, a in enumerate(_AXES):
            if lo[i] > hi[i]:
                raise InvalidWorkspaceBoxError(
                    f"workspace box is inverted on {a}: min {lo[i]:.3f} m > max {hi[i]:.3f} m (swap them or re-record the box)"
                )
        for i, a in enumerate(_AXES):
            if hi[i] - lo[i] < limits.min_edge_m:
                raise InvalidWorkspaceBoxError(
                    f"workspace box is empty on {a}: {hi[i] - lo[i]:.3f} m < {limits.min_edge_m} m "
                    f"(move the robot along {a} while recording, or reduce the margin)"
                )
        center = np.asarray(limits.reach_center_xyz_m, dtype=np.float64)
        dist = np.linalg.norm(self.corners() - center, axis=1)
        worst = int(np.argmax(dist))
        if dist[worst] > limits.max_reach_m:
            c = self.corners()[worst]
            raise InvalidWorkspaceBoxError(
                f"workspace box corner {np.round(c, 3).tolist()} is {dist[worst]:.3f} m from the shoulder "
                f"{center.tolist()}, beyond the reach limit {limits.max_reach_m} m: shrink the box"
            )

    def to_dict(self) -> dict:
        return {"frame": self.frame, "min_xyz_m": [float(v) for v in self.min_xyz_m],
                "max_xyz_m": [float(v) for v in self.max_xyz_m]}


def save_workspace_box(box: WorkspaceBox, path: str | pathlib.Path, limits: ReachLimits | None = None,
                       comment: str = "") -> pathlib.Path | None:
    """Validate and write the box YAML; an existing file is kept as ``.bak-<timestamp>``."""
    box.validate(limits)
    header = f"# workspace box written {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}\n"
    header += "".join(f"# {line}\n" for line in comment.splitlines())
    return write_text_with_backup(path, header + yaml.safe_dump(box.to_dict(), sort_keys=False, default_flow_style=None))


def load_workspace_box(path: str | pathlib.Path, limits: ReachLimits | None = None) -> WorkspaceBox:
    """Load and validate a workspace box YAML.

    Raises CalibrationFileError (missing/unreadable file, missing keys) or
    InvalidWorkspaceBoxError (empty, inverted, non-finite, out of reach). Both are ValueErrors.
    """
    data = read_yaml_mapping(path, "workspace box")
    missing = [k for k in ("frame", "min_xyz_m", "max_xyz_m") if k not in data]
    if missing:
        raise InvalidWorkspaceBoxError(f"{path}: missing keys {missing} (expected frame, min_xyz_m, max_xyz_m)")
    unknown = sorted(set(data) - {"frame", "min_xyz_m", "max_xyz_m"})
    if unknown:
        raise InvalidWorkspaceBoxError(f"{path}: unknown keys {unknown} (expected frame, min_xyz_m, max_xyz_m)")
    vals = {}
    for key in ("min_xyz_m", "max_xyz_m"):
        v = data[key]
        if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in v
        ):
            raise InvalidWorkspaceBoxError(f"{path}: '{key}' must be a list of 3 numbers (m), got {v!r}")
        vals[key] = tuple(float(x) for x in v)
    if not isinstance(data["frame"], str):
        raise InvalidWorkspaceBoxError(f"{path}: 'frame' must be a string, got {data['frame']!r}")
    box = WorkspaceBox(data["frame"], vals["min_xyz_m"], vals["max_xyz_m"])
    try:
        box.validate(limits)
    except InvalidWorkspaceBoxError as e:
        raise InvalidWorkspaceBoxError(f"{path}: {e}") from e
    return box
