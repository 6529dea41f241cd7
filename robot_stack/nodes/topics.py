"""The topic and service table: every name robot_stack's nodes talk on, in one place.

Names are relative, so they resolve in the node's namespace: a graph started with
``namespace:=arm1`` talks on ``/arm1/steps``, ``/arm1/franka/cmd_twist``, ..., and a second arm
in ``arm2`` shares the network without a single crossed message. Nodes default to the
namespace :data:`DEFAULT_NAMESPACE` (``robot_stack``, so ``/robot_stack/steps``); a
``--ros-args -r __ns:=/arm1`` remap (the launch files' ``namespace`` argument) overrides it.
The one absolute name is the ROS-wide ``/diagnostics``.

Every publisher, subscription, service and client of the nodes is made from an entry here
(:func:`publisher`, :func:`subscription`, :func:`service`, :func:`client`), so name, type and
QoS profile (``robot_stack.nodes.qos``) cannot drift apart between the two ends. The README's
node/topic table and docs/topics.md are generated from :data:`TOPICS` and :data:`SERVICES`
(``python -m robot_stack.nodes.topics --write``; tests/test_topics.py fails when they are
stale). Tools (recorder, bridges) read the same table.

``{camera}`` in a name is filled per camera (``cameras/front/image_raw``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

DEFAULT_NAMESPACE = "robot_stack"
"""Namespace of a node started without one (and the launch files' default)."""


@dataclass(frozen=True)
class Topic:
    """One topic: relative name, message type, QoS profile, meaning, who publishes and reads it."""

    name: str
    """Relative name (``{camera}`` filled per camera); absolute only for ROS-wide topics."""
    type: str
    """Message type, ``package/msg/Name``."""
    qos: str
    """Name of the profile in ``robot_stack.nodes.qos`` (subscribers ask for it, publishers offer
    ``qos.offered`` of it)."""
    meaning: str
    """What travels on it, units and frames."""
    publishers: tuple[str, ...]
    """Nodes that publish it."""
    subscribers: tuple[str, ...] = ()
    """Nodes that subscribe to it."""

    def resolve(self, namespace: str = DEFAULT_NAMESPACE, **fields: str) -> str:
        """The absolute name in ``namespace`` (``{camera}`` and other fields filled)."""
        return _resolve(self.name.format(**fields), namespace)

    @property
    def msg_type(self) -> Any:
        """The message class."""
        return _interface(self.type)

    @property
    def profile(self):
        """The QoS profile subscribers ask for."""
        from robot_stack.nodes import qos

        return qos.by_name(self.qos)

    @property
    def offered_profile(self):
        """The QoS profile publishers offer (``qos.offered``: SENSOR, STATE and DIAGNOSTICS
        publishers keep their last samples for a late-matching recorder)."""
        from robot_stack.nodes import qos

        return qos.offered(self.qos)


@dataclass(frozen=True)
class Service:
    """One service: relative name, service type, meaning, servers and clients."""

    name: str
    type: str
    """Service type, ``package/srv/Name``."""
    meaning: str
    servers: tuple[str, ...]
    clients: tuple[str, ...] = ()

    def resolve(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return _resolve(self.name, namespace)

    @property
    def srv_type(self) -> Any:
        """The service class."""
        return _interface(self.type)


def _resolve(name: str, namespace: str) -> str:
    if name.startswith("/"):
        return name
    ns = "/".join(p for p in namespace.split("/") if p)
    return f"/{ns}/{name}" if ns else f"/{name}"


def _interface(type_name: str) -> Any:
    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


# ----------------------------------------------------------------------------- topics
CAMERA_IMAGE = Topic(
    "cameras/{camera}/image_raw", "sensor_msgs/msg/Image", "SENSOR",
    "camera image, rgb8 at the policy's size; stamp = capture time",
    ("camera_node", "sim_world_node"), ("actor_node",))
CAMERA_INFO = Topic(
    "cameras/{camera}/camera_info", "sensor_msgs/msg/CameraInfo", "SENSOR",
    "intrinsics of that image", ("camera_node", "sim_world_node"))
CAMERA_DEPTH = Topic(
    "cameras/{camera}/depth/image_raw", "sensor_msgs/msg/Image", "SENSOR",
    "depth aligned to colour, 16UC1 in mm (enable_depth)", ("camera_node",))
CAMERA_POSE = Topic(
    "cameras/{camera}/pose", "geometry_msgs/msg/PoseStamped", "EPISODES",
    "the camera's optical frame in its parent frame (a static transform)", ("sim_world_node",))
OPERATOR = Topic(
    "operator", "robot_stack/msg/OperatorCommand", "COMMAND",
    "the operator: intervening, base-frame twist, gripper, episode mark; stamp = device read",
    ("spacemouse_node",), ("actor_node", "franka_node"))
SPACEMOUSE_JOY = Topic(
    "spacemouse/joy", "sensor_msgs/msg/Joy", "SENSOR",
    "raw SpaceMouse axes and buttons", ("spacemouse_node",))
SPACEMOUSE_TWIST = Topic(
    "spacemouse/twist", "geometry_msgs/msg/TwistStamped", "SENSOR",
    "the SpaceMouse deflection as a base-frame twist, intervening or not", ("spacemouse_node",))
CMD_TWIST = Topic(
    "franka/cmd_twist", "geometry_msgs/msg/TwistStamped", "COMMAND",
    "EE velocity command in the base frame, m/s and rad/s", ("actor_node",), ("franka_node", "sim_world_node"))
GRIPPER_CMD = Topic(
    "franka/gripper_cmd", "std_msgs/msg/Float32", "COMMAND",
    "gripper target width, m (at or below gripper_grasp_below_m: grasp)", ("actor_node",), ("franka_node",))
JOINT_STATES = Topic(
    "franka/joint_states", "sensor_msgs/msg/JointState", "STATE",
    "fr3_joint1..7, rad and rad/s", ("franka_node",))
EE_POSE = Topic(
    "ee_pose", "geometry_msgs/msg/PoseStamped", "STATE",
    "EE (TCP) pose in the base frame", ("franka_node",), ("actor_node",))
EE_TWIST = Topic(
    "franka/ee_twist", "geometry_msgs/msg/TwistStamped", "STATE",
    "measured EE twist in the base frame", ("franka_node",), ("actor_node",))
GRIPPER_WIDTH = Topic(
    "franka/gripper_width", "std_msgs/msg/Float32", "STATE",
    "finger width, m, at 10 Hz (the rate the hand is read at)", ("franka_node",), ("actor_node",))
FRANKA_STATUS = Topic(
    "franka/status", "robot_stack/msg/FrankaStatus", "EPISODES",
    "Franka node events (safety, recovery, homing), with the safety counters",
    ("franka_node",), ("monitor_node",))
FRANKA_DEBUG_SENT = Topic(
    "franka/debug/sent", "robot_stack/msg/CommandSent", "STEPS",
    "latency probe per velocity command (debug_latency only)", ("franka_node",))
DIAGNOSTICS = Topic(
    "/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", "DIAGNOSTICS",
    "ROS-wide health: one status per Franka node (1 Hz) and learner (every stats_every_s), named by the node's full name",
    ("franka_node", "learner_node"))
STEPS = Topic(
    "steps", "robot_stack/msg/StepRecord", "STEPS",
    "one record per actor control step (observation, action, intervention flag)",
    ("actor_node",), ("learner_node",))
STEP_ACK = Topic(
    "steps/ack", "robot_stack/msg/StepAck", "ACK",
    "the learner's watermark of this robot's step records (all up to it on the learner's disk) and "
    "its id; the actor's spool keeps every record until it is covered",
    ("learner_node",), ("actor_node",))
EPISODES = Topic(
    "episodes", "robot_stack/msg/EpisodeSummary", "EPISODES",
    "one summary per episode", ("actor_node",), ("monitor_node",))
POLICY = Topic(
    "policy", "robot_stack/msg/PolicyWeights", "POLICY",
    "the latest policy weights (a late joiner gets the newest at once)", ("learner_node",), ("actor_node",))
LEARNER_STATS = Topic(
    "learner/stats", "robot_stack/msg/LearnerStats", "EPISODES",
    "learner progress every stats_every_s (steps, updates, rates, losses)", ("learner_node",), ("monitor_node",))
SIM_SUCCESS = Topic(
    "sim/success", "std_msgs/msg/Bool", "STATE",
    "the sim task's success test at the control rate", ("sim_world_node",), ("actor_node",))
SIM_OPERATOR_JOY = Topic(
    "sim/operator_joy", "sensor_msgs/msg/Joy", "COMMAND",
    "the simulated operator's SpaceMouse reading (6 axes in [-1, 1], buttons)",
    ("sim_world_node",), ("spacemouse_node",))
SIM_OPERATOR_DEBUG = Topic(
    "sim/operator_debug", "robot_stack/msg/OperatorDecision", "STATE",
    "the simulated operator's decision each step", ("sim_world_node",))

TOPICS: tuple[Topic, ...] = (
    CAMERA_IMAGE, CAMERA_INFO, CAMERA_DEPTH, CAMERA_POSE,
    OPERATOR, SPACEMOUSE_JOY, SPACEMOUSE_TWIST,
    CMD_TWIST, GRIPPER_CMD, JOINT_STATES, EE_POSE, EE_TWIST, GRIPPER_WIDTH, FRANKA_STATUS, FRANKA_DEBUG_SENT,
    DIAGNOSTICS,
    STEPS, STEP_ACK, EPISODES, POLICY, LEARNER_STATS,
    SIM_SUCCESS, SIM_OPERATOR_JOY, SIM_OPERATOR_DEBUG,
)
"""Every topic, in the order of the docs."""

# ----------------------------------------------------------------------------- services
FRANKA_HOME = Service(
    "franka/home", "std_srvs/srv/Trigger",
    "move to the configured home pose (randomized by home_randomize_xyz_m); answered when the move ends",
    ("franka_node",), ("actor_node",))
FRANKA_HOME_TO = Service(
    "franka/home_to", "robot_stack/srv/HomeTo",
    "move to a given base-frame pose; answered when the move ends",
    ("franka_node",), ("sim_world_node",))
EPISODE_RESET = Service(
    "episode/reset", "robot_stack/srv/ResetEpisode",
    "re-sample the sim scene for an episode id and bring the arm to its start pose; answered when done",
    ("sim_world_node",), ("actor_node",))

SERVICES: tuple[Service, ...] = (FRANKA_HOME, FRANKA_HOME_TO, EPISODE_RESET)
"""Every service."""


# ----------------------------------------------------------------------------- node helpers
def publisher(node, topic: Topic, *, callback_group=None, **fields: str):
    """``node.create_publisher`` for a table entry (``fields`` fill ``{camera}``)."""
    return node.create_publisher(topic.msg_type, topic.name.format(**fields), topic.offered_profile,
                                 callback_group=callback_group)


def subscription(node, topic: Topic, callback, *, callback_group=None, raw: bool = False, **fields: str):
    """``node.create_subscription`` for a table entry (``fields`` fill ``{camera}``)."""
    return node.create_subscription(topic.msg_type, topic.name.format(**fields), callback, topic.profile,
                                    callback_group=callback_group, raw=raw)


def publisher_at(node, topic: Topic, name: str, *, callback_group=None):
    """A publisher of ``topic``'s type and QoS on another (e.g. absolute) ``name``: a fleet
    learner's ``/<robot_id>/policy``."""
    return node.create_publisher(topic.msg_type, name, topic.offered_profile, callback_group=callback_group)


def subscription_at(node, topic: Topic, name: str, callback, *, callback_group=None):
    """A subscription of ``topic``'s type and QoS on another (e.g. absolute) ``name``: a fleet
    learner's ``/<robot_id>/steps``."""
    return node.create_subscription(topic.msg_type, name, callback, topic.profile, callback_group=callback_group)


def service(node, srv: Service, callback, *, callback_group=None):
    """``node.create_service`` for a table entry."""
    return node.create_service(srv.srv_type, srv.name, callback, callback_group=callback_group)


def client(node, srv: Service, *, callback_group=None):
    """``node.create_client`` for a table entry."""
    return node.create_client(srv.srv_type, srv.name, callback_group=callback_group)


# ----------------------------------------------------------------------------- docs
NODE_DOC_BEGIN = "<!-- topic-table:begin -->"
NODE_DOC_END = "<!-- topic-table:end -->"


def _short(type_name: str) -> str:
    pkg, _, name = type_name.split("/")
    return f"{pkg}/{name}"


def _code(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def topics_markdown() -> str:
    """docs/topics.md: every topic and service with type, QoS and meaning."""
    out = [
        "# Topics and services",
        "",
        "Generated from `robot_stack/nodes/topics.py` by `python -m robot_stack.nodes.topics --write`; "
        "edit the table there, not here. Names are relative to the graph's namespace "
        f"(default `{DEFAULT_NAMESPACE}`: `steps` is `/{DEFAULT_NAMESPACE}/steps`; `namespace:=arm1` makes it "
        "`/arm1/steps`). QoS profiles are defined in `robot_stack/nodes/qos.py`.",
        "",
        "## Topics",
        "",
        "| topic | type | QoS | publishers | subscribers | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for t in TOPICS:
        out.append(f"| `{t.name}` | {_short(t.type)} | {t.qos} | {_code(t.publishers)} | "
                   f"{_code(t.subscribers) or '(tools)'} | {t.meaning} |")
    out += ["", "## Services", "", "| service | type | servers | clients | meaning |", "|---|---|---|---|---|"]
    for s in SERVICES:
        out.append(f"| `{s.name}` | {_short(s.type)} | {_code(s.servers)} | {_code(s.clients)} | {s.meaning} |")
    return "\n".join(out) + "\n"


def nodes_markdown() -> str:
    """The README's node table: per node what it subscribes to, calls, publishes and serves."""
    nodes: dict[str, dict[str, list[str]]] = {}

    def add(node: str, kind: str, text: str) -> None:
        nodes.setdefault(node, {"in": [], "out": []})[kind].append(text)

    for t in TOPICS:
        label = f"`{t.name}` ({_short(t.type)})"
        for n in t.publishers:
            add(n, "out", label)
        for n in t.subscribers:
            add(n, "in", label)
    for s in SERVICES:
        for n in s.servers:
            add(n, "out", f"`{s.name}` ({_short(s.type)} service)")
        for n in s.clients:
            add(n, "in", f"`{s.name}` (calls)")
    out = [NODE_DOC_BEGIN,
           "<!-- generated from robot_stack/nodes/topics.py by `python -m robot_stack.nodes.topics --write`; "
           "do not edit between the markers -->",
           "Every topic and service with its type, QoS profile and meaning: [docs/topics.md](docs/topics.md).",
           "",
           "| node | subscribes / calls | publishes / serves |", "|---|---|---|"]
    for node, io in nodes.items():
        out.append(f"| `{node}` | {', '.join(io['in']) or '-'} | {', '.join(io['out']) or '-'} |")
    out.append(NODE_DOC_END)
    return "\n".join(out)


def replace_block(text: str, block: str) -> str:
    """``text`` with its marked node-table block replaced by ``block`` (ValueError when the
    markers are missing)."""
    i, j = text.find(NODE_DOC_BEGIN), text.find(NODE_DOC_END)
    if i < 0 or j < i:
        raise ValueError(f"markers {NODE_DOC_BEGIN!r} ... {NODE_DOC_END!r} not found")
    return text[:i] + block + text[j + len(NODE_DOC_END):]


def main(argv: list[str] | None = None) -> int:
    """``--write``: regenerate docs/topics.md and the README's marked block; ``--check``: exit 1
    when either is stale; neither: print docs/topics.md."""
    import argparse
    import pathlib

    ap = argparse.ArgumentParser(prog="python -m robot_stack.nodes.topics", description=main.__doc__)
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parents[2]), help="repository root")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true")
    g.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    root = pathlib.Path(a.root)
    if not (a.write or a.check):
        print(topics_markdown(), end="")
        return 0
    targets = {root / "docs" / "topics.md": lambda old: topics_markdown(),
               root / "README.md": lambda old: replace_block(old, nodes_markdown())}
    stale = []
    for path, make in targets.items():
        old = path.read_text() if path.exists() else ""
        new = make(old)
        if new != old:
            stale.append(str(path))
            if a.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(new)
    if a.check and stale:
        print("stale: " + ", ".join(stale) + " (run python -m robot_stack.nodes.topics --write)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
