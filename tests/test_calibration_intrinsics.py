"""Camera intrinsics from synthetic ChArUco views with known truth (no ROS, no MuJoCo)."""
from __future__ import annotations

import re
import types
import zlib

import numpy as np
import pytest

from robot_stack.calibration.board import BoardConfig, BoardDetector, save_board_pdf, save_board_png
from robot_stack.types.errors import BoardNotFoundError, CalibrationFileError, TooFewViewsError
from robot_stack.types.intrinsics import (
    CameraIntrinsics,
    intrinsics_from_realsense,
    load_camera_info_yaml,
    save_camera_info_yaml,
)
from robot_stack.calibration.intrinsics import (
    IntrinsicsConfig,
    ViewSelector,
    calibrate_intrinsics,
    compare_intrinsics,
)
from robot_stack.calibration.synthetic import BoardRenderer, SyntheticCamera, sample_views

BOARD = BoardConfig()
CAMERA = SyntheticCamera(fx=605.0, fy=603.0, cx=318.3, cy=243.7, dist=(-0.11, 0.06, 0.0008, -0.0006, 0.0))
NOISE_STD = 3.0  # grey levels
BLUR_SIGMA_PX = 0.7


@pytest.fixture(scope="module")
def renderer():
    return BoardRenderer(BOARD, CAMERA)


@pytest.fixture(scope="module")
def views(renderer):
    """20 detected views of the board from random poses, with sensor noise and blur."""
    rng = np.random.default_rng(7)
    det = BoardDetector(BOARD)
    out = []
    for i, T in enumerate(sample_views(BOARD, CAMERA, 20, rng)):
        d = det.detect(renderer.render(T, rng, noise_std=NOISE_STD, blur_sigma_px=BLUR_SIGMA_PX), f"view{i}")
        assert d is not None, f"board not detected in synthetic view {i}"
        out.append(d)
    return out


def test_calibration_recovers_focal_and_principal_point(views):
    result = calibrate_intrinsics(views[:16])
    intr = result.intrinsics
    assert abs(intr.fx - CAMERA.fx) / CAMERA.fx < 0.005
    assert abs(intr.fy - CAMERA.fy) / CAMERA.fy < 0.005
    assert abs(intr.cx - CAMERA.cx) < 2.0
    assert abs(intr.cy - CAMERA.cy) < 2.0
    assert abs(intr.dist[0] - CAMERA.dist[0]) < 0.03
    assert len(result.per_view_rms_px) == len(result.views)
    assert result.rms_px < 0.5
    assert "reprojection error" in result.summary()


def test_too_few_views_raises_with_advice(views):
    with pytest.raises(TooFewViewsError, match="collect more views"):
        calibrate_intrinsics(views[:5], IntrinsicsConfig(min_views=10))


def test_blank_image_board_not_found(renderer):
    det = BoardDetector(BOARD)
    blank = np.full((480, 640), 120, np.uint8)
    assert det.detect(blank) is None
    with pytest.raises(BoardNotFoundError, match="board parameters"):
        det.detect_or_raise(blank, "blank.png")


def test_wrong_dictionary_does_not_detect(renderer):
    T = sample_views(BOARD, CAMERA, 1, np.random.default_rng(3))[0]
    img = renderer.render(T, np.random.default_rng(3))
    other = BoardDetector(BoardConfig(dictionary="DICT_4X4_50"))
    assert other.detect(img) is None


def test_blurred_view_rejected(renderer):
    rng = np.random.default_rng(11)
    T = sample_views(BOARD, CAMERA, 1, rng)[0]
    det = BoardDetector(BOARD)
    sharp = det.detect(renderer.render(T, rng, noise_std=0.5, blur_sigma_px=0.5))
    blurred = det.detect(renderer.render(T, rng, noise_std=0.5, blur_sigma_px=3.0))
    assert sharp is not None and blurred is not None
    assert blurred.sharpness < sharp.sharpness
    sel = ViewSelector()
    decision = sel.offer(blurred)
    assert not decision.accepted and "blurred" in decision.reason
    assert sel.offer(sharp).accepted


def test_duplicate_view_rejected(renderer, views):
    rng = np.random.default_rng(5)
    sel = ViewSelector()
    assert sel.offer(views[0]).accepted
    # The same pose rendered again with fresh noise is a duplicate.
    again = views[0].subset(np.ones(len(views[0]), bool))
    again.image_points = again.image_points + rng.normal(0, 0.3, again.image_points.shape)
    decision = sel.offer(again)
    assert not decision.accepted and "duplicate" in decision.reason
    assert sel.offer(views[1]).accepted
    assert 0 < sel.coverage() <= 1


