"""End to end in MuJoCo: render a textured ChArUco board held by a moving body, calibrate the
camera's intrinsics from the rendered views, and recover the camera's true pose in the world
with eye-to-hand hand-eye calibration."""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from robot_stack.calibration.board import BoardConfig, BoardDetector, estimate_board_pose
from robot_stack.calibration.handeye import HandEyeConfig, extrinsic_from_result, solve_hand_eye
from robot_stack.calibration.intrinsics import calibrate_intrinsics
from robot_stack.calibration.sim_board_scene import BoardScene
from robot_stack.calibration.synthetic import SyntheticCamera, sample_views
from robot_stack.types.geometry import transform_error

mujoco = pytest.importorskip("mujoco")

BOARD = BoardConfig()
NUM_VIEWS = 18


@pytest.fixture(scope="module")
def rendered():
    rng = np.random.default_rng(3)
    detector = BoardDetector(BOARD)
    with BoardScene(BOARD, width=640, height=480, fovy_deg=55.0) as scene:
        K_true = scene.K
        # Plan board views in the camera frame with the true camera (as an operator would aim).
        planner = SyntheticCamera(640, 480, K_true[0, 0], K_true[1, 1], K_true[0, 2], K_true[1, 2])
        views, T_world_ee = [], []
        for T_cam_board in sample_views(BOARD, planner, NUM_VIEWS, rng, distance_m=(0.35, 0.65)):
            T = scene.ee_pose_for_view(T_cam_board)
            scene.set_ee_pose(T)
            det = detector.detect(scene.render())
            assert det is not None, "board not detected in a MuJoCo view"
            views.append(det)
            T_world_ee.append(T)
        return {"K": K_true, "T_world_cam": scene.T_world_cam(), "views": views, "T_world_ee": T_world_ee,
                "T_body_board": scene.T_body_board}


def test_mujoco_intrinsics_match_fovy(rendered):
    result = calibrate_intrinsics(rendered["views"])
    K, intr = rendered["K"], result.intrinsics
    assert abs(intr.fx - K[0, 0]) / K[0, 0] < 0.005, (intr.fx, K[0, 0])
    assert abs(intr.fy - K[1, 1]) / K[1, 1] < 0.005, (intr.fy, K[1, 1])
    assert abs(intr.cx - K[0, 2]) < 2.0 and abs(intr.cy - K[1, 2]) < 2.0
    assert np.all(np.abs(intr.dist[:2]) < 0.05)  # MuJoCo renders an ideal pinhole


def test_mujoco_eye_to_hand_recovers_camera_pose(rendered):
    intr = calibrate_intrinsics(rendered["views"]).intrinsics
    T_cam_board = [estimate_board_pose(v, intr.K, intr.dist)[0] for v in rendered["views"]]
    result = solve_hand_eye(rendered["T_world_ee"], T_cam_board, HandEyeConfig(mode="eye_to_hand"))
    rot_deg, trans_m = transform_error(result.T, rendered["T_world_cam"])
    assert rot_deg < 0.5 and trans_m < 0.002, (rot_deg, trans_m)
    parent, child, T = extrinsic_from_result(result, "world", "calib_cam_optical_frame").as_static_transform()
    assert (parent, child) == ("world", "calib_cam_optical_frame")
    np.testing.assert_allclose(T, result.T)


def test_mujoco_pnp_against_known_board_pose(rendered):
    """The camera pose also follows from one view and the board's known world pose."""
    intr = calibrate_intrinsics(rendered["views"]).intrinsics
    errs = []
    for det, T_world_ee in zip(rendered["views"], rendered["T_world_ee"]):
        T_cam_board, _ = estimate_board_pose(det, intr.K, intr.dist)
        T_world_board = T_world_ee @ rendered["T_body_board"]
        T_world_cam = T_world_board @ np.linalg.inv(T_cam_board)
        errs.append(transform_error(T_world_cam, rendered["T_world_cam"]))
    rot, trans = np.median(np.array(errs), axis=0)
    assert rot < 0.5 and trans < 0.005, (rot, trans)
