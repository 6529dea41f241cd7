# Over 400 lines: one short function per calibration subcommand plus the argument parser.
"""``python -m robot_stack.calibration <subcommand>``: board, intrinsics, handeye, workspace, show.

Progress goes to stderr, the summary to stdout; exit code 0 on success, 2 on bad input
(with a message saying what to do), 1 on an unexpected failure. Outputs default to the
repository's ``calibration/`` folder; an existing file is renamed to ``.bak-<timestamp>``.
"""
from __future__ import annotations

import argparse
import csv
import logging
import pathlib
import sys
import threading

import cv2
import numpy as np
import yaml

from robot_stack.types.config import ConfigError, load_yaml
from robot_stack.types.errors import BoardNotFoundError, CalibrationError, CalibrationFileError, TooFewViewsError
from robot_stack.types.files import read_yaml_mapping
from robot_stack.types.geometry import T_from_xyz_quat, T_to_xyz_quat
from robot_stack.types.intrinsics import load_camera_info_yaml, save_camera_info_yaml
from robot_stack.types.workspace import ReachLimits, load_workspace_box, save_workspace_box

from .board import BoardConfig, BoardDetector, estimate_board_pose, save_board_pdf, save_board_png
from .handeye import (
    HandEyeCollector,
    HandEyeConfig,
    extrinsic_from_result,
    load_extrinsic_yaml,
    save_extrinsic_yaml,
    solve_hand_eye,
)
from .intrinsics import (
    IntrinsicsConfig,
    ViewSelectionConfig,
    ViewSelector,
    calibrate_intrinsics,
    compare_intrinsics,
    realsense_factory_intrinsics,
)
from .workspace import box_from_positions

log = logging.getLogger("robot_stack.calibration")

#: Default output folder: <repo>/calibration (next to the robot_stack package).
CALIBRATION_DIR = pathlib.Path(__file__).resolve().parents[2] / "calibration"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _board_cfg(args: argparse.Namespace) -> BoardConfig:
    if args.board_config:
        return load_yaml(BoardConfig, args.board_config)
    cfg = BoardConfig(
        squares_x=args.squares_x,
        squares_y=args.squares_y,
        square_length_m=args.square_mm / 1000.0,
        marker_length_m=args.marker_mm / 1000.0,
        dictionary=args.dictionary,
        legacy_pattern=args.legacy_pattern,
    )
    try:
        cfg.validate()
    except ValueError as e:
        raise ConfigError(f"board: {e}") from e
    return cfg


def _add_board_args(p: argparse.ArgumentParser) -> None:
    d = BoardConfig()
    g = p.add_argument_group("board (must match the print)")
    g.add_argument("--board-config", help="YAML with BoardConfig fields (overrides the flags below)")
    g.add_argument("--squares-x", type=int, default=d.squares_x)
    g.add_argument("--squares-y", type=int, default=d.squares_y)
    g.add_argument("--square-mm", type=float, default=d.square_length_m * 1000, help="measured square side, mm")
    g.add_argument("--marker-mm", type=float, default=d.marker_length_m * 1000, help="measured marker side, mm")
    g.add_argument("--dictionary", default=d.dictionary)
    g.add_argument("--legacy-pattern", action="store_true", help="board printed with the pre-4.6 OpenCV layout")


