"""The topic table (robot_stack/nodes/topics.py) is the one source of names, types and QoS:
it is consistent, every node creates its publishers, subscriptions, services and clients from
it (and only those the table lists for it), and the docs generated from it are current."""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

from robot_stack.nodes import topics

ROOT = pathlib.Path(__file__).resolve().parents[1]
NODES_DIR = ROOT / "robot_stack" / "nodes"


def test_table_is_consistent():
    from robot_stack.nodes import qos

    names = [t.name for t in topics.TOPICS] + [s.name for s in topics.SERVICES]
    assert len(names) == len(set(names)), "a name appears twice"
    for t in topics.TOPICS:
        assert t.qos in qos.PROFILES, f"{t.name}: unknown QoS profile {t.qos}"
        assert not t.name.startswith("/") or t is topics.DIAGNOSTICS, f"{t.name} is absolute: it ignores the namespace"
        assert t.publishers and t.meaning
    for s in topics.SERVICES:
        assert not s.name.startswith("/") and s.servers and s.meaning
    executables = {p.name for p in (ROOT / "scripts").iterdir()}
    for node in {n for t in topics.TOPICS for n in t.publishers + t.subscribers} | \
            {n for s in topics.SERVICES for n in s.servers + s.clients}:
        assert node in executables, f"the table names '{node}', which is no node executable in scripts/"


def test_names_resolve_in_a_namespace():
    assert topics.STEPS.resolve() == "/robot_stack/steps"
    assert topics.STEPS.resolve("arm1") == "/arm1/steps"
    assert topics.CAMERA_IMAGE.resolve("/lab/arm2", camera="wrist") == "/lab/arm2/cameras/wrist/image_raw"
    assert topics.DIAGNOSTICS.resolve("arm1") == "/diagnostics"
    assert topics.EPISODE_RESET.resolve("arm1") == "/arm1/episode/reset"


@pytest.mark.ros
def test_types_import():
    pytest.importorskip("rclpy")
    for t in topics.TOPICS:
        assert t.msg_type.__name__ == t.type.rsplit("/", 1)[1]
        assert t.profile is not None
    for s in topics.SERVICES:
        assert s.srv_type.__name__ == s.type.rsplit("/", 1)[1]


def _uses(path: pathlib.Path) -> dict[str, set[str]]:
    """{helper: {table entry}} for the topics.publisher/subscription/service/client calls in a file
    (``<...>.inbox.subscribe(node, topics.X, ...)``, the guarded subscription, counts as one)."""
    out: dict[str, set[str]] = {"publisher": set(), "subscription": set(), "service": set(), "client": set()}
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        func = node.func
        if func.attr == "subscribe" and isinstance(func.value, ast.Attribute) and func.value.attr == "inbox":
            helper = "subscription"
        elif func.attr in out and isinstance(func.value, ast.Name) and func.value.id == "topics":
            helper = func.attr
        else:
            continue
        entry = node.args[1]
        if isinstance(entry, ast.Attribute) and isinstance(entry.value, ast.Name) and entry.value.id == "topics":
            out[helper].add(entry.attr)
        elif isinstance(entry, ast.Name):  # a variable holding entries (the actor's reset service)
            out[helper].add("*")
    return out


NODE_FILES = sorted(p for p in NODES_DIR.glob("*_node.py"))


@pytest.mark.parametrize("path", NODE_FILES, ids=lambda p: p.name)
def test_node_creates_its_endpoints_from_the_table_only(path):
    text = path.read_text()
    # No hand-written names or endpoints: everything through the table's helpers.
    assert not re.search(r"create_(publisher|subscription|service|client)\(", text), \
        f"{path.name} creates an endpoint without the topic table"
    assert '"/robot_stack' not in text and "'/robot_stack" not in text, f"{path.name} spells an absolute name"
    node = path.stem
    uses = _uses(path)
    entries = {name: getattr(topics, name) for name in dir(topics)
               if isinstance(getattr(topics, name), (topics.Topic, topics.Service))}
    for attr in uses["publisher"]:
        assert node in entries[attr].publishers, f"{node} publishes {entries[attr].name}; the table does not say so"
    for attr in uses["subscription"]:
        assert node in entries[attr].subscribers, f"{node} subscribes to {entries[attr].name}; the table does not say so"
    for attr in uses["service"]:
        assert node in entries[attr].servers, f"{node} serves {entries[attr].name}; the table does not say so"
    for attr in uses["client"] - {"*"}:
        assert node in entries[attr].clients, f"{node} calls {entries[attr].name}; the table does not say so"
    # ... and the table lists nothing for this node that it does not create.
    for attr, entry in entries.items():
        if isinstance(entry, topics.Topic):
            if node in entry.publishers:
                assert attr in uses["publisher"], f"the table says {node} publishes {entry.name}; it does not"
            if node in entry.subscribers and node != "spacemouse_node":  # its sim source subscribes
                assert attr in uses["subscription"], f"the table says {node} subscribes to {entry.name}; it does not"
        else:
            if node in entry.servers:
                assert attr in uses["service"], f"the table says {node} serves {entry.name}; it does not"


def test_the_endpoint_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad_node.py"
    bad.write_text("from robot_stack.nodes import topics\n"
                   "def f(self):\n    topics.publisher(self, topics.STEPS)\n    topics.client(self, topics.FRANKA_HOME)\n"
                   "    self.inbox.subscribe(self, topics.POLICY, print)\n")
    assert _uses(bad) == {"publisher": {"STEPS"}, "subscription": {"POLICY"}, "service": set(),
                          "client": {"FRANKA_HOME"}}


def test_generated_docs_are_current():
    """README.md's marked node table and docs/topics.md are generated from the table; when this
    fails, run `python -m robot_stack.nodes.topics --write`."""
    assert topics.main(["--check", "--root", str(ROOT)]) == 0


def test_readme_block_needs_its_markers():
    with pytest.raises(ValueError, match="markers"):
        topics.replace_block("no markers here", topics.nodes_markdown())
    text = f"a\n{topics.NODE_DOC_BEGIN}\nold\n{topics.NODE_DOC_END}\nb"
    assert topics.replace_block(text, "NEW") == "a\nNEW\nb"


def _status_literals(path: pathlib.Path) -> set[str]:
    """The event names passed as literals to ``self._status(...)`` (plain or ``a if c else b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_status":
            arg = node.args[0]
            for leaf in (arg.body, arg.orelse) if isinstance(arg, ast.IfExp) else (arg,):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    found.add(leaf.value)
    return found


@pytest.mark.ros
def test_franka_status_events_are_message_constants():
    """Every event the franka node and its safety layer report is an EVENT_* constant of
    msg/FrankaStatus (consumers compare against those)."""
    pytest.importorskip("rclpy")
    from robot_stack.devices.franka import safety
    from robot_stack.msg import FrankaStatus

    known = {v for k, v in vars(FrankaStatus).items() if k.startswith("EVENT_")}
    from robot_stack.nodes import franka_node

    emitted = _status_literals(NODES_DIR / "franka_node.py")
    emitted |= {v for k, v in vars(safety).items() if k.startswith("EVENT_")}
    emitted |= {v for k, v in vars(franka_node).items() if k.startswith("EVENT_") and isinstance(v, str)}
    assert {"ready", "home_done", "home_failed", "recovered", "error", "watchdog_stop"} <= emitted
    assert not emitted - known, f"events without an EVENT_* constant in msg/FrankaStatus.msg: {sorted(emitted - known)}"
