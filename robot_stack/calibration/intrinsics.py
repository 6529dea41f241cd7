"""Camera intrinsics calibration: view selection, ChArUco calibration, factory comparison.

The intrinsics type and its CameraInfo YAML file live in :mod:`robot_stack.types.intrinsics`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from robot_stack.types.errors import CalibrationFileError, TooFewViewsError
from robot_stack.types.intrinsics import CameraIntrinsics, intrinsics_from_realsense

from .board import BoardDetection, estimate_board_pose

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# View selection


@dataclass(frozen=True)
class ViewSelectionConfig:
    """Which collected views are kept for intrinsics calibration."""

    min_sharpness: float = 30.0
    """Views whose variance of the Laplacian is below this are rejected as blurred."""
    duplicate_max_corner_shift_px: float = 12.0
    """A view whose common corners moved less than this (mean, px) from a kept view is a duplicate."""
    duplicate_min_common_fraction: float = 0.8
    """... and only when at least this fraction of its corners are also in that kept view."""
    coverage_grid: tuple[int, int] = (8, 6)
    """Image cells (cols, rows) used to report how much of the image the corners cover."""


@dataclass
class ViewDecision:
    accepted: bool
    reason: str


class ViewSelector:
    """Accepts or rejects views one at a time (blur, duplicates) and tracks image coverage."""

    def __init__(self, cfg: ViewSelectionConfig | None = None):
        self.cfg = cfg or ViewSelectionConfig()
        self.views: list[BoardDetection] = []
        self._covered: np.ndarray | None = None

    def offer(self, det: BoardDetection) -> ViewDecision:
        cfg = self.cfg
        if np.isfinite(det.sharpness) and det.sharpness < cfg.min_sharpness:
            return ViewDecision(False, f"blurred (sharpness {det.sharpness:.0f} < {cfg.min_sharpness:.0f}): hold still")
        for i, kept in enumerate(self.views):
            common, a, b = np.intersect1d(det.ids, kept.ids, return_indices=True)
            if len(common) < cfg.duplicate_min_common_fraction * len(det.ids):
                continue
            shift = float(np.mean(np.linalg.norm(det.image_points[a] - kept.image_points[b], axis=1)))
            if shift < cfg.duplicate_max_corner_shift_px:
                return ViewDecision(False, f"duplicate of view {i} (corners moved {shift:.1f} px): move or tilt the board")
        self.views.append(det)
        self._mark_coverage(det)
        return ViewDecision(True, f"accepted ({len(det)} corners, coverage {self.coverage():.0%})")

    def _mark_coverage(self, det: BoardDetection) -> None:
        gx, gy = self.cfg.coverage_grid
        if self._covered is None:
            self._covered = np.zeros((gy, gx), dtype=bool)
        w, h = det.image_size
        cols = np.clip((det.image_points[:, 0] / w * gx).astype(int), 0, gx - 1)
        rows = np.clip((det.image_points[:, 1] / h * gy).astype(int), 0, gy - 1)
        self._covered[rows, cols] = True

    def coverage(self) -> float:
        """Fraction of image cells that contain at least one corner of a kept view."""
        return 0.0 if self._covered is None else float(self._covered.mean())


# ---------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class IntrinsicsConfig:
    """Intrinsics calibration settings."""

    min_views: int = 10
    """Fewest accepted views to calibrate (15-30 varied views are better)."""
    fix_k3: bool = True
    """Keep k3 at 0 (recommended for normal lenses; k3 overfits with few views)."""
    zero_tangential: bool = False
    """Keep p1, p2 at 0."""
    max_view_error_px: float = 1.0
    """Views with a larger RMS reprojection error are dropped and the calibration re-run once."""
    camera_name: str = "camera"
    """camera_name written to the YAML."""


@dataclass
class IntrinsicsResult:
    intrinsics: CameraIntrinsics
    rms_px: float
    """Overall RMS reprojection error (px) reported by OpenCV."""
    per_view_rms_px: list[float]
    """RMS reprojection error of each used view (px), same order as ``views``."""
    views: list[BoardDetection]
    dropped: list[tuple[BoardDetection, float]] = field(default_factory=list)
    """Views removed as outliers, with their RMS error (px)."""
    T_cam_board: list[np.ndarray] = field(default_factory=list)
    """Board pose in each used view."""

    @property
    def mean_view_error_px(self) -> float:
        return float(np.mean(self.per_view_rms_px))

    def summary(self) -> str:
        i = self.intrinsics
        lines = [
            f"views used: {len(self.views)} (dropped as outliers: {len(self.dropped)})",
            f"fx={i.fx:.2f} fy={i.fy:.2f} cx={i.cx:.2f} cy={i.cy:.2f} px, dist={np.round(i.dist, 5).tolist()}",
            f"reprojection error: RMS {self.rms_px:.3f} px, mean per view {self.mean_view_error_px:.3f} px, "
            f"worst view {max(self.per_view_rms_px):.3f} px",
        ]
        return "\n".join(lines)


def _calibrate_once(views: list[BoardDetection], cfg: IntrinsicsConfig):
    size = views[0].image_size
    obj = [v.object_points.astype(np.float32).reshape(-1, 1, 3) for v in views]
    img = [v.image_points.astype(np.float32).reshape(-1, 1, 2) for v in views]
    flags = 0
    if cfg.fix_k3:
        flags |= cv2.CALIB_FIX_K3
    if cfg.zero_tangential:
        flags |= cv2.CALIB_ZERO_TANGENT_DIST
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    rms, K, dist, rvecs, tvecs, _, _, per_view = cv2.calibrateCameraExtended(
        obj, img, size, None, None, flags=flags, criteria=criteria
    )
    return float(rms), K, dist.reshape(-1), rvecs, tvecs, per_view.reshape(-1).tolist()


def calibrate_intrinsics(views: list[BoardDetection], cfg: IntrinsicsConfig | None = None) -> IntrinsicsResult:
    """Calibrate from ChArUco detections. TooFewViewsError when fewer than ``min_views``."""
    cfg = cfg or IntrinsicsConfig()
    if len(views) < cfg.min_views:
        raise TooFewViewsError(
            f"only {len(views)} usable board views, need at least {cfg.min_views}: collect more views with the board "
            "at different distances, tilts (up to ~45 deg) and positions covering the whole image"
        )
    sizes = {v.image_size for v in views}
    if len(sizes) != 1:
        raise TooFewViewsError(f"views have different image sizes {sorted(sizes)}: calibrate one resolution at a time")
    rms, K, dist, rvecs, tvecs, per_view = _calibrate_once(views, cfg)
    dropped: list[tuple[BoardDetection, float]] = []
    bad = [i for i, e in enumerate(per_view) if e > cfg.max_view_error_px]
    if bad and len(views) - len(bad) >= cfg.min_views:
        dropped = [(views[i], per_view[i]) for i in bad]
        views = [v for i, v in enumerate(views) if i not in bad]
        log.info("dropping %d outlier views (RMS > %.2f px) and recalibrating", len(bad), cfg.max_view_error_px)
        rms, K, dist, rvecs, tvecs, per_view = _calibrate_once(views, cfg)
    w, h = views[0].image_size
    newK, _ = cv2.getOptimalNewCameraMatrix(K, dist, (w, h), 0.0)
    intr = CameraIntrinsics(
        width=w, height=h, K=K, dist=dist, camera_name=cfg.camera_name, P=np.hstack([newK, np.zeros((3, 1))])
    )
    poses = []
    for rv, tv in zip(rvecs, tvecs):
        R, _ = cv2.Rodrigues(rv)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, tv.reshape(3)
        poses.append(T)
    return IntrinsicsResult(intr, rms, per_view, list(views), dropped, poses)


def reprojection_errors(intr: CameraIntrinsics, views: list[BoardDetection]) -> list[float]:
    """Per-view RMS error (px) after fitting only the board pose with fixed ``intr``.

    Used on held-out views to judge intrinsics: the pose absorbs nothing but the board's
    placement, so lower error means better K and distortion.
    """
    return [estimate_board_pose(v, intr.K, intr.dist)[1] for v in views]


@dataclass
class IntrinsicsComparison:
    calibrated_error_px: float
    """Mean held-out RMS reprojection error with the new calibration."""
    reference_error_px: float
    """Same with the reference (e.g. RealSense factory) intrinsics."""
    num_views: int
    calibrated_is_better: bool
    message: str


def compare_intrinsics(
    calibrated: CameraIntrinsics,
    reference: CameraIntrinsics,
    held_out_views: list[BoardDetection],
    min_improvement_px: float = 0.05,
) -> IntrinsicsComparison:
    """Say whether ``calibrated`` beats ``reference`` (e.g. factory) on views not used to calibrate.

    The calibration wins only if its mean held-out error is lower by more than
    ``min_improvement_px``; otherwise keep the reference (factory values are the default).
    """
    if not held_out_views:
        raise TooFewViewsError("no held-out views to compare on: keep a few detected views out of the calibration")
    if (calibrated.width, calibrated.height) != (reference.width, reference.height):
        raise CalibrationFileError(
            f"cannot compare intrinsics of different resolutions: {calibrated.width}x{calibrated.height} vs "
            f"{reference.width}x{reference.height}"
        )
    e_cal = float(np.mean(reprojection_errors(calibrated, held_out_views)))
    e_ref = float(np.mean(reprojection_errors(reference, held_out_views)))
    better = e_cal < e_ref - min_improvement_px
    verdict = "use the new calibration" if better else "keep the reference (factory) intrinsics"
    msg = (
        f"held-out reprojection error over {len(held_out_views)} views: calibrated {e_cal:.3f} px, "
        f"reference {e_ref:.3f} px -> {verdict}"
    )
    return IntrinsicsComparison(e_cal, e_ref, len(held_out_views), better, msg)


def realsense_factory_intrinsics(width: int, height: int, serial: str | None = None,
                                 camera_name: str = "camera", fps: int = 30) -> CameraIntrinsics:
    """Factory colour intrinsics of a connected RealSense at ``width`` x ``height``.

    Starts the device's pipeline briefly to read the stream profile. Raises
    CalibrationFileError when pyrealsense2 or a device is missing.
    """
    try:
        import pyrealsense2 as rs  # optional: only this function needs the RealSense SDK
    except ImportError as e:
        raise CalibrationFileError(f"pyrealsense2 is not importable ({e}): install it or pass --reference YAML") from e
    pipeline = rs.pipeline()
    config = rs.config()
    if serial:
        config.enable_device(serial)
    config.enable_stream(rs.stream.color, width, height, rs.format.bgr8, fps)
    try:
        profile = pipeline.start(config)
    except RuntimeError as e:
        raise CalibrationFileError(f"no RealSense colour stream {width}x{height} available ({e}): connect the camera") from e
    try:
        stream = profile.get_stream(rs.stream.color).as_video_stream_profile()
        return intrinsics_from_realsense(stream.get_intrinsics(), camera_name)
    finally:
        pipeline.stop()
