"""Hand-eye calibration on synthetic rendered views with known truth, and the extrinsic file."""
from __future__ import annotations

import numpy as np
import pytest

from robot_stack.calibration.board import BoardConfig, BoardDetector, estimate_board_pose
from robot_stack.types.errors import CalibrationFileError, DegenerateMotionError, TooFewViewsError
from robot_stack.types.geometry import invert, make_T, rotvec_to_R, transform_error
from robot_stack.calibration.handeye import (
    Extrinsic,
    HandEyeCollector,
    HandEyeConfig,
    check_pose_set,
    extrinsic_from_result,
    load_extrinsic_yaml,
    save_extrinsic_yaml,
    solve_hand_eye,
    static_transform_from_result,
)
from robot_stack.calibration.intrinsics import calibrate_intrinsics
from robot_stack.calibration.synthetic import BoardRenderer, SyntheticCamera, hand_eye_scene

BOARD = BoardConfig()
CAMERA = SyntheticCamera(fx=612.0, fy=611.0, cx=324.0, cy=238.5, dist=(-0.09, 0.04, 0.0005, 0.0003, 0.0))
ROBOT_NOISE_M = 0.0002  # robot EE pose noise: position (m) ...
ROBOT_NOISE_RAD = np.radians(0.02)  # ... and orientation

T_EE_CAM = make_T(rotvec_to_R([0.08, -0.15, 1.52]), [0.045, -0.032, 0.055])
T_BASE_BOARD = make_T(rotvec_to_R([np.pi, 0, 0.2]), [0.5, -0.05, 0.01])
T_BASE_CAM = make_T(rotvec_to_R([2.1, 0.4, -0.3]), [1.05, 0.25, 0.62])
T_EE_BOARD = make_T(rotvec_to_R([0, 0, 0.4]), [0.01, -0.06, 0.09])


