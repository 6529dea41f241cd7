"""FR3 kinematics (ROS-free, numpy only): forward kinematics, Jacobian, damped-least-squares IK.

Franka's published Denavit-Hartenberg parameters of the FR3 (Craig's convention; the same
table as the Panda's) and the FR3's joint position limits (Franka's robot specifications). Used to check that a workspace box lies inside
the arm's dexterous workspace (:func:`check_box_dexterity`) and by the safety filter to keep
joint velocities and accelerations within their limits (:func:`jacobian`).

Frames: base = the robot base (link0); the EE is the flange followed by ``ee_offset_m`` along
the flange z axis (0.1034 m: the Franka Hand's TCP, what franky reports as ``O_T_EE`` with the
hand configured in Desk).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# (a_m, d_m, alpha_rad) per joint, then the flange; theta = q_i.
FR3_DH = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
FLANGE_D_M = 0.107
HAND_TCP_OFFSET_M = 0.1034
"""Flange -> Franka Hand TCP along the flange z axis, m."""
FR3_Q_LIMITS_RAD = (
    (-2.7437, 2.7437), (-1.7837, 1.7837), (-2.9007, 2.9007), (-3.0421, -0.1518),
    (-2.8065, 2.8065), (0.5445, 4.5169), (-3.0159, 3.0159),
)
"""FR3 joint position limits, rad (Franka's FR3 robot specifications; the fr3.urdf of
franka_description that the robot serves allows up to 6 mrad more)."""
FR3_READY_Q_RAD = (0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4)
SHOULDER_XYZ_M = (0.0, 0.0, 0.333)


def _dh(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = math.cos(alpha), math.sin(alpha), math.cos(theta), math.sin(theta)
    return np.array([[ct, -st, 0.0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca],
                     [0.0, 0.0, 0.0, 1.0]])


def forward_frames(q, ee_offset_m: float = HAND_TCP_OFFSET_M) -> list[np.ndarray]:
    """4x4 poses in the base frame of joint frames 1..7 and the EE (8 matrices)."""
    T = np.eye(4)
    frames = []
    for (a, d, alpha), qi in zip(FR3_DH, q):
        T = T @ _dh(a, d, alpha, float(qi))
        frames.append(T)
    # Flange, the EE offset along its z axis, and the Franka Hand's -45 deg about it (the EE frame
    # franky reports with the hand configured: at the ready pose it points down, x forward).
    frames.append(T @ _dh(0.0, FLANGE_D_M + ee_offset_m, 0.0, -math.pi / 4))
    return frames


def forward(q, ee_offset_m: float = HAND_TCP_OFFSET_M) -> np.ndarray:
    """4x4 EE pose in the base frame."""
    return forward_frames(q, ee_offset_m)[-1]


_JACOBIAN_CACHE: dict = {}


def jacobian(q, ee_offset_m: float = HAND_TCP_OFFSET_M) -> np.ndarray:
    """6x7 geometric Jacobian of the EE point: rows v (m/s) then omega (rad/s), base frame.
    The last few results are cached (a control tick asks for the same joint angles twice)."""
    q = np.asarray(q, dtype=np.float64)
    key = (q.tobytes(), ee_offset_m)
    J = _JACOBIAN_CACHE.get(key)
    if J is not None:
        return J.copy()
    frames = forward_frames(q, ee_offset_m)
    F = np.stack(frames[:7])
    z, o = F[:, :3, 2], F[:, :3, 3]
    J = np.empty((6, 7))
    J[:3] = np.cross(z, frames[-1][:3, 3] - o).T
    J[3:] = z.T
    if len(_JACOBIAN_CACHE) > 8:
        _JACOBIAN_CACHE.clear()
    _JACOBIAN_CACHE[key] = J
    return J.copy()


def damped_pinv(J: np.ndarray, damping: float = 1e-3) -> np.ndarray:
    """Damped least-squares inverse J^T (J J^T + l^2 I)^-1 (what a resolved-rate controller uses)."""
    return J.T @ np.linalg.inv(J @ J.T + damping**2 * np.eye(J.shape[0]))


def _rotvec(R: np.ndarray) -> np.ndarray:
    cos = float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    angle = math.acos(cos)
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    n = float(np.linalg.norm(axis))
    if n < 1e-9:
        w, v = np.linalg.eigh((R + np.eye(3)) / 2.0)
        return v[:, int(np.argmax(w))] * angle
    return axis / n * angle


def inverse(T_target: np.ndarray, q0=FR3_READY_Q_RAD, ee_offset_m: float = HAND_TCP_OFFSET_M,
            iterations: int = 200, tolerance: float = 1e-5) -> tuple[np.ndarray, bool]:
    """Joint angles reaching ``T_target`` from ``q0`` (damped least squares with a null-space pull
    towards ``q0``, as a Cartesian controller started there would end up); (q, converged)."""
    q = np.array(q0, dtype=np.float64)
    q_ref = q.copy()
    lo, hi = np.array(FR3_Q_LIMITS_RAD).T
    for _ in range(iterations):
        T = forward(q, ee_offset_m)
        e = np.concatenate([T_target[:3, 3] - T[:3, 3], _rotvec(T_target[:3, :3] @ T[:3, :3].T)])
        if np.linalg.norm(e[:3]) < tolerance and np.linalg.norm(e[3:]) < 10 * tolerance:
            return q, True
        J = jacobian(q, ee_offset_m)
        Jp = damped_pinv(J, 0.01)
        # The null-space pull fades out as the pose converges (damping leaks it into the task).
        null = min(1.0, 10.0 * float(np.linalg.norm(e)))
        dq = Jp @ e + null * (np.eye(7) - Jp @ J) @ (0.2 * (q_ref - q))
        step = float(np.max(np.abs(dq)))
        if step > 0.2:
            dq *= 0.2 / step
        q = np.clip(q + dq, lo, hi)
    return q, False


@dataclass(frozen=True)
class Dexterity:
    """How well the arm reaches one pose."""

    reachable: bool
    min_joint_margin_rad: float
    """Smallest distance of any joint from its position limit, rad."""
    min_singular_value: float
    """Smallest singular value of the 6x7 Jacobian (0 at a singularity)."""
    q_rad: np.ndarray


def dexterity(T_target: np.ndarray, ee_offset_m: float = HAND_TCP_OFFSET_M) -> Dexterity:
    q, ok = inverse(T_target, ee_offset_m=ee_offset_m)
    lo, hi = np.array(FR3_Q_LIMITS_RAD).T
    margin = float(np.min(np.minimum(q - lo, hi - q)))
    sv = float(np.linalg.svd(jacobian(q, ee_offset_m), compute_uv=False)[-1])
    return Dexterity(ok, margin, sv, q)


MIN_JOINT_MARGIN_RAD = 0.25
"""A pose counts as dexterous only with every joint at least this far from its limit, rad."""
MIN_SINGULAR_VALUE = 0.08
"""...and the Jacobian's smallest singular value at least this (0 at a singularity)."""


