"""The part of the import contract that lint-imports cannot check: robot_stack.msg (generated
by the colcon build, not in the source tree) is imported only by robot_stack.nodes."""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def msg_importers(package_dir: pathlib.Path) -> set[str]:
    """Modules under ``package_dir`` (relative paths) that import robot_stack.msg."""
    found = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n == "robot_stack.msg" or n.startswith("robot_stack.msg.") for n in names):
                found.add(path.relative_to(package_dir).as_posix())
    return found


def test_only_nodes_import_robot_stack_messages():
    outside = sorted(p for p in msg_importers(ROOT / "robot_stack") if not p.startswith("nodes/"))
    assert not outside, f"robot_stack.msg imported outside robot_stack/nodes: {outside}"


def test_the_check_sees_a_violation(tmp_path):
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "bad.py").write_text("from robot_stack import msg\nfrom robot_stack.msg import StepRecord\n")
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "ok.py").write_text("import robot_stack.msg\n")
    assert msg_importers(tmp_path) == {"devices/bad.py", "nodes/ok.py"}