def _noisy(T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return make_T(rotvec_to_R(rng.normal(0, ROBOT_NOISE_RAD, 3)), rng.normal(0, ROBOT_NOISE_M, 3)) @ T


@pytest.fixture(scope="module")
def measured():
    """Intrinsics calibrated from rendered views, then the board pose in each hand-eye view."""
    rng = np.random.default_rng(21)
    renderer = BoardRenderer(BOARD, CAMERA)
    detector = BoardDetector(BOARD)
    out = {}
    all_views = []
    scenes = {
        "eye_in_hand": hand_eye_scene(BOARD, CAMERA, 14, rng, "eye_in_hand", T_EE_CAM, T_BASE_BOARD),
        "eye_to_hand": hand_eye_scene(BOARD, CAMERA, 14, rng, "eye_to_hand", T_BASE_CAM, T_EE_BOARD),
    }
    dets = {}
    for mode, (T_base_ee, T_cam_board) in scenes.items():
        dets[mode] = [detector.detect(renderer.render(T, rng, noise_std=3.0, blur_sigma_px=0.7)) for T in T_cam_board]
        assert all(d is not None for d in dets[mode])
        all_views += dets[mode]
    intr = calibrate_intrinsics(all_views).intrinsics  # calibrated, not true, intrinsics: realistic
    for mode, (T_base_ee, _) in scenes.items():
        poses = [estimate_board_pose(d, intr.K, intr.dist)[0] for d in dets[mode]]
        out[mode] = ([_noisy(T, rng) for T in T_base_ee], poses)
    return out


def test_eye_in_hand_recovers_T_ee_cam(measured):
    T_base_ee, T_cam_board = measured["eye_in_hand"]
    result = solve_hand_eye(T_base_ee, T_cam_board, HandEyeConfig(mode="eye_in_hand"))
    rot_deg, trans_m = transform_error(result.T, T_EE_CAM)
    assert rot_deg < 0.5 and trans_m < 0.002, (rot_deg, trans_m)
    assert set(result.per_method) == {"TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS"}
    assert result.residual_rot_deg[result.method] < 0.5
    assert result.method_spread_rot_deg < 0.5 and result.method_spread_trans_m < 0.005
    assert "spread between methods" in result.summary()


def test_eye_to_hand_recovers_T_base_cam(measured):
    T_base_ee, T_cam_board = measured["eye_to_hand"]
    result = solve_hand_eye(T_base_ee, T_cam_board, HandEyeConfig(mode="eye_to_hand", method="PARK"))
    assert result.method == "PARK"
    rot_deg, trans_m = transform_error(result.T, T_BASE_CAM)
    assert rot_deg < 0.5 and trans_m < 0.002, (rot_deg, trans_m)


def test_wrong_mode_gives_large_residual(measured):
    """Solving eye-to-hand data as eye-in-hand must show up in the residuals."""
    T_base_ee, T_cam_board = measured["eye_to_hand"]
    right = solve_hand_eye(T_base_ee, T_cam_board, HandEyeConfig(mode="eye_to_hand"))
    wrong = solve_hand_eye(T_base_ee, T_cam_board, HandEyeConfig(mode="eye_in_hand"))
    assert wrong.residual_trans_m[wrong.method] > 10 * right.residual_trans_m[right.method]


def test_too_few_views_raises(measured):
    T_base_ee, T_cam_board = measured["eye_in_hand"]
    with pytest.raises(TooFewViewsError, match="record"):
        solve_hand_eye(T_base_ee[:4], T_cam_board[:4], HandEyeConfig(min_views=8))


def test_pure_translation_is_degenerate():
    T_base_ee = [make_T(np.eye(3), [0.4 + 0.05 * i, 0.02 * i, 0.3]) for i in range(10)]
    T_cam_board = [make_T(np.eye(3), [0, 0, 0.5])] * 10
    q = check_pose_set(T_base_ee)
    assert not q.ok and q.max_rotation_deg < 1e-6
    with pytest.raises(DegenerateMotionError, match="too little rotation"):
        solve_hand_eye(T_base_ee, T_cam_board)


def test_rotation_about_one_axis_is_degenerate():
    T_base_ee = [make_T(rotvec_to_R([0, 0, np.radians(8 * i)]), [0.4, 0.03 * i, 0.3 + 0.01 * i]) for i in range(10)]
    q = check_pose_set(T_base_ee)
    assert q.max_rotation_deg > 60 and q.second_axis_spread_deg < 1e-6
    with pytest.raises(DegenerateMotionError, match="different axis"):
        solve_hand_eye(T_base_ee, [np.eye(4)] * 10)


def test_guided_collector_tells_what_is_missing(measured):
    T_base_ee, T_cam_board = measured["eye_in_hand"]
    col = HandEyeCollector(HandEyeConfig(min_views=8))
    ok, msg = col.add(T_base_ee[0], T_cam_board[0])
    assert ok and "need 8" in msg
    ok, msg = col.add(T_base_ee[0], T_cam_board[0])
    assert not ok and "same pose" in msg
    ok, msg = col.add(T_base_ee[1], T_cam_board[1], board_rms_px=5.0)
    assert not ok and "board pose error" in msg
    for A, B in zip(T_base_ee[1:9], T_cam_board[1:9]):
        col.add(A, B)
    assert col.ready, col.quality().summary()


def test_extrinsic_yaml_roundtrip_backup_and_static_transform(tmp_path, measured):
    T_base_ee, T_cam_board = measured["eye_in_hand"]
    result = solve_hand_eye(T_base_ee, T_cam_board)
    ext = extrinsic_from_result(result, "fr3_hand_tcp", "wrist_camera_optical_frame")
    path = tmp_path / "wrist_extrinsic.yaml"
    assert save_extrinsic_yaml(ext, path) is None
    loaded = load_extrinsic_yaml(path)
    assert (loaded.parent_frame, loaded.child_frame) == ("fr3_hand_tcp", "wrist_camera_optical_frame")
    rot, trans = transform_error(loaded.T_parent_child, result.T)
    assert rot < 1e-4 and trans < 1e-9  # arccos resolution near 0
    assert loaded.info["method"] == result.method
    backup = save_extrinsic_yaml(ext, path)
    assert backup is not None and backup.exists() and path.exists()
    parent, child, T = static_transform_from_result(result, "fr3_hand_tcp", "wrist_camera_optical_frame")
    assert (parent, child) == ("fr3_hand_tcp", "wrist_camera_optical_frame")
    np.testing.assert_allclose(T, result.T)


def test_extrinsic_loader_rejects_bad_files(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("parent_frame: a\nchild_frame: b\ntranslation_xyz_m: [0, 0]\nquaternion_xyzw: [0, 0, 0, 1]\n")
    with pytest.raises(CalibrationFileError, match="translation_xyz_m"):
        load_extrinsic_yaml(p)
    p.write_text("parent_frame: a\nchild_frame: b\ntranslation_xyz_m: [0, 0, 0]\nquaternion_xyzw: [0, 0, 0, 2]\n")
    with pytest.raises(CalibrationFileError, match="unit length"):
        load_extrinsic_yaml(p)
    p.write_text("child_frame: b\ntranslation_xyz_m: [0, 0, 0]\nquaternion_xyzw: [0, 0, 0, 1]\n")
    with pytest.raises(CalibrationFileError, match="parent_frame"):
        load_extrinsic_yaml(p)
    with pytest.raises(CalibrationFileError, match="not found"):
        load_extrinsic_yaml(tmp_path / "nope.yaml")


def test_extrinsic_as_static_transform_is_a_copy():
    T = make_T(rotvec_to_R([0.1, 0.2, 0.3]), [1, 2, 3])
    parent, child, T_out = Extrinsic("base", "cam", T).as_static_transform()
    T_out[0, 3] = 99
    assert (parent, child) == ("base", "cam") and T[0, 3] == 1
    assert np.allclose(invert(invert(T)), T)
