"""Accuracy check on synthetic data with known truth (``python -m robot_stack.calibration selftest``).

Renders ChArUco views from a known camera (OpenCV warp with lens distortion, sensor blur and
noise; optionally MuJoCo), calibrates, and prints the recovered focal / principal point error
and the hand-eye rotation / translation error. Intrinsics used for hand-eye are the calibrated
ones, not the truth, and robot poses get repeatability noise, as on a real setup.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from robot_stack.types.geometry import make_T, rotvec_to_R, transform_error

from .board import BoardConfig, BoardDetector, estimate_board_pose
from .handeye import HandEyeConfig, solve_hand_eye
from .intrinsics import calibrate_intrinsics
from .synthetic import BoardRenderer, SyntheticCamera, hand_eye_scene, sample_views


@dataclass(frozen=True)
class SelfTestConfig:
    """Synthetic data settings."""

    views: int = 16
    """Board views per calibration."""
    noise_std: float = 3.0
    """Sensor noise, grey levels (0-255)."""
    blur_sigma_px: float = 0.7
    """Gaussian optical blur, px."""
    robot_noise_m: float = 0.0002
    """Robot EE position noise (std, m) in hand-eye data."""
    robot_noise_deg: float = 0.02
    """Robot EE orientation noise (std, deg) in hand-eye data."""
    trials: int = 5
    """Independent runs (seeds)."""


CAMERA = SyntheticCamera(fx=605.0, fy=603.0, cx=318.3, cy=243.7, dist=(-0.11, 0.06, 0.0008, -0.0006, 0.0))
T_EE_CAM = make_T(rotvec_to_R([0.08, -0.15, 1.52]), [0.045, -0.032, 0.055])
T_BASE_BOARD = make_T(rotvec_to_R([np.pi, 0, 0.2]), [0.5, -0.05, 0.01])
T_BASE_CAM = make_T(rotvec_to_R([2.1, 0.4, -0.3]), [1.05, 0.25, 0.62])
T_EE_BOARD = make_T(rotvec_to_R([0, 0, 0.4]), [0.01, -0.06, 0.09])


def run_synthetic(cfg: SelfTestConfig, seed: int, board: BoardConfig | None = None) -> dict[str, float]:
    board = board or BoardConfig()
    rng = np.random.default_rng(seed)
    renderer = BoardRenderer(board, CAMERA)
    detector = BoardDetector(board)

    def detect(Ts):
        dets = [detector.detect(renderer.render(T, rng, cfg.noise_std, cfg.blur_sigma_px)) for T in Ts]
        return [d for d in dets if d is not None]

    views = detect(sample_views(board, CAMERA, cfg.views, rng))
    intr = calibrate_intrinsics(views).intrinsics
    out = {
        "fx_err_pct": abs(intr.fx - CAMERA.fx) / CAMERA.fx * 100,
        "fy_err_pct": abs(intr.fy - CAMERA.fy) / CAMERA.fy * 100,
        "cx_err_px": abs(intr.cx - CAMERA.cx),
        "cy_err_px": abs(intr.cy - CAMERA.cy),
    }
    for mode, X, F in (("eye_in_hand", T_EE_CAM, T_BASE_BOARD), ("eye_to_hand", T_BASE_CAM, T_EE_BOARD)):
        T_base_ee, T_cam_board = hand_eye_scene(board, CAMERA, cfg.views, rng, mode, X, F)
        A, B = [], []
        for T_be, T_cb in zip(T_base_ee, T_cam_board):
            det = detector.detect(renderer.render(T_cb, rng, cfg.noise_std, cfg.blur_sigma_px))
            if det is None:
                continue
            noise = make_T(rotvec_to_R(rng.normal(0, np.radians(cfg.robot_noise_deg), 3)), rng.normal(0, cfg.robot_noise_m, 3))
            A.append(noise @ T_be)
            B.append(estimate_board_pose(det, intr.K, intr.dist)[0])
        res = solve_hand_eye(A, B, HandEyeConfig(mode=mode))
        rot, trans = transform_error(res.T, X)
        out[f"{mode}_rot_deg"] = rot
        out[f"{mode}_trans_mm"] = trans * 1000
        out[f"{mode}_spread_deg"] = res.method_spread_rot_deg
        out[f"{mode}_spread_mm"] = res.method_spread_trans_m * 1000
    return out


def run_mujoco(views: int, seed: int, board: BoardConfig | None = None) -> dict[str, float]:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from .sim_board_scene import BoardScene

    board = board or BoardConfig()
    rng = np.random.default_rng(seed)
    detector = BoardDetector(board)
    with BoardScene(board) as scene:
        K = scene.K
        planner = SyntheticCamera(scene.width, scene.height, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        dets, T_world_ee = [], []
        for T_cb in sample_views(board, planner, views, rng, distance_m=(0.35, 0.65)):
            T = scene.ee_pose_for_view(T_cb)
            scene.set_ee_pose(T)
            det = detector.detect(scene.render())
            if det is not None:
                dets.append(det)
                T_world_ee.append(T)
        T_world_cam = scene.T_world_cam()
    intr = calibrate_intrinsics(dets).intrinsics
    res = solve_hand_eye(T_world_ee, [estimate_board_pose(d, intr.K, intr.dist)[0] for d in dets],
                         HandEyeConfig(mode="eye_to_hand"))
    rot, trans = transform_error(res.T, T_world_cam)
    return {
        "fx_err_pct": abs(intr.fx - K[0, 0]) / K[0, 0] * 100,
        "fy_err_pct": abs(intr.fy - K[1, 1]) / K[1, 1] * 100,
        "cx_err_px": abs(intr.cx - K[0, 2]),
        "cy_err_px": abs(intr.cy - K[1, 2]),
        "eye_to_hand_rot_deg": rot,
        "eye_to_hand_trans_mm": trans * 1000,
    }


def format_table(rows: list[dict[str, float]]) -> str:
    keys = list(rows[0])
    arr = np.array([[r[k] for k in keys] for r in rows])
    lines = [f"{'metric':<24}{'mean':>10}{'max':>10}"]
    lines += [f"{k:<24}{arr[:, i].mean():>10.4f}{arr[:, i].max():>10.4f}" for i, k in enumerate(keys)]
    return "\n".join(lines)
