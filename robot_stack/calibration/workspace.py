"""Recording the workspace box: the bounding box of EE positions the operator drove to.

The box type and its file live in :mod:`robot_stack.types.workspace` (the franka safety layer
loads it from there).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from robot_stack.types.errors import InvalidWorkspaceBoxError, TooFewViewsError
from robot_stack.types.workspace import ReachLimits, WorkspaceBox

_AXES = "xyz"


def box_from_positions(positions_xyz_m: Iterable, frame: str, margin_m: float = 0.02,
                       min_points: int = 10, limits: ReachLimits | None = None) -> WorkspaceBox:
    """Bounding box of recorded EE positions, shrunk by ``margin_m`` on every side, validated.

    The operator drives the EE to the edges of the safe region, so the box is pulled inward
    by the margin to keep the safety limit strictly inside what was shown to be safe.
    """
    pts = np.asarray([np.asarray(p, dtype=np.float64).reshape(3) for p in positions_xyz_m])
    if len(pts) < min_points:
        raise TooFewViewsError(
            f"only {len(pts)} EE positions recorded, need {min_points}: keep recording while you move the robot "
            "to every face of the safe workspace"
        )
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < min_points:
        raise TooFewViewsError(f"fewer than {min_points} finite EE positions: check the pose source")
    extent = pts.max(axis=0) - pts.min(axis=0)
    min_edge = (limits or ReachLimits()).min_edge_m
    for i, a in enumerate(_AXES):
        if extent[i] - 2 * margin_m < min_edge:
            raise InvalidWorkspaceBoxError(
                f"workspace box is empty on {a}: the recorded extent {extent[i]:.3f} m minus the margin 2 x {margin_m} m "
                f"leaves less than {min_edge} m: move the robot further along {a} while recording, or reduce the margin"
            )
    box = WorkspaceBox(frame, tuple(pts.min(axis=0) + margin_m), tuple(pts.max(axis=0) - margin_m))
    box.validate(limits)
    return box
