"""Camera core: RealSense recording through the real pyrealsense2 pipeline, OpenCV, sim."""
from __future__ import annotations

import time

import numpy as np
import pytest

from robot_stack.devices.cameras.base import CameraConfig, CameraError, StaleFrameError, make_camera
from robot_stack.testing.realsense_recording import write_software_recording
from robot_stack.types.config import ConfigError, from_dict
from robot_stack.types.intrinsics import CameraIntrinsics, save_camera_info_yaml

W, H = 64, 48
N_FRAMES = 30  # 1 s at 30 fps
K = np.array([[50.0, 0, 31.5], [0, 52.0, 23.5], [0, 0, 1]])


def _images(n):
    out = []
    for i in range(n):
        img = np.zeros((H, W, 3), np.uint8)
        img[..., 1] = 7 * i  # frame index in green
        img[:, :16, 0] = 255  # red band on the left: shows where the crop landed
        out.append(img)
    return out


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    pytest.importorskip("pyrealsense2")
    path = tmp_path_factory.mktemp("rs") / "rec.db3"
    depths = [np.full((H, W), 400 + i, np.uint16) for i in range(N_FRAMES)]
    # Pushed at 30 fps (1 s) so that real-time playback has the recorded pace.
    return write_software_recording(path, _images(N_FRAMES), fps=30, K=K, depths=depths, serial="123456789", real_time=True)


def _file_cfg(path, **kw):
    kw.setdefault("file_real_time", False)
    return CameraConfig(name="front", backend="file", file_path=str(path), file_repeat=False, **kw)


@pytest.mark.timing  # real-time playback: a stall of more than the read timeout ends the reads early
def test_file_backend_plays_recording_through_pipeline_with_crop_resize(recording):
    cfg = _file_cfg(recording, crop=(16, 0, 48, 48), output_width=24, output_height=24, file_real_time=True)
    with make_camera(cfg) as cam:
        assert cam.output_size == (24, 24)
        frames = []
        while True:
            try:
                frames.append(cam.read(timeout_s=1.0))
            except CameraError as e:
                assert "end of the recording" in str(e)
                break
    assert len(frames) >= N_FRAMES // 2  # real-time playback may drop frames on a busy machine
    f = frames[-1]
    assert f.image.shape == (24, 24, 3) and f.image.dtype == np.uint8
    assert f.image[..., 0].max() == 0  # the red band was cropped away
    assert f.image[0, 0, 1] == 7 * f.seq  # green carries the frame index: right frame, rgb order
    seqs = [fr.seq for fr in frames]
    assert seqs == sorted(set(seqs)), "frames must be new and in order"
    # Hardware-clock stamps (33.3 ms apart) mapped onto the host clock keep their spacing.
    dt = np.diff([fr.t_device_s for fr in frames])
    np.testing.assert_allclose(dt, 1 / 30, atol=1e-3)
    stamps_dt = np.diff([fr.t_s for fr in frames])
    assert np.all(stamps_dt > 0)
    assert np.median(stamps_dt) == pytest.approx(1 / 30, abs=2e-3)
    assert abs(frames[0].t_s - time.time()) < 5.0


def test_file_backend_intrinsics_follow_crop_and_resize(recording):
    cfg = _file_cfg(recording, crop=(16, 0, 48, 48), output_width=24, output_height=24)
    with make_camera(cfg) as cam:
        intr = cam.intrinsics
    assert (intr.width, intr.height) == (24, 24)
    assert intr.fx == pytest.approx(25.0) and intr.fy == pytest.approx(26.0)
    # centre: (31.5 - 16 + 0.5) * 0.5 - 0.5 = 7.5; (23.5 + 0.5) * 0.5 - 0.5 = 11.5
    assert intr.cx == pytest.approx(7.5) and intr.cy == pytest.approx(11.5)