def box_dexterity_problems(min_xyz_m, max_xyz_m, quat_xyzw=(1.0, 0.0, 0.0, 0.0),
                           ee_offset_m: float = HAND_TCP_OFFSET_M, points_per_axis: int = 3,
                           min_joint_margin_rad: float = MIN_JOINT_MARGIN_RAD,
                           min_singular_value: float = MIN_SINGULAR_VALUE, tilt_rad: float = 0.0) -> list[str]:
    """Where a box leaves the FR3's dexterous workspace at the task orientation: one line per grid
    point (corners, edge and face centres, the middle) that is unreachable from the ready pose,
    closer than ``min_joint_margin_rad`` to a joint limit or nearly singular. With ``tilt_rad``,
    also every grid point tilted that far about the base x and y axes (either way) must be
    reachable (the orientation limits allow that tilt). Empty: all good."""
    lo, hi = np.asarray(min_xyz_m, dtype=np.float64), np.asarray(max_xyz_m, dtype=np.float64)
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    problems = []
    axes = [np.linspace(lo[i], hi[i], points_per_axis) for i in range(3)]
    for p in np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, p
        d = dexterity(T, ee_offset_m)
        where = np.round(p, 3).tolist()
        if not d.reachable:
            problems.append(f"{where}: not reachable at the task orientation")
        elif d.min_joint_margin_rad < min_joint_margin_rad:
            lo_q, hi_q = np.array(FR3_Q_LIMITS_RAD).T
            j = int(np.argmin(np.minimum(d.q_rad - lo_q, hi_q - d.q_rad)))
            problems.append(f"{where}: joint {j + 1} only {d.min_joint_margin_rad:.2f} rad from its limit "
                            f"(< {min_joint_margin_rad})")
        elif d.min_singular_value < min_singular_value:
            problems.append(f"{where}: near a singularity (smallest singular value {d.min_singular_value:.3f} "
                            f"< {min_singular_value})")
        for axis in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)) if tilt_rad > 0 else ():
            Tt = T.copy()
            Tt[:3, :3] = _rotvec_matrix(np.array(axis, dtype=np.float64) * tilt_rad) @ R
            dt = dexterity(Tt, ee_offset_m)
            if not dt.reachable or dt.min_singular_value < 0.5 * min_singular_value:
                problems.append(f"{where} tilted {tilt_rad} rad about {axis}: "
                                + ("not reachable" if not dt.reachable else
                                   f"near a singularity ({dt.min_singular_value:.3f})"))
    return problems


def _rotvec_matrix(rv: np.ndarray) -> np.ndarray:
    th = float(np.linalg.norm(rv))
    if th < 1e-12:
        return np.eye(3)
    k = rv / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * (K @ K)
