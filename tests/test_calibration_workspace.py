"""Workspace box: from recorded EE positions, file round trip, and the loader's refusals."""
from __future__ import annotations

import numpy as np
import pytest

from robot_stack.calibration.workspace import box_from_positions
from robot_stack.types.errors import CalibrationFileError, InvalidWorkspaceBoxError, TooFewViewsError
from robot_stack.types.workspace import ReachLimits, WorkspaceBox, load_workspace_box, save_workspace_box


def _sweep(lo, hi, n=200, seed=0):
    """Positions an operator would record: random points inside plus the extreme faces."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(lo, hi, size=(n, 3))
    pts[:6] = [lo, hi, [lo[0], hi[1], hi[2]], [hi[0], lo[1], lo[2]], [lo[0], lo[1], hi[2]], [hi[0], hi[1], lo[2]]]
    return pts


def test_box_from_positions_shrinks_by_margin():
    lo, hi = np.array([0.3, -0.25, 0.05]), np.array([0.65, 0.25, 0.45])
    box = box_from_positions(iter(_sweep(lo, hi)), "fr3_link0", margin_m=0.02)
    np.testing.assert_allclose(box.lower, lo + 0.02)
    np.testing.assert_allclose(box.upper, hi - 0.02)
    assert box.frame == "fr3_link0"
    assert box.contains([0.5, 0.0, 0.2]) and not box.contains([0.31, 0.0, 0.2])
    np.testing.assert_allclose(box.clip([1.0, 0.0, 0.0]), [hi[0] - 0.02, 0.0, lo[2] + 0.02])


def test_box_from_too_few_positions_raises():
    with pytest.raises(TooFewViewsError, match="keep recording"):
        box_from_positions([[0.4, 0, 0.3]] * 3, "fr3_link0")


def test_margin_larger_than_motion_gives_empty_box():
    pts = _sweep(np.array([0.4, -0.1, 0.2]), np.array([0.43, 0.1, 0.4]))
    with pytest.raises(InvalidWorkspaceBoxError, match="empty on x"):
        box_from_positions(pts, "fr3_link0", margin_m=0.02)


def test_save_load_roundtrip_with_backup(tmp_path):
    box = WorkspaceBox("fr3_link0", (0.3, -0.2, 0.05), (0.6, 0.2, 0.4))
    path = tmp_path / "workspace_box.yaml"
    assert save_workspace_box(box, path) is None
    assert load_workspace_box(path) == box
    backup = save_workspace_box(WorkspaceBox("fr3_link0", (0.3, -0.2, 0.05), (0.5, 0.2, 0.4)), path)
    assert backup is not None and load_workspace_box(backup) == box
    assert load_workspace_box(path).max_xyz_m[0] == 0.5


@pytest.mark.parametrize(
    "content, match",
    [
        ("frame: b\nmin_xyz_m: [0.6, -0.2, 0.05]\nmax_xyz_m: [0.3, 0.2, 0.4]\n", "inverted on x"),
        ("frame: b\nmin_xyz_m: [0.3, -0.2, 0.2]\nmax_xyz_m: [0.6, 0.2, 0.2]\n", "empty on z"),
        ("frame: b\nmin_xyz_m: [0.3, -0.2, 0.0]\nmax_xyz_m: [1.2, 0.2, 0.4]\n", "beyond the reach"),
        ("frame: b\nmin_xyz_m: [0.3, -0.2, .nan]\nmax_xyz_m: [0.6, 0.2, 0.4]\n", "non-finite"),
        ("frame: b\nmin_xyz_m: [0.3, -0.2]\nmax_xyz_m: [0.6, 0.2, 0.4]\n", "3 numbers"),
        ("frame: b\nmax_xyz_m: [0.6, 0.2, 0.4]\n", "missing keys"),
        ("frame: b\nmin_xyz_m: [0.3, -0.2, 0.0]\nmax_xyz_m: [0.6, 0.2, 0.4]\nmargin: 1\n", "unknown keys"),
        ("frame: ''\nmin_xyz_m: [0.3, -0.2, 0.0]\nmax_xyz_m: [0.6, 0.2, 0.4]\n", "empty 'frame'"),
    ],
)
def test_loader_refuses_bad_boxes(tmp_path, content, match):
    path = tmp_path / "box.yaml"
    path.write_text(content)
    with pytest.raises(InvalidWorkspaceBoxError, match=match):
        load_workspace_box(path)


def test_reach_limit_is_configurable(tmp_path):
    path = tmp_path / "box.yaml"
    path.write_text("frame: b\nmin_xyz_m: [0.3, -0.2, 0.05]\nmax_xyz_m: [0.6, 0.2, 0.4]\n")
    load_workspace_box(path)
    with pytest.raises(InvalidWorkspaceBoxError, match="beyond the reach limit 0.5"):
        load_workspace_box(path, ReachLimits(max_reach_m=0.5))


def test_loader_reports_missing_and_unreadable_files(tmp_path):
    with pytest.raises(CalibrationFileError, match="not found"):
        load_workspace_box(tmp_path / "missing.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(CalibrationFileError, match="mapping"):
        load_workspace_box(p)
    # Both error kinds are ValueErrors, so a caller can catch one type.
    assert issubclass(CalibrationFileError, ValueError) and issubclass(InvalidWorkspaceBoxError, ValueError)
