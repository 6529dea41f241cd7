"""Small rigid-transform helpers (4x4 homogeneous matrices, quaternions in x, y, z, w order).

Naming: ``T_a_b`` maps points expressed in frame ``b`` into frame ``a``
(``p_a = T_a_b @ p_b``); equivalently it is the pose of ``b`` in ``a``.
"""
from __future__ import annotations

import numpy as np


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
    v = np.asarray(rotvec, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(v))
    if theta < 1e-12:
        return np.eye(3)
    k = v / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * (K @ K)


def R_to_rotvec(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector (rad) of a rotation matrix (via the quaternion: stable near pi)."""
    q = R_to_quat_xyzw(R)
    xyz, w = q[:3], q[3]
    s = float(np.linalg.norm(xyz))
    if s < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(s, w)
    return xyz / s * angle


def rotation_angle_deg(R: np.ndarray) -> float:
    """Rotation angle of ``R`` in degrees, in [0, 180]."""
    c = (np.trace(R) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def R_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        w = 0.25 * s
        x = (R[2, 1] - R[1, 2]) / s
        y = (R[0, 2] - R[2, 0]) / s
        z = (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        w = (R[2, 1] - R[1, 2]) / s
        x = 0.25 * s
        y = (R[0, 1] + R[1, 0]) / s
        z = (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] > R[2, 2]:
        s = np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        w = (R[0, 2] - R[2, 0]) / s
        x = (R[0, 1] + R[1, 0]) / s
        y = 0.25 * s
        z = (R[1, 2] + R[2, 1]) / s
    else:
        s = np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        w = (R[1, 0] - R[0, 1]) / s
        x = (R[0, 2] + R[2, 0]) / s
        y = (R[1, 2] + R[2, 1]) / s
        z = 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quat_xyzw_to_R(q) -> np.ndarray:
    """Rotation matrix of a unit quaternion (x, y, z, w); the input is normalized first."""
    x, y, z, w = np.asarray(q, dtype=np.float64).reshape(4) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def T_from_xyz_quat(xyz, quat_xyzw) -> np.ndarray:
    """4x4 transform from a translation (m) and a quaternion (x, y, z, w)."""
    return make_T(quat_xyzw_to_R(quat_xyzw), xyz)


def T_to_xyz_quat(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(translation m, quaternion x, y, z, w) of a 4x4 transform."""
    return T[:3, 3].copy(), R_to_quat_xyzw(T[:3, :3])


def transform_error(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(rotation difference in degrees, translation difference in m) between two transforms."""
    dR = T_a[:3, :3].T @ T_b[:3, :3]
    return rotation_angle_deg(dR), float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3]))


def mean_rotation(Rs) -> np.ndarray:
    """Chordal L2 mean of rotation matrices (projection of their average onto SO(3))."""
    M = np.sum(np.asarray(Rs, dtype=np.float64), axis=0)
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt
