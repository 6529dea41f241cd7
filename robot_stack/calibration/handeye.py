"""Hand-eye calibration (eye-in-hand and eye-to-hand) and the extrinsic YAML file.

Inputs are pairs (T_base_ee, T_cam_board): the robot's end-effector pose in its base frame
and the board pose seen by the camera at the same instant.

* ``eye_in_hand``: camera on the wrist, board fixed in the world. Solves T_ee_cam.
* ``eye_to_hand``: camera fixed, board held by the robot. Solves T_base_cam.

Both use ``cv2.calibrateHandEye`` (TSAI, PARK, HORAUD, ANDREFF, DANIILIDIS); eye-to-hand
passes the inverted robot poses, which turns the fixed-camera problem into the same AX=XB.
The extrinsic file (what the stack publishes as a static transform)::

    parent_frame: fr3_link0
    child_frame: front_camera_optical_frame
    translation_xyz_m: [x, y, z]
    quaternion_xyzw: [x, y, z, w]
    # plus informative keys: mode, method, residuals, created_utc
"""
from __future__ import annotations

import datetime as _dt
import itertools
import logging
import pathlib
from dataclasses import dataclass, field

import cv2
import numpy as np
import yaml

from robot_stack.types.errors import CalibrationError, CalibrationFileError, DegenerateMotionError, TooFewViewsError
from robot_stack.types.files import read_yaml_mapping, write_text_with_backup
from robot_stack.types.geometry import (
    R_to_rotvec,
    T_from_xyz_quat,
    T_to_xyz_quat,
    invert,
    make_T,
    mean_rotation,
    rotation_angle_deg,
    transform_error,
)

log = logging.getLogger(__name__)

