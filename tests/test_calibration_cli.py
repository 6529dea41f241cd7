"""The calibration CLI on files: board, intrinsics, handeye, workspace, show; bad-input messages."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from robot_stack.calibration.board import BoardConfig
from robot_stack.calibration.cli import main
from robot_stack.calibration.handeye import load_extrinsic_yaml
from robot_stack.calibration.synthetic import BoardRenderer, SyntheticCamera, hand_eye_scene, sample_views
from robot_stack.types.geometry import T_to_xyz_quat, make_T, rotvec_to_R, transform_error
from robot_stack.types.intrinsics import load_camera_info_yaml
from robot_stack.types.workspace import load_workspace_box

BOARD = BoardConfig()
CAMERA = SyntheticCamera(fx=598.0, fy=599.0, cx=321.0, cy=241.0, dist=(-0.08, 0.03, 0.0, 0.0, 0.0))
T_EE_CAM = make_T(rotvec_to_R([0.05, -0.1, 1.6]), [0.04, -0.03, 0.05])
T_BASE_BOARD = make_T(rotvec_to_R([np.pi, 0, 0]), [0.5, 0.0, 0.01])


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("views")
    rng = np.random.default_rng(1)
    r = BoardRenderer(BOARD, CAMERA)
    for i, T in enumerate(sample_views(BOARD, CAMERA, 14, rng)):
        cv2.imwrite(str(d / f"view_{i:02d}.png"), r.render(T, rng))
    cv2.imwrite(str(d / "blank.png"), np.full((480, 640), 128, np.uint8))
    return d


def test_board_command_writes_png_and_pdf(tmp_path, capsys):
    assert main(["board", "--out", str(tmp_path / "b"), "--squares-x", "6", "--squares-y", "4"]) == 0
    assert (tmp_path / "b.png").stat().st_size > 0 and (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")
    assert "print at 100 %" in capsys.readouterr().out


def test_bad_board_parameters_name_the_problem(tmp_path, capsys):
    assert main(["board", "--out", str(tmp_path / "b.png"), "--marker-mm", "40"]) == 2
    assert "marker_length_m" in capsys.readouterr().err


def test_intrinsics_unreadable_image_says_so(image_dir, tmp_path, capsys):
    (tmp_path / "view.png").write_bytes((image_dir / "view_00.png").read_bytes())
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert main(["intrinsics", "--images", str(tmp_path), "--out", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert "cannot read image" in err and "broken.png" in err


def test_intrinsics_from_folder_writes_camera_info(image_dir, tmp_path, capsys):
    out = tmp_path / "front_camera_info.yaml"
    assert main(["intrinsics", "--images", str(image_dir), "--camera-name", "front", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "blank.png: board not found" in captured.err and "[15/15]" in captured.err
    assert "reprojection error" in captured.out and "view_03.png" in captured.out
    intr = load_camera_info_yaml(out)
    assert intr.camera_name == "front" and abs(intr.fx - CAMERA.fx) / CAMERA.fx < 0.005
    # Second run keeps the first result as a backup.
    assert main(["intrinsics", "--images", str(image_dir), "--camera-name", "front", "--out", str(out)]) == 0
    assert "previous kept as" in capsys.readouterr().out
    assert len(list(tmp_path.glob("front_camera_info.yaml.bak-*"))) == 1


def test_intrinsics_too_few_views_exit_2(image_dir, tmp_path, capsys):
    assert main(["intrinsics", "--images", str(image_dir), "--min-views", "40", "--out", str(tmp_path / "c.yaml")]) == 2
    assert "collect more views" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


def test_intrinsics_board_never_found(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((480, 640), 128, np.uint8))
    assert main(["intrinsics", "--images", str(tmp_path), "--out", str(tmp_path / "c.yaml")]) == 2
    assert "found in none" in capsys.readouterr().err


def test_intrinsics_against_reference_keeps_better_reference(image_dir, tmp_path, capsys):
    ref = tmp_path / "factory.yaml"
    # The true intrinsics as "factory": a calibration cannot beat them by the margin.
    ref.write_text(yaml.safe_dump({
        "image_width": 640, "image_height": 480, "camera_name": "front",
        "camera_matrix": {"rows": 3, "cols": 3, "data": CAMERA.K.ravel().tolist()},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": list(CAMERA.dist)},
    }))
    out = tmp_path / "c.yaml"
    assert main(["intrinsics", "--images", str(image_dir), "--reference", str(ref), "--min-views", "8",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "keep the reference" in text and not out.exists()


def test_handeye_from_samples_file(tmp_path, capsys):
    rng = np.random.default_rng(4)
    T_base_ee, T_cam_board = hand_eye_scene(BOARD, CAMERA, 12, rng, "eye_in_hand", T_EE_CAM, T_BASE_BOARD)
    r = BoardRenderer(BOARD, CAMERA)
    samples = []
    for i, (A, B) in enumerate(zip(T_base_ee, T_cam_board)):
        cv2.imwrite(str(tmp_path / f"s{i}.png"), r.render(B, rng))
        t, q = T_to_xyz_quat(A)
        samples.append({"image": f"s{i}.png", "T_base_ee": {"translation_xyz_m": t.tolist(), "quaternion_xyzw": q.tolist()}})
    (tmp_path / "samples.yaml").write_text(yaml.safe_dump({"samples": samples}))
    cam_yaml = tmp_path / "cam.yaml"
    cam_yaml.write_text(yaml.safe_dump({
        "image_width": 640, "image_height": 480,
        "camera_matrix": {"rows": 3, "cols": 3, "data": CAMERA.K.ravel().tolist()},
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": list(CAMERA.dist)},
    }))
    out = tmp_path / "wrist_extrinsic.yaml"
    argv = ["handeye", "--samples", str(tmp_path / "samples.yaml"), "--camera-info", str(cam_yaml),
            "--child", "wrist_camera_optical_frame", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "[12/12]" in captured.err and "spread between methods" in captured.out
    ext = load_extrinsic_yaml(out)
    assert ext.parent_frame == "fr3_hand_tcp" and ext.child_frame == "wrist_camera_optical_frame"
    rot, trans = transform_error(ext.T_parent_child, T_EE_CAM)
    assert rot < 0.5 and trans < 0.002
    # Too few samples: a clear message and nothing overwritten.
    (tmp_path / "few.yaml").write_text(yaml.safe_dump({"samples": samples[:4]}))
    before = out.read_text()
    assert main(argv[:1] + ["--samples", str(tmp_path / "few.yaml")] + argv[3:]) == 2
    assert "record 4 more poses" in capsys.readouterr().err and out.read_text() == before


def test_workspace_from_csv_and_show(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pts = rng.uniform([0.3, -0.2, 0.05], [0.6, 0.2, 0.4], size=(100, 3))
    csv = tmp_path / "ee.csv"
    csv.write_text("x,y,z\n" + "\n".join(",".join(f"{v:.5f}" for v in p) for p in pts))
    out = tmp_path / "workspace_box.yaml"
    assert main(["workspace", "--positions", str(csv), "--margin-m", "0.01", "--out", str(out)]) == 0
    box = load_workspace_box(out)
    np.testing.assert_allclose(box.lower, pts.min(axis=0) + 0.01, atol=1e-5)
    assert main(["show", str(out)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "far.csv"
    bad.write_text("\n".join(f"{x},0,0.3" for x in np.linspace(0.3, 1.3, 20)) + "\n0.3,0.3,0.0\n0.3,-0.3,0.6\n")
    assert main(["workspace", "--positions", str(bad), "--out", str(tmp_path / "far.yaml")]) == 2
    assert "beyond the reach" in capsys.readouterr().err
    assert main(["workspace", "--positions", str(tmp_path / "nope.csv")]) == 2
    assert "not found" in capsys.readouterr().err