def test_camera_info_yaml_roundtrip_and_backup(tmp_path, views):
    intr = calibrate_intrinsics(views[:12]).intrinsics
    path = tmp_path / "front_camera_info.yaml"
    assert save_camera_info_yaml(intr, path, comment="first") is None
    text = path.read_text()
    for key in ("image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
                "distortion_coefficients", "rectification_matrix", "projection_matrix"):
        assert re.search(rf"^{key}:", text, re.M), key
    loaded = load_camera_info_yaml(path)
    np.testing.assert_allclose(loaded.K, intr.K)
    np.testing.assert_allclose(loaded.dist, intr.dist)
    assert (loaded.width, loaded.height) == (640, 480)
    backup = save_camera_info_yaml(intr, path, comment="second")
    assert backup is not None and backup.exists() and "first" in backup.read_text()
    assert "second" in path.read_text()


def test_camera_info_loader_rejects_bad_files(tmp_path):
    with pytest.raises(CalibrationFileError, match="not found"):
        load_camera_info_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_width: 640\nimage_height: 480\ncamera_matrix: {rows: 3, cols: 3, data: [1, 2]}\n")
    with pytest.raises(CalibrationFileError, match="camera_matrix"):
        load_camera_info_yaml(bad)
    bad.write_text("::: not yaml :::\n  - [")
    with pytest.raises(CalibrationFileError, match="YAML"):
        load_camera_info_yaml(bad)


def test_compare_with_factory_intrinsics(views):
    calibrated = calibrate_intrinsics(views[:14]).intrinsics
    held_out = views[14:]
    # A "factory" calibration that is off by 1.5 % in focal length and ignores distortion.
    factory = CameraIntrinsics(640, 480, np.diag([CAMERA.fx * 1.015, CAMERA.fy * 1.015, 1.0]) + np.array(
        [[0, 0, CAMERA.cx + 3], [0, 0, CAMERA.cy - 3], [0, 0, 0]]), np.zeros(5))
    cmp = compare_intrinsics(calibrated, factory, held_out)
    assert cmp.calibrated_is_better and cmp.calibrated_error_px < cmp.reference_error_px
    # Against the true intrinsics the calibration cannot win by a margin.
    truth = CameraIntrinsics(640, 480, CAMERA.K, np.array(CAMERA.dist))
    cmp = compare_intrinsics(calibrated, truth, held_out)
    assert not cmp.calibrated_is_better and "keep the reference" in cmp.message
    with pytest.raises(TooFewViewsError):
        compare_intrinsics(calibrated, truth, [])


def test_realsense_intrinsics_conversion():
    rs_intr = types.SimpleNamespace(width=640, height=480, fx=610.5, fy=609.8, ppx=321.2, ppy=239.9,
                                    model="distortion.inverse_brown_conrady", coeffs=[0.1, -0.2, 0.001, 0.002, 0.05])
    intr = intrinsics_from_realsense(rs_intr, "wrist")
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (610.5, 609.8, 321.2, 239.9)
    np.testing.assert_allclose(intr.dist, [0.1, -0.2, 0.001, 0.002, 0.05])
    assert intr.camera_name == "wrist" and intr.distortion_model == "plumb_bob"


def test_board_png_is_true_scale_and_detectable(tmp_path):
    from PIL import Image

    path = tmp_path / "board.png"
    dpi = save_board_png(BOARD, path, dpi=200)
    img = np.asarray(Image.open(path).convert("L"))
    stored_dpi = Image.open(path).info["dpi"][0]
    assert abs(stored_dpi - dpi) < 0.01
    # Board area width in pixels / dpi must equal the configured physical width.
    px_per_square = (img.shape[1]) / (BOARD.squares_x + 1)  # half-square quiet zone each side
    assert abs(px_per_square / dpi * 25.4 - BOARD.square_length_m * 1000) < 0.05
    det = BoardDetector(BOARD).detect(img)
    assert det is not None and len(det) == BOARD.num_corners


def test_board_pdf_places_board_at_true_scale(tmp_path):
    path = tmp_path / "board.pdf"
    save_board_pdf(BOARD, path, paper="A4")
    data = path.read_bytes()
    placements = []
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            content = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        placements += re.findall(rb"([\d.]+) 0 0 ([\d.]+) [\d.]+ [\d.]+ cm /I\d+ Do", content)
    assert placements, "no image placement found in the PDF"
    w_pt, h_pt = (float(v) for v in placements[0])
    w_mm, h_mm = (v * 1000 for v in BOARD.size_m)
    assert abs(w_pt / 72 * 25.4 - w_mm) / w_mm < 1e-3
    assert abs(h_pt / 72 * 25.4 - h_mm) / h_mm < 1e-3
    with pytest.raises(Exception, match="does not fit"):
        save_board_pdf(BoardConfig(square_length_m=0.06, marker_length_m=0.045), tmp_path / "big.pdf", paper="A4")