METHODS = {
    "TSAI": cv2.CALIB_HAND_EYE_TSAI,
    "PARK": cv2.CALIB_HAND_EYE_PARK,
    "HORAUD": cv2.CALIB_HAND_EYE_HORAUD,
    "ANDREFF": cv2.CALIB_HAND_EYE_ANDREFF,
    "DANIILIDIS": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
MODES = ("eye_in_hand", "eye_to_hand")


@dataclass(frozen=True)
class HandEyeConfig:
    """Hand-eye calibration settings and the thresholds of the pose-set check."""

    mode: str = "eye_in_hand"
    """eye_in_hand (wrist camera, board fixed) or eye_to_hand (fixed camera, board on the robot)."""
    min_views: int = 8
    """Fewest (robot pose, board pose) pairs to solve (12-20 are better)."""
    min_rotation_spread_deg: float = 20.0
    """Largest rotation between any two EE poses must reach this."""
    min_second_axis_spread_deg: float = 5.0
    """RMS rotation about the second principal rotation axis between poses: rotations about a single axis leave the solution undetermined."""
    min_translation_spread_m: float = 0.03
    """Largest distance between any two EE positions must reach this."""
    max_board_reprojection_px: float = 2.0
    """Pairs whose board pose has a larger RMS reprojection error are rejected (blur, bad detection)."""
    methods: tuple[str, ...] = ("TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS")
    """OpenCV methods to run; their spread is reported."""
    method: str = "auto"
    """Method whose result is written; auto = the one with the smallest residual."""
    max_method_spread_deg: float = 1.0
    """Warn when methods disagree by more than this rotation."""
    max_method_spread_m: float = 0.005
    """Warn when methods disagree by more than this translation."""

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got '{self.mode}'")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"unknown hand-eye methods {unknown}: use some of {sorted(METHODS)}")
        if self.method != "auto" and self.method not in self.methods:
            raise ValueError(f"method '{self.method}' must be 'auto' or one of methods {list(self.methods)}")
        if self.min_views < 3:
            raise ValueError("min_views must be >= 3 (hand-eye needs at least two motions)")


@dataclass
class PoseSetQuality:
    """How well a set of EE poses constrains hand-eye calibration."""

    num_views: int
    max_rotation_deg: float
    second_axis_spread_deg: float
    max_translation_m: float
    problems: list[str] = field(default_factory=list)
    """What is lacking, each with what the operator should do."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        s = (
            f"{self.num_views} views, max rotation {self.max_rotation_deg:.1f} deg, second-axis spread "
            f"{self.second_axis_spread_deg:.1f} deg, max translation {self.max_translation_m * 1000:.0f} mm"
        )
        return s + ("" if self.ok else " | " + "; ".join(self.problems))


def check_pose_set(T_base_ee: list[np.ndarray], cfg: HandEyeConfig | None = None) -> PoseSetQuality:
    """Measure rotation/translation spread of EE poses and list what is missing."""
    cfg = cfg or HandEyeConfig()
    n = len(T_base_ee)
    rotvecs, max_rot, max_trans = [], 0.0, 0.0
    for i, j in itertools.combinations(range(n), 2):
        # Relative motion in the EE frame; its axis is what AX=XB needs to vary.
        A = invert(T_base_ee[i]) @ T_base_ee[j]
        rv = np.degrees(R_to_rotvec(A[:3, :3]))
        rotvecs.append(rv)
        max_rot = max(max_rot, float(np.linalg.norm(rv)))
        max_trans = max(max_trans, float(np.linalg.norm(T_base_ee[i][:3, 3] - T_base_ee[j][:3, 3])))
    second = 0.0
    if rotvecs:
        # Axis-angle vectors are sign-ambiguous only at 180 deg; the SVD of the stack gives the
        # RMS rotation about each principal axis.
        s = np.linalg.svd(np.asarray(rotvecs), compute_uv=False) / np.sqrt(len(rotvecs))
        second = float(s[1]) if len(s) > 1 else 0.0
    q = PoseSetQuality(n, max_rot, second, max_trans)
    if n < cfg.min_views:
        q.problems.append(f"only {n} views, need {cfg.min_views}: record {cfg.min_views - n} more poses")
    if max_rot < cfg.min_rotation_spread_deg:
        q.problems.append(
            f"too little rotation (max {max_rot:.1f} deg < {cfg.min_rotation_spread_deg:.0f}): tilt and turn the "
            "end effector more between poses (keep the board in view)"
        )
    elif second < cfg.min_second_axis_spread_deg:
        q.problems.append(
            f"rotations are about nearly one axis (second-axis spread {second:.1f} deg < "
            f"{cfg.min_second_axis_spread_deg:.0f}): also rotate about a different axis (roll and pitch, not only yaw)"
        )
    if max_trans < cfg.min_translation_spread_m:
        q.problems.append(
            f"too little translation (max {max_trans * 1000:.0f} mm < {cfg.min_translation_spread_m * 1000:.0f}): "
            "move the end effector further between poses"
        )
    return q


def require_good_pose_set(T_base_ee: list[np.ndarray], cfg: HandEyeConfig) -> PoseSetQuality:
    """check_pose_set, raising TooFewViewsError / DegenerateMotionError with the advice."""
    q = check_pose_set(T_base_ee, cfg)
    if q.num_views < cfg.min_views:
        raise TooFewViewsError("hand-eye: " + "; ".join(q.problems))
    if not q.ok:
        raise DegenerateMotionError("hand-eye poses are degenerate: " + "; ".join(q.problems))
    return q


class HandEyeCollector:
    """Guided collection: add pairs one by one and get told what the set still lacks."""

    def __init__(self, cfg: HandEyeConfig | None = None):
        self.cfg = cfg or HandEyeConfig()
        self.T_base_ee: list[np.ndarray] = []
        self.T_cam_board: list[np.ndarray] = []

    def add(self, T_base_ee: np.ndarray, T_cam_board: np.ndarray, board_rms_px: float = 0.0) -> tuple[bool, str]:
        """Add one pair; returns (accepted, message for the operator)."""
        if board_rms_px > self.cfg.max_board_reprojection_px:
            return False, (
                f"rejected: board pose error {board_rms_px:.2f} px > {self.cfg.max_board_reprojection_px} px "
                "(blurred or partly hidden board): hold still and retake"
            )
        for T in self.T_base_ee:
            dr, dt = transform_error(T, T_base_ee)
            if dr < 2.0 and dt < 0.01:
                return False, "rejected: almost the same pose as an earlier view; move the robot somewhere new"
        self.T_base_ee.append(np.asarray(T_base_ee, dtype=np.float64))
        self.T_cam_board.append(np.asarray(T_cam_board, dtype=np.float64))
        return True, "accepted: " + self.quality().summary()

    def quality(self) -> PoseSetQuality:
        return check_pose_set(self.T_base_ee, self.cfg)

    @property
    def ready(self) -> bool:
        return self.quality().ok


@dataclass
class HandEyeResult:
    mode: str
    method: str
    T: np.ndarray
    """T_ee_cam (eye_in_hand) or T_base_cam (eye_to_hand)."""
    per_method: dict[str, np.ndarray]
    residual_rot_deg: dict[str, float]
    """RMS rotation residual of each method (deg): spread of the implied fixed transform over views."""
    residual_trans_m: dict[str, float]
    """RMS translation residual of each method (m)."""
    method_spread_rot_deg: float
    """Largest rotation between the chosen result and any other method's."""
    method_spread_trans_m: float
    """Largest translation between the chosen result and any other method's."""
    quality: PoseSetQuality
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"mode {self.mode}, chosen method {self.method}, pose set: {self.quality.summary()}"]
        for m in self.per_method:
            t, q = T_to_xyz_quat(self.per_method[m])
            lines.append(
                f"  {m:<10} t={np.round(t, 4).tolist()} m q_xyzw={np.round(q, 4).tolist()} residual "
                f"{self.residual_rot_deg[m]:.3f} deg / {self.residual_trans_m[m] * 1000:.2f} mm"
            )
        lines.append(
            f"spread between methods: {self.method_spread_rot_deg:.3f} deg, {self.method_spread_trans_m * 1000:.2f} mm"
        )
        lines += [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def _fixed_chain(mode: str, X: np.ndarray, T_base_ee: list[np.ndarray], T_cam_board: list[np.ndarray]) -> list[np.ndarray]:
    """The transform that must be constant over views if X is right.

    eye_in_hand: T_base_board = T_base_ee @ T_ee_cam @ T_cam_board.
    eye_to_hand: T_ee_board = inv(T_base_ee) @ T_base_cam @ T_cam_board.
    """
    if mode == "eye_in_hand":
        return [A @ X @ B for A, B in zip(T_base_ee, T_cam_board)]
    return [invert(A) @ X @ B for A, B in zip(T_base_ee, T_cam_board)]


def hand_eye_residuals(mode: str, X: np.ndarray, T_base_ee: list[np.ndarray], T_cam_board: list[np.ndarray]):
    """(per-view rotation residual deg, per-view translation residual m) of solution X."""
    chain = _fixed_chain(mode, X, T_base_ee, T_cam_board)
    R_mean = mean_rotation([C[:3, :3] for C in chain])
    t_mean = np.mean([C[:3, 3] for C in chain], axis=0)
    rot = np.array([rotation_angle_deg(R_mean.T @ C[:3, :3]) for C in chain])
    trans = np.array([np.linalg.norm(C[:3, 3] - t_mean) for C in chain])
    return rot, trans


def solve_hand_eye(T_base_ee: list[np.ndarray], T_cam_board: list[np.ndarray], cfg: HandEyeConfig | None = None) -> HandEyeResult:
    """Run the configured OpenCV methods and pick one; raises on too few or degenerate poses."""
    cfg = cfg or HandEyeConfig()
    cfg.validate()
    if len(T_base_ee) != len(T_cam_board):
        raise CalibrationError(f"{len(T_base_ee)} robot poses but {len(T_cam_board)} board poses: they must pair up")
    quality = require_good_pose_set(T_base_ee, cfg)
    if cfg.mode == "eye_in_hand":
        A = T_base_ee  # gripper -> base
    else:
        A = [invert(T) for T in T_base_ee]  # base -> gripper, so the solution is T_base_cam
    R_a = [T[:3, :3] for T in A]
    t_a = [T[:3, 3].reshape(3, 1) for T in A]
    R_b = [T[:3, :3] for T in T_cam_board]
    t_b = [T[:3, 3].reshape(3, 1) for T in T_cam_board]
    per_method, res_r, res_t = {}, {}, {}
    for name in cfg.methods:
        R, t = cv2.calibrateHandEye(R_a, t_a, R_b, t_b, method=METHODS[name])
        X = make_T(R, t.reshape(3))
        if not np.all(np.isfinite(X)):
            log.warning("hand-eye method %s returned non-finite values; skipped", name)
            continue
        per_method[name] = X
        rr, rt = hand_eye_residuals(cfg.mode, X, T_base_ee, T_cam_board)
        res_r[name] = float(np.sqrt(np.mean(rr**2)))
        res_t[name] = float(np.sqrt(np.mean(rt**2)))
    if not per_method:
        raise DegenerateMotionError("every hand-eye method failed: record more varied poses")
    if cfg.method == "auto":
        # Rank by translation residual in mm plus rotation residual in deg: both matter.
        method = min(per_method, key=lambda m: res_t[m] * 1000 + res_r[m])
    else:
        if cfg.method not in per_method:
            raise DegenerateMotionError(f"hand-eye method {cfg.method} failed: choose another or record more poses")
        method = cfg.method
    X = per_method[method]
    spread_r = max(transform_error(X, Y)[0] for Y in per_method.values())
    spread_t = max(transform_error(X, Y)[1] for Y in per_method.values())
    warnings = []
    if spread_r > cfg.max_method_spread_deg or spread_t > cfg.max_method_spread_m:
        warnings.append(
            f"methods disagree by {spread_r:.2f} deg / {spread_t * 1000:.1f} mm (limits {cfg.max_method_spread_deg} deg / "
            f"{cfg.max_method_spread_m * 1000:.0f} mm): add views with more rotation and check the intrinsics"
        )
    return HandEyeResult(cfg.mode, method, X, per_method, res_r, res_t, spread_r, spread_t, quality, warnings)


# ---------------------------------------------------------------------------------------
# Extrinsic file


@dataclass
class Extrinsic:
    """A calibrated static transform: pose of ``child_frame`` in ``parent_frame`` (T_parent_child)."""

    parent_frame: str
    child_frame: str
    T_parent_child: np.ndarray
    info: dict = field(default_factory=dict)
    """Informative keys written along (mode, method, residuals, date); not needed to load."""

    def as_static_transform(self) -> tuple[str, str, np.ndarray]:
        """(parent, child, 4x4 T_parent_child) for a static-transform publisher."""
        return self.parent_frame, self.child_frame, self.T_parent_child.copy()


def extrinsic_from_result(result: HandEyeResult, parent_frame: str, child_frame: str) -> Extrinsic:
    """Wrap a hand-eye result: parent is the EE frame (eye_in_hand) or base frame (eye_to_hand)."""
    info = {
        "mode": result.mode,
        "method": result.method,
        "num_views": result.quality.num_views,
        "residual_rotation_deg": round(result.residual_rot_deg[result.method], 4),
        "residual_translation_mm": round(result.residual_trans_m[result.method] * 1000, 3),
        "method_spread_rotation_deg": round(result.method_spread_rot_deg, 4),
        "method_spread_translation_mm": round(result.method_spread_trans_m * 1000, 3),
    }
    return Extrinsic(parent_frame, child_frame, result.T.copy(), info)


def static_transform_from_result(result: HandEyeResult, parent_frame: str, child_frame: str) -> tuple[str, str, np.ndarray]:
    """(parent, child, T_parent_child) straight from a hand-eye result."""
    return extrinsic_from_result(result, parent_frame, child_frame).as_static_transform()


def save_extrinsic_yaml(ext: Extrinsic, path: str | pathlib.Path) -> pathlib.Path | None:
    """Write the extrinsic YAML; an existing file is kept as ``.bak-<timestamp>``. Returns the backup."""
    t, q = T_to_xyz_quat(ext.T_parent_child)
    data = {
        "parent_frame": ext.parent_frame,
        "child_frame": ext.child_frame,
        "translation_xyz_m": [float(v) for v in t],
        "quaternion_xyzw": [float(v) for v in q],
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in ext.info.items()},
    }
    return write_text_with_backup(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def load_extrinsic_yaml(path: str | pathlib.Path) -> Extrinsic:
    """Read an extrinsic YAML; CalibrationFileError names a missing or malformed key."""
    data = read_yaml_mapping(path, "extrinsic calibration")
    for key in ("parent_frame", "child_frame"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise CalibrationFileError(f"{path}: '{key}' must be a non-empty frame name")
    if data["parent_frame"] == data["child_frame"]:
        raise CalibrationFileError(f"{path}: parent_frame and child_frame are both '{data['parent_frame']}'")

    def vec(key: str, n: int) -> np.ndarray:
        v = data.get(key)
        try:
            a = np.asarray(v, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise CalibrationFileError(f"{path}: '{key}' must be a list of {n} numbers, got {v!r}") from e
        if a.size != n or not np.all(np.isfinite(a)):
            raise CalibrationFileError(f"{path}: '{key}' must be {n} finite numbers, got {v!r}")
        return a

    t = vec("translation_xyz_m", 3)
    q = vec("quaternion_xyzw", 4)
    if abs(np.linalg.norm(q) - 1.0) > 1e-3:
        raise CalibrationFileError(f"{path}: quaternion_xyzw {q.tolist()} is not unit length (norm {np.linalg.norm(q):.4f})")
    info = {k: v for k, v in data.items() if k not in ("parent_frame", "child_frame", "translation_xyz_m", "quaternion_xyzw")}
    return Extrinsic(data["parent_frame"], data["child_frame"], T_from_xyz_quat(t, q), info)
