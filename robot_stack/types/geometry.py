"""Rotations and rigid transforms (4x4 homogeneous matrices), through scipy's ``Rotation``.

Naming: ``T_a_b`` maps points expressed in frame ``b`` into frame ``a``
(``p_a = T_a_b @ p_b``); equivalently it is the pose of ``b`` in ``a``. Quaternions are in
``(x, y, z, w)`` order (scipy's and ROS's); those returned have ``w >= 0``. Rotation vectors
(axis times angle) are in rad.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def make_T(R: np.ndarray, t) -> np.ndarray:
    """4x4 transform from a 3x3 rotation and a translation (m)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (no general matrix inverse, so it stays orthonormal)."""
    R = T[:3, :3]
    return make_T(R.T, -R.T @ T[:3, 3])


def rotvec_to_R(rotvec) -> np.ndarray:
    """Rotation matrix from an axis-angle vector (rad)."""
    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64).reshape(3)).as_matrix()


def R_to_rotvec(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector (rad, angle in [0, pi]) of a rotation matrix."""
    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_rotvec()


def rotation_angle_deg(R: np.ndarray) -> float:
    """Rotation angle of ``R`` in degrees, in [0, 180].

    From the trace, not ``Rotation.from_matrix``: residual checks pass products that are not
    proper rotations (e.g. a wrong hand-eye solution), which scipy refuses."""
    c = (np.trace(R) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def rotation_error_rotvec(R_target, R_current) -> np.ndarray:
    """Rotation vector (rad, base frame) that turns ``R_current`` into ``R_target``."""
    return R_to_rotvec(np.asarray(R_target, dtype=np.float64) @ np.asarray(R_current, dtype=np.float64).T)


def R_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a rotation matrix."""
    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat(canonical=True)


def quat_xyzw_to_R(q) -> np.ndarray:
    """Rotation matrix of a quaternion (x, y, z, w); the input is normalized first."""
    return Rotation.from_quat(np.asarray(q, dtype=np.float64).reshape(4)).as_matrix()


def T_from_xyz_quat(xyz, quat_xyzw) -> np.ndarray:
    """4x4 transform from a translation (m) and a quaternion (x, y, z, w)."""
    return make_T(quat_xyzw_to_R(quat_xyzw), xyz)


def T_to_xyz_quat(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(translation m, quaternion x, y, z, w) of a 4x4 transform."""
    return np.array(T[:3, 3], dtype=np.float64), R_to_quat_xyzw(T[:3, :3])


def transform_error(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(rotation difference in degrees, translation difference in m) between two transforms."""
    dR = T_a[:3, :3].T @ T_b[:3, :3]
    return rotation_angle_deg(dR), float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))


def mean_rotation(Rs) -> np.ndarray:
    """Chordal L2 mean of rotation matrices: the projection of their average onto SO(3)
    (an SVD; scipy's ``Rotation.mean`` is the quaternion-chordal mean, a different estimator)."""
    M = np.sum(np.asarray(Rs, dtype=np.float64), axis=0)
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


__all__ = [
    "R_to_quat_xyzw", "R_to_rotvec", "T_from_xyz_quat", "T_to_xyz_quat", "invert", "make_T", "mean_rotation",
    "quat_xyzw_to_R", "rotation_angle_deg", "rotation_error_rotvec", "rotvec_to_R", "transform_error",
]