def _read_image(path: pathlib.Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise CalibrationFileError(f"cannot read image {path}: not an image file or corrupt (remove it or re-save it)")
    return img


def _image_files(folder: str) -> list[pathlib.Path]:
    d = pathlib.Path(folder)
    if not d.is_dir():
        raise CalibrationFileError(f"image folder not found: {d}")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise TooFewViewsError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {d}: collect views first")
    return files


# ---------------------------------------------------------------------------------------


def cmd_board(args: argparse.Namespace) -> int:
    cfg = _board_cfg(args)
    out = pathlib.Path(args.out) if args.out else CALIBRATION_DIR / f"charuco_{cfg.squares_x}x{cfg.squares_y}"
    outs = [out] if out.suffix.lower() in (".png", ".pdf") else [out.with_suffix(".png"), out.with_suffix(".pdf")]
    out.parent.mkdir(parents=True, exist_ok=True)
    for path in outs:
        if path.suffix.lower() == ".png":
            dpi = save_board_png(cfg, path, dpi=args.dpi)
            print(f"wrote {path} ({dpi:.1f} dpi: print at 100 % / actual size)")
        else:
            save_board_pdf(cfg, path, paper=args.paper)
            print(f"wrote {path} ({args.paper}, true scale: print at 100 %, check the 100 mm bar)")
    w, h = cfg.size_m
    print(f"board {cfg.squares_x}x{cfg.squares_y} squares of {cfg.square_length_m * 1000:.1f} mm "
          f"({w * 1000:.0f}x{h * 1000:.0f} mm), markers {cfg.marker_length_m * 1000:.1f} mm, {cfg.dictionary}. "
          "Measure a printed square and pass --square-mm/--marker-mm if they differ.")
    return 0


def cmd_intrinsics(args: argparse.Namespace) -> int:
    board = _board_cfg(args)
    detector = BoardDetector(board)
    selector = ViewSelector(ViewSelectionConfig(min_sharpness=args.min_sharpness))
    counts = {"no board": 0, "rejected": 0}

    def offer(img: np.ndarray, source: str, index: str) -> bool:
        det = detector.detect(img, source)
        if det is None:
            counts["no board"] += 1
            _progress(f"{index} {source}: board not found")
            return False
        decision = selector.offer(det)
        if not decision.accepted:
            counts["rejected"] += 1
        _progress(f"{index} {source}: {decision.reason}")
        return decision.accepted

    if args.topic:
        from . import ros_collect  # rclpy only when a live topic is used

        folder = pathlib.Path(args.save_images) if args.save_images else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

        def on_image(img: np.ndarray, i: int) -> bool:
            source = f"view_{len(selector.views):03d}.png"
            accepted = offer(img, source, f"[{len(selector.views) + 1}/{args.count}]")
            if accepted and folder is not None:
                cv2.imwrite(str(folder / source), img)  # kept so the calibration can be rerun with --images
            return accepted

        _progress(f"collecting {args.count} views from {args.topic}: move the board (or camera) between views")
        ros_collect.collect_images(args.topic, args.count, period_s=args.period_s, on_image=on_image)
    else:
        files = _image_files(args.images)
        for i, f in enumerate(files):
            offer(_read_image(f), f.name, f"[{i + 1}/{len(files)}]")
        if not selector.views and counts["no board"] == len(files):
            raise BoardNotFoundError(
                f"the board was found in none of the {len(files)} images in {args.images}: check --squares-x/-y, "
                "--dictionary and --legacy-pattern against the print, and the lighting"
            )
    views = selector.views
    held_out = []
    reference = None
    if args.reference or args.realsense:
        # Every k-th accepted view is held out to compare against the reference fairly.
        k = max(2, int(round(1.0 / args.holdout_fraction)))
        held_out = views[k - 1 :: k]
        views = [v for i, v in enumerate(views) if (i + 1) % k]
    cfg = IntrinsicsConfig(min_views=args.min_views, camera_name=args.camera_name, max_view_error_px=args.max_view_error_px)
    result = calibrate_intrinsics(views, cfg)
    print(result.summary())
    for v, e in zip(result.views, result.per_view_rms_px):
        print(f"  {v.source or 'view'}: {e:.3f} px")
    for v, e in result.dropped:
        print(f"  dropped {v.source or 'view'}: {e:.3f} px")
    print(f"image coverage by corners: {selector.coverage():.0%} "
          f"({counts['no board']} without board, {counts['rejected']} rejected)")
    if selector.coverage() < 0.5:
        print("WARNING: corners cover less than half of the image; add views with the board near the edges and corners")
    intr = result.intrinsics
    out = pathlib.Path(args.out) if args.out else CALIBRATION_DIR / f"{args.camera_name}_camera_info.yaml"
    if args.reference or args.realsense:
        if args.reference:
            reference = load_camera_info_yaml(args.reference)
        else:
            reference = realsense_factory_intrinsics(intr.width, intr.height, camera_name=args.camera_name)
        cmp = compare_intrinsics(intr, reference, held_out)
        print(cmp.message)
        if not cmp.calibrated_is_better and not args.force:
            print(f"not writing {out}: the reference intrinsics are as good; pass --force to write anyway")
            return 0
    comment = (f"calibrated from {len(result.views)} ChArUco views; RMS reprojection error {result.rms_px:.3f} px")
    backup = save_camera_info_yaml(intr, out, comment=comment)
    print(f"wrote {out}" + (f" (previous kept as {backup})" if backup else ""))
    return 0


def _load_samples(path: str) -> list[tuple[pathlib.Path, np.ndarray]]:
    p = pathlib.Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise CalibrationFileError(f"cannot read samples file {p}: {e}") from e
    except yaml.YAMLError as e:
        raise CalibrationFileError(f"samples file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
        raise CalibrationFileError(
            f"{p}: expected 'samples: [{{image: file, T_base_ee: {{translation_xyz_m: [..], quaternion_xyzw: [..]}}}}, ...]'"
        )
    out = []
    for i, s in enumerate(data["samples"]):
        try:
            T = T_from_xyz_quat(s["T_base_ee"]["translation_xyz_m"], s["T_base_ee"]["quaternion_xyzw"])
            img = p.parent / s["image"]
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationFileError(f"{p}: sample {i} is malformed ({e}); see the format in calibration/README.md") from e
        out.append((img, T))
    return out


def cmd_handeye(args: argparse.Namespace) -> int:
    board = _board_cfg(args)
    detector = BoardDetector(board)
    intr = load_camera_info_yaml(args.camera_info)
    cfg = HandEyeConfig(mode=args.mode, min_views=args.min_views,
                        min_rotation_spread_deg=args.min_rotation_deg)
    try:
        cfg.validate()
    except ValueError as e:
        raise ConfigError(f"handeye: {e}") from e
    collector = HandEyeCollector(cfg)

    def add(img: np.ndarray, T_base_ee: np.ndarray, source: str, index: str) -> None:
        det = detector.detect(img, source)
        if det is None:
            _progress(f"{index} {source}: board not found, skipped")
            return
        T_cam_board, rms = estimate_board_pose(det, intr.K, intr.dist)
        ok, msg = collector.add(T_base_ee, T_cam_board, rms)
        _progress(f"{index} {source}: {msg}")

    if args.samples:
        samples = _load_samples(args.samples)
        for i, (img_path, T) in enumerate(samples):
            add(_read_image(img_path), T, img_path.name, f"[{i + 1}/{len(samples)}]")
    else:
        from . import ros_collect

        _progress(f"guided collection: image {args.image_topic}, EE pose {args.pose_topic}. Move the robot, hold "
                  "still, press Enter to record a view; type q + Enter to solve.")
        with ros_collect.TopicCollector(image_topic=args.image_topic, pose_topic=args.pose_topic) as col:
            n = 0
            for line in sys.stdin:
                if line.strip().lower() == "q":
                    break
                T = col.latest_pose()
                img, _ = col.next_image(after=col.image.count)  # a frame taken after the robot stopped
                n += 1
                add(img, T, f"view {n}", f"[{n}]")
                q = collector.quality()
                _progress("ready to solve (q + Enter), or add more views" if q.ok else "still needed: " + "; ".join(q.problems))
    result = solve_hand_eye(collector.T_base_ee, collector.T_cam_board, cfg)
    print(result.summary())
    parent = args.parent or ("fr3_hand_tcp" if args.mode == "eye_in_hand" else "fr3_link0")
    ext = extrinsic_from_result(result, parent, args.child)
    out = pathlib.Path(args.out) if args.out else CALIBRATION_DIR / f"{args.child}_extrinsic.yaml"
    backup = save_extrinsic_yaml(ext, out)
    t, q = T_to_xyz_quat(ext.T_parent_child)
    print(f"T_{parent}_{args.child}: translation {np.round(t, 4).tolist()} m, quaternion xyzw {np.round(q, 5).tolist()}")
    print(f"wrote {out}" + (f" (previous kept as {backup})" if backup else ""))
    return 0


def _read_positions(path: str) -> list[np.ndarray]:
    p = pathlib.Path(path)
    if not p.is_file():
        raise CalibrationFileError(f"positions file not found: {p}")
    try:
        if p.suffix.lower() == ".csv":
            rows = [r for r in csv.reader(p.read_text().splitlines()) if r]
            if rows and not _is_number(rows[0][0]):
                rows = rows[1:]  # header
            return [np.array([float(v) for v in r[:3]]) for r in rows]
        data = yaml.safe_load(p.read_text())
        if isinstance(data, dict):
            data = data.get("positions_xyz_m")
        return [np.asarray(v, dtype=np.float64).reshape(3) for v in data]
    except (OSError, ValueError, TypeError, IndexError, yaml.YAMLError) as e:
        raise CalibrationFileError(
            f"cannot read EE positions from {p} ({e}): use a CSV with x,y,z columns in m or a YAML list "
            "'positions_xyz_m: [[x, y, z], ...]'"
        ) from e


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def warn_if_not_dexterous(box, quat_xyzw=(1.0, 0.0, 0.0, 0.0)) -> list[str]:
    """Print a warning for every place where the box leaves the FR3's dexterous workspace at the
    task orientation (gripper down): there the arm works close to a joint limit or a singularity,
    and the franka node's joint-limit stage slows it down. Returns the problems."""
    from robot_stack.devices.franka.kinematics import box_dexterity_problems

    problems = box_dexterity_problems(box.min_xyz_m, box.max_xyz_m, quat_xyzw)
    if problems:
        print(f"WARNING: the box leaves the FR3's dexterous workspace (gripper down) at {len(problems)} of 27 "
              f"checked points; consider a smaller box:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
    return problems


def cmd_workspace(args: argparse.Namespace) -> int:
    limits = ReachLimits(max_reach_m=args.max_reach_m)
    if args.positions:
        positions = _read_positions(args.positions)
        _progress(f"read {len(positions)} EE positions from {args.positions}")
    else:
        from . import ros_collect

        stop = threading.Event()
        _progress(f"recording EE positions from {args.topic} for up to {args.duration_s:.0f} s: drive the robot with "
                  "the SpaceMouse to every face and corner of the safe workspace; press Enter to stop early")

        def wait_for_enter() -> None:
            # EOF (no terminal, e.g. a script) must not stop the recording: only a typed line does.
            try:
                line = sys.stdin.readline() if sys.stdin is not None else ""
            except (OSError, ValueError):  # no readable stdin (closed, or captured by a test runner)
                return
            if line:
                stop.set()

        threading.Thread(target=wait_for_enter, daemon=True).start()

        def progress(n: int, pts: np.ndarray) -> None:
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            _progress(f"  {n} poses, extent x [{lo[0]:.3f}, {hi[0]:.3f}] y [{lo[1]:.3f}, {hi[1]:.3f}] "
                      f"z [{lo[2]:.3f}, {hi[2]:.3f}] m")

        positions = ros_collect.collect_positions(args.topic, args.duration_s, stop, progress)
    box = box_from_positions(positions, args.frame, margin_m=args.margin_m, limits=limits)
    warn_if_not_dexterous(box)
    out = pathlib.Path(args.out) if args.out else CALIBRATION_DIR / "workspace_box.yaml"
    backup = save_workspace_box(box, out, limits, comment=f"{len(positions)} EE positions, margin {args.margin_m} m inward")
    size = box.upper - box.lower
    print(f"workspace box in {box.frame}: min {np.round(box.lower, 3).tolist()} max {np.round(box.upper, 3).tolist()} m "
          f"(size {np.round(size, 3).tolist()} m, margin {args.margin_m} m inside the recorded extent)")
    print(f"wrote {out}" + (f" (previous kept as {backup})" if backup else ""))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Load a calibration file with the same loader the stack uses and print it."""
    data = read_yaml_mapping(args.path, "calibration")
    if "camera_matrix" in data:
        i = load_camera_info_yaml(args.path)
        print(f"camera {i.camera_name} {i.width}x{i.height}: fx={i.fx:.2f} fy={i.fy:.2f} cx={i.cx:.2f} cy={i.cy:.2f} "
              f"{i.distortion_model} {np.round(i.dist, 5).tolist()}")
    elif "parent_frame" in data:
        e = load_extrinsic_yaml(args.path)
        t, q = T_to_xyz_quat(e.T_parent_child)
        print(f"{e.parent_frame} -> {e.child_frame}: t {np.round(t, 4).tolist()} m, q_xyzw {np.round(q, 5).tolist()}")
    else:
        b = load_workspace_box(args.path, ReachLimits(max_reach_m=args.max_reach_m))
        print(f"workspace box in {b.frame}: min {list(b.min_xyz_m)} max {list(b.max_xyz_m)} m: valid")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from . import selftest

    cfg = selftest.SelfTestConfig(views=args.views, noise_std=args.noise_std, blur_sigma_px=args.blur_sigma_px,
                                  trials=args.trials)
    rows = []
    for seed in range(cfg.trials):
        _progress(f"[{seed + 1}/{cfg.trials}] synthetic calibration (seed {seed})")
        rows.append(selftest.run_synthetic(cfg, seed))
    print(f"synthetic (OpenCV warp): {cfg.views} views, noise {cfg.noise_std} grey levels, blur {cfg.blur_sigma_px} px, "
          f"robot noise {cfg.robot_noise_m * 1000} mm / {cfg.robot_noise_deg} deg, {cfg.trials} trials")
    print(selftest.format_table(rows))
    if args.mujoco:
        rows = []
        for seed in range(cfg.trials):
            _progress(f"[{seed + 1}/{cfg.trials}] MuJoCo calibration (seed {seed})")
            rows.append(selftest.run_mujoco(cfg.views, seed))
        print(f"MuJoCo (rendered, no added noise): {cfg.views} views, {cfg.trials} trials")
        print(selftest.format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m robot_stack.calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("board", help="write a printable ChArUco board (PNG with true-scale DPI and/or PDF)")
    _add_board_args(p)
    p.add_argument("--out", help="output .png or .pdf (default: both, calibration/charuco_<X>x<Y>.*)")
    p.add_argument("--dpi", type=float, default=300.0)
    p.add_argument("--paper", default="A4", help="A4, A3 or letter (PDF)")
    p.set_defaults(func=cmd_board)

    p = sub.add_parser("intrinsics", help="calibrate camera intrinsics from ChArUco views")
    _add_board_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of images")
    src.add_argument("--topic", help="live sensor_msgs/Image topic (needs ROS 2)")
    p.add_argument("--count", type=int, default=25, help="views to collect from --topic")
    p.add_argument("--period-s", type=float, default=1.0, help="seconds between views taken from --topic")
    p.add_argument("--save-images", help="folder to keep the accepted live views in (to rerun with --images)")
    p.add_argument("--camera-name", default="camera")
    p.add_argument("--min-views", type=int, default=IntrinsicsConfig.min_views)
    p.add_argument("--min-sharpness", type=float, default=ViewSelectionConfig.min_sharpness,
                   help="variance-of-Laplacian threshold for blur rejection")
    p.add_argument("--max-view-error-px", type=float, default=IntrinsicsConfig.max_view_error_px)
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", help="CameraInfo YAML to compare against (e.g. factory intrinsics)")
    ref.add_argument("--realsense", action="store_true", help="compare against the connected RealSense's factory intrinsics")
    p.add_argument("--holdout-fraction", type=float, default=0.2, help="views held out for the comparison")
    p.add_argument("--force", action="store_true", help="write even if the reference is as good")
    p.add_argument("--out", help="CameraInfo YAML (default calibration/<camera-name>_camera_info.yaml)")
    p.set_defaults(func=cmd_intrinsics)

    p = sub.add_parser("handeye", help="hand-eye calibration (eye_in_hand or eye_to_hand)")
    _add_board_args(p)
    p.add_argument("--mode", choices=("eye_in_hand", "eye_to_hand"), default="eye_in_hand")
    p.add_argument("--camera-info", required=True, help="CameraInfo YAML of the camera")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", help="YAML: samples: [{image: file, T_base_ee: {translation_xyz_m, quaternion_xyzw}}]")
    src.add_argument("--image-topic", help="live guided collection: sensor_msgs/Image topic")
    p.add_argument("--pose-topic", default="/robot_stack/ee_pose", help="geometry_msgs/PoseStamped EE pose (live mode)")
    p.add_argument("--min-views", type=int, default=HandEyeConfig.min_views)
    p.add_argument("--min-rotation-deg", type=float, default=HandEyeConfig.min_rotation_spread_deg)
    p.add_argument("--parent", help="parent frame (default fr3_hand_tcp for eye_in_hand, fr3_link0 for eye_to_hand)")
    p.add_argument("--child", default="camera_optical_frame", help="camera optical frame name")
    p.add_argument("--out", help="extrinsic YAML (default calibration/<child>_extrinsic.yaml)")
    p.set_defaults(func=cmd_handeye)

    p = sub.add_parser("workspace", help="record the safe workspace box from EE positions")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--positions", help="CSV (x,y,z m) or YAML positions_xyz_m list")
    src.add_argument("--topic", help="live geometry_msgs/PoseStamped EE pose topic, e.g. /robot_stack/ee_pose")
    p.add_argument("--duration-s", type=float, default=120.0)
    p.add_argument("--frame", default="fr3_link0", help="frame of the positions (robot base)")
    p.add_argument("--margin-m", type=float, default=0.02, help="shrink the recorded extent by this on every side")
    p.add_argument("--max-reach-m", type=float, default=ReachLimits.max_reach_m)
    p.add_argument("--out", help="box YAML (default calibration/workspace_box.yaml)")
    p.set_defaults(func=cmd_workspace)

    p = sub.add_parser("show", help="load a calibration file (camera info, extrinsic or workspace box) and print it")
    p.add_argument("path")
    p.add_argument("--max-reach-m", type=float, default=ReachLimits.max_reach_m)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("selftest", help="accuracy on synthetic data with known truth (prints the errors)")
    p.add_argument("--views", type=int, default=16)
    p.add_argument("--noise-std", type=float, default=3.0, help="sensor noise, grey levels")
    p.add_argument("--blur-sigma-px", type=float, default=0.7)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--mujoco", action="store_true", help="also run the MuJoCo end-to-end scene")
    p.set_defaults(func=cmd_selftest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (CalibrationError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return 130