def test_file_backend_depth_aligned_to_colour(recording):
    with make_camera(_file_cfg(recording, enable_depth=True)) as cam:
        f = cam.read(timeout_s=2.0)
    assert f.depth is not None and f.depth.shape == (H, W) and f.depth.dtype == np.uint16
    assert 400 <= int(np.median(f.depth)) < 400 + N_FRAMES
    assert f.depth_scale_m == pytest.approx(0.001)


def test_calibration_file_for_capture_size_is_transformed(recording, tmp_path):
    cal = tmp_path / "front.yaml"
    save_camera_info_yaml(CameraIntrinsics(W, H, np.array([[60.0, 0, 30], [0, 60, 20], [0, 0, 1]]), np.zeros(5), "front"), cal)
    with make_camera(_file_cfg(recording, output_width=32, output_height=24, calibration_file=str(cal))) as cam:
        assert cam.intrinsics.fx == pytest.approx(30.0)
    bad = tmp_path / "bad.yaml"
    save_camera_info_yaml(CameraIntrinsics(100, 100, np.array([[60.0, 0, 50], [0, 60, 50], [0, 0, 1]]), np.zeros(5)), bad)
    with pytest.raises(ConfigError, match="100x100"):
        make_camera(_file_cfg(recording, calibration_file=str(bad))).connect()


def test_read_latest_rejects_stale_frames(recording):
    cam = make_camera(_file_cfg(recording))
    cam.connect()
    try:
        f = cam.read()
        # A played-back frame is stamped on the host clock near now: fresh for 5 s, stale for 0 s.
        assert cam.read_latest(max_age_s=5.0).seq >= f.seq
        with pytest.raises(StaleFrameError, match="ms old"):
            cam.read_latest(max_age_s=0.0)
    finally:
        cam.close()


def test_sim_backend_paces_frames_and_checks_shape():
    n = {"i": 0}

    def provider():
        n["i"] += 1
        return np.full((H, W, 3), n["i"], np.uint8)

    cfg = CameraConfig(name="wrist", backend="sim", width=W, height=H, fps=50, output_width=32, output_height=24)
    with make_camera(cfg, provider=provider) as cam:
        t0 = time.monotonic()
        frames = [cam.read() for _ in range(6)]
        elapsed = time.monotonic() - t0
    assert [f.seq for f in frames] == [1, 2, 3, 4, 5, 6]
    assert frames[0].image.shape == (24, 32, 3)
    assert elapsed >= 5 / 50 * 0.9  # paced at fps
    bad = make_camera(cfg, provider=lambda: np.zeros((10, 10, 3), np.uint8))
    bad.connect()
    with pytest.raises(CameraError, match="expected uint8"):
        bad.read()
    bad.close()


def test_opencv_backend_reads_a_video_file(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for img in _images(4):
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    cfg = CameraConfig(name="usb", backend="opencv", device=str(path), width=W, height=H)
    with make_camera(cfg) as cam:
        f = cam.read()
        assert f.image.shape == (H, W, 3)
        assert f.image[0, 0, 0] > 200 and f.image[0, -1, 0] < 50  # RGB order kept (red on the left)
        assert cam.intrinsics.width == W  # pinhole guess without calibration
    missing = make_camera(CameraConfig(name="usb", backend="opencv", device="/dev/video99"))
    with pytest.raises(CameraError, match="cannot open device"):
        missing.connect()


def test_realsense_backend_without_camera_says_what_to_do():
    pytest.importorskip("pyrealsense2")
    with pytest.raises(CameraError, match="no RealSense found|serial"):
        make_camera(CameraConfig(backend="realsense")).connect()


def test_bad_camera_config_names_the_field():
    with pytest.raises(ConfigError, match="crop"):
        from_dict(CameraConfig, {"crop": [1, 2, 3]})
    with pytest.raises(ConfigError, match="file_path"):
        from_dict(CameraConfig, {"backend": "file"})
    with pytest.raises(ConfigError, match="needs a frame provider"):
        make_camera(CameraConfig(backend="sim"))
