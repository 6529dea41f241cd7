"""Camera intrinsics as in sensor_msgs/CameraInfo, and the CameraInfo YAML file format.

The YAML is the ROS ``camera_calibration_parsers`` format (what ``camera_calibration`` writes
and camera drivers load)::

    image_width: 640
    image_height: 480
    camera_name: front
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    projection_matrix: {rows: 3, cols: 4, data: [...]}
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import numpy as np
import yaml

from robot_stack.types.errors import CalibrationFileError
from robot_stack.types.files import read_yaml_mapping, write_text_with_backup


@dataclass
class CameraIntrinsics:
    """Pinhole intrinsics plus distortion, as in sensor_msgs/CameraInfo."""

    width: int
    height: int
    K: np.ndarray
    """3x3 camera matrix (pixels)."""
    dist: np.ndarray
    """Distortion coefficients (plumb_bob: k1, k2, p1, p2, k3)."""
    camera_name: str = "camera"
    distortion_model: str = "plumb_bob"
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    """Rectification matrix (identity for a monocular camera)."""
    P: np.ndarray | None = None
    """3x4 projection matrix of the rectified image; None -> [K | 0]."""

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        self.dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        self.R = np.asarray(self.R, dtype=np.float64).reshape(3, 3)
        if self.P is None:
            self.P = np.hstack([self.K, np.zeros((3, 1))])
        self.P = np.asarray(self.P, dtype=np.float64).reshape(3, 4)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def to_camera_info_dict(self) -> dict:
        def mat(a: np.ndarray) -> dict:
            a = np.atleast_2d(a)
            return {"rows": int(a.shape[0]), "cols": int(a.shape[1]), "data": [float(v) for v in a.ravel()]}

        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": self.camera_name,
            "camera_matrix": mat(self.K),
            "distortion_model": self.distortion_model,
            "distortion_coefficients": mat(self.dist.reshape(1, -1)),
            "rectification_matrix": mat(self.R),
            "projection_matrix": mat(self.P),
        }


def save_camera_info_yaml(intr: CameraIntrinsics, path: str | pathlib.Path, comment: str = "") -> pathlib.Path | None:
    """Write ``intr`` as CameraInfo YAML; an existing file is kept as ``.bak-<timestamp>``.

    Returns the backup path (None when there was no previous file). ``comment`` lines are
    written as YAML comments at the top (e.g. the reprojection error).
    """
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    text = header + yaml.safe_dump(intr.to_camera_info_dict(), sort_keys=False, default_flow_style=None)
    return write_text_with_backup(path, text)


def load_camera_info_yaml(path: str | pathlib.Path) -> CameraIntrinsics:
    """Read CameraInfo YAML (camera_calibration_parsers format); CalibrationFileError on bad content."""
    data = read_yaml_mapping(path, "camera calibration")

    def mat(key: str, rows: int, cols: int | None) -> np.ndarray:
        m = data.get(key)
        if not isinstance(m, dict) or "data" not in m:
            raise CalibrationFileError(f"{path}: '{key}' missing or not a {{rows, cols, data}} mapping")
        a = np.asarray(m["data"], dtype=np.float64)
        if cols is not None and a.size != rows * cols:
            raise CalibrationFileError(f"{path}: '{key}' must have {rows * cols} values, has {a.size}")
        if not np.all(np.isfinite(a)):
            raise CalibrationFileError(f"{path}: '{key}' has non-finite values")
        return a.reshape(rows, -1) if cols is not None else a

    for key in ("image_width", "image_height"):
        if not isinstance(data.get(key), int) or data[key] <= 0:
            raise CalibrationFileError(f"{path}: '{key}' must be a positive integer, got {data.get(key)!r}")
    K = mat("camera_matrix", 3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationFileError(f"{path}: camera_matrix has non-positive focal length")
    intr = CameraIntrinsics(
        width=data["image_width"],
        height=data["image_height"],
        K=K,
        dist=mat("distortion_coefficients", 1, None).reshape(-1),
        camera_name=str(data.get("camera_name", "camera")),
        distortion_model=str(data.get("distortion_model", "plumb_bob")),
        R=mat("rectification_matrix", 3, 3) if "rectification_matrix" in data else np.eye(3),
        P=mat("projection_matrix", 3, 4) if "projection_matrix" in data else None,
    )
    return intr


def intrinsics_from_realsense(rs_intrinsics, camera_name: str = "camera") -> CameraIntrinsics:
    """Convert a ``pyrealsense2.intrinsics`` (fx, fy, ppx, ppy, width, height, model, coeffs).

    RealSense colour streams report Brown-Conrady (or inverse) coefficients in OpenCV order
    k1, k2, p1, p2, k3, which is ROS's plumb_bob.
    """
    K = np.array([[rs_intrinsics.fx, 0, rs_intrinsics.ppx], [0, rs_intrinsics.fy, rs_intrinsics.ppy], [0, 0, 1.0]])
    coeffs = np.asarray(list(rs_intrinsics.coeffs)[:5], dtype=np.float64)
    model = str(getattr(rs_intrinsics, "model", "")).lower()
    if "none" in model:
        coeffs = np.zeros(5)
    return CameraIntrinsics(int(rs_intrinsics.width), int(rs_intrinsics.height), K, coeffs, camera_name)
