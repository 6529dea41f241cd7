"""The session's topics as the recorder and the live view see them, and their selection (ROS-free).

:data:`SESSION_TOPICS` lists every topic a session publishes, with its message type and the name
of its QoS profile in ``robot_stack/nodes/qos.py``. The recorder subscribes to the selected ones
at start-up, before their publishers exist, so nothing a node publishes early is missed; topics
not in the table that match the selection are found by discovery (their QoS then follows the
publishers', as ``ros2 bag record`` does).

A selection is a list of patterns (``fnmatch``: ``*`` matches across ``/``) minus exclusions. A
pattern without a leading ``/`` is relative to the node's namespace.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the session."""

    name: str
    """Absolute topic name."""
    msgtype: str
    """Message type, ``pkg/msg/Name``."""
    qos: str
    """QoS profile name in robot_stack.nodes.qos (SENSOR, STATE, COMMAND, STEPS, EPISODES, POLICY) or ROSOUT."""
    json: bool = False
    """A std_msgs/String carrying one JSON object (the live view serves it as JSON)."""


def _camera_topics(camera: str) -> list[TopicSpec]:
    base = f"/robot_stack/cameras/{camera}"
    return [TopicSpec(f"{base}/image_raw", "sensor_msgs/msg/Image", "SENSOR"),
            TopicSpec(f"{base}/camera_info", "sensor_msgs/msg/CameraInfo", "SENSOR"),
            TopicSpec(f"{base}/depth/image_raw", "sensor_msgs/msg/Image", "SENSOR"),
            TopicSpec(f"{base}/pose", "geometry_msgs/msg/PoseStamped", "EPISODES")]


SESSION_TOPICS: tuple[TopicSpec, ...] = (
    # cameras (sim world or camera nodes); the sim world also latches each camera's pose
    *_camera_topics("front"),
    *_camera_topics("wrist"),
    # robot state (franka node)
    TopicSpec("/robot_stack/ee_pose", "geometry_msgs/msg/PoseStamped", "STATE"),
    TopicSpec("/robot_stack/franka/ee_twist", "geometry_msgs/msg/TwistStamped", "STATE"),
    TopicSpec("/robot_stack/franka/joint_states", "sensor_msgs/msg/JointState", "STATE"),
    TopicSpec("/robot_stack/franka/gripper_width", "std_msgs/msg/Float32", "STATE"),
    TopicSpec("/robot_stack/franka/status", "std_msgs/msg/String", "EPISODES", json=True),
    # operator (SpaceMouse node; the sim world's simulated operator)
    TopicSpec("/robot_stack/operator", "robot_stack/msg/OperatorCommand", "COMMAND"),
    TopicSpec("/robot_stack/spacemouse/joy", "sensor_msgs/msg/Joy", "SENSOR"),
    TopicSpec("/robot_stack/spacemouse/twist", "geometry_msgs/msg/TwistStamped", "SENSOR"),
    TopicSpec("/robot_stack/sim/operator_joy", "sensor_msgs/msg/Joy", "COMMAND"),
    TopicSpec("/robot_stack/sim/operator_debug", "std_msgs/msg/String", "STATE", json=True),
    # commands to the robot (actor; sim world's home poses)
    TopicSpec("/robot_stack/franka/cmd_twist", "geometry_msgs/msg/TwistStamped", "COMMAND"),
    TopicSpec("/robot_stack/franka/gripper_cmd", "std_msgs/msg/Float32", "COMMAND"),
    TopicSpec("/robot_stack/franka/home", "std_msgs/msg/Empty", "COMMAND"),
    TopicSpec("/robot_stack/franka/home_to", "geometry_msgs/msg/PoseStamped", "COMMAND"),
    # learning: step records, episodes, policy versions, learner stats
    TopicSpec("/robot_stack/steps", "robot_stack/msg/StepRecord", "STEPS"),
    TopicSpec("/robot_stack/episodes", "robot_stack/msg/EpisodeSummary", "EPISODES"),
    TopicSpec("/robot_stack/episode/reset", "std_msgs/msg/UInt64", "COMMAND"),
    TopicSpec("/robot_stack/episode/reset_done", "std_msgs/msg/UInt64", "COMMAND"),
    TopicSpec("/robot_stack/sim/success", "std_msgs/msg/Bool", "STATE"),
    TopicSpec("/robot_stack/policy", "robot_stack/msg/PolicyWeights", "POLICY"),
    TopicSpec("/robot_stack/learner/stats", "std_msgs/msg/String", "EPISODES", json=True),
    # every node's log
    TopicSpec("/rosout", "rcl_interfaces/msg/Log", "ROSOUT"),
)
"""Every topic of a session (sim or real), with type and QoS profile name."""

DEFAULT_RECORD = ("/robot_stack/*", "/rosout")
"""What the recorder records unless told otherwise: the whole session and the nodes' logs."""

DEFAULT_EXCLUDE = ("/robot_stack/franka/debug/*", "/robot_stack/spacemouse/*")
"""Left out of the default selection: latency probes (debug_latency), and the SpaceMouse node's
raw Joy/Twist streams, which repeat what ``/robot_stack/operator`` carries (axes, twist, buttons'
effects) at the same rate; naming them in the selection records them."""

STEPS_TOPIC = "/robot_stack/steps"
POLICY_TOPIC = "/robot_stack/policy"


def split_patterns(text: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (commas or whitespace between patterns)."""
    return [p for p in text.replace(",", " ").split() if p]


def absolute(pattern: str, namespace: str = "/") -> str:
    """A pattern with a leading ``/``: relative ones are taken in ``namespace``."""
    if pattern.startswith("/"):
        return pattern
    return namespace.rstrip("/") + "/" + pattern


@dataclass(frozen=True)
class TopicSelection:
    """Which topics to take: any matching ``include`` and none of ``exclude`` (fnmatch patterns)."""

    include: tuple[str, ...] = DEFAULT_RECORD
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE

    @classmethod
    def parse(cls, include: str, exclude: str, namespace: str = "/",
              default_include: Sequence[str] = DEFAULT_RECORD,
              default_exclude: Sequence[str] = DEFAULT_EXCLUDE) -> "TopicSelection":
        """From the nodes' string parameters: empty ``include`` means the defaults; the default
        exclusions apply only to the default selection (naming a topic records it)."""
        inc = split_patterns(include)
        exc = split_patterns(exclude)
        if not inc:
            inc, exc = list(default_include), list(default_exclude) + exc
        return cls(tuple(absolute(p, namespace) for p in inc), tuple(absolute(p, namespace) for p in exc))

    def matches(self, topic: str) -> bool:
        return (any(fnmatch.fnmatchcase(topic, p) for p in self.include)
                and not any(fnmatch.fnmatchcase(topic, p) for p in self.exclude))

    def known(self, table: Iterable[TopicSpec] = SESSION_TOPICS) -> list[TopicSpec]:
        """The table's topics this selection takes."""
        return [t for t in table if self.matches(t.name)]


def spec_of(topic: str, table: Iterable[TopicSpec] = SESSION_TOPICS) -> TopicSpec | None:
    return next((t for t in table if t.name == topic), None)


__all__ = ["DEFAULT_EXCLUDE", "DEFAULT_RECORD", "SESSION_TOPICS", "TopicSelection", "TopicSpec", "absolute",
           "spec_of", "split_patterns"]
