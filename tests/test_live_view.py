"""Live view node: a WebSocket client speaking Foxglove's protocol connects, sees the session's
topics advertised (those of the node's namespace), subscribes, and receives the messages (decoded
here with the advertised schemas: ros2msg through mcap-ros2-support, Foxglove's protobuf schema
through protobuf, JSON). The node holds a ROS subscription only while a client subscribes. Also:
the layout file in foxglove/ is the one the code builds, on the topic table's names."""
from __future__ import annotations

import base64
import json
import pathlib
import struct
import threading
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


NS = "/arm1"


class _Publisher:
    """Publishes a small session in /arm1 (EE pose, step records, typed learner stats, a camera)
    at 20 Hz, and step records of another graph (/arm2)."""

    def __init__(self, node):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import Image

        from robot_stack.msg import LearnerStats, StepRecord
        from robot_stack.nodes import qos

        self.pose_pub = node.create_publisher(PoseStamped, f"{NS}/ee_pose", qos.STATE)
        self.step_pub = node.create_publisher(StepRecord, f"{NS}/steps", qos.STEPS)
        self.stats_pub = node.create_publisher(LearnerStats, f"{NS}/learner/stats", qos.EPISODES)
        self.image_pub = node.create_publisher(Image, f"{NS}/cameras/front/image_raw", qos.SENSOR)
        self.other_pub = node.create_publisher(StepRecord, "/arm2/steps", qos.STEPS)
        self.i = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._classes = (PoseStamped, StepRecord, Image)

    def _run(self):
        from robot_stack.nodes import convert
        from robot_stack.types.status import LearnerStats

        PoseStamped, StepRecord, Image = self._classes
        img = Image(height=32, width=32, encoding="rgb8", step=96)
        img.data = np.tile(np.array([255, 0, 0], np.uint8), 32 * 32).tobytes()  # red
        while not self._stop.is_set():
            self.i += 1
            pose = PoseStamped()
            pose.header.frame_id = "base"
            pose.pose.position.x, pose.pose.position.z, pose.pose.orientation.w = 0.5, 0.25, 1.0
            self.pose_pub.publish(pose)
            step = StepRecord(episode_id=4, step_index=self.i, intervention=self.i % 2 == 0)
            step.action = np.array([0.25, -0.5, 1.0], np.float32)
            step.policy_action = np.array([0.0, 0.5, -1.0], np.float32)
            self.step_pub.publish(step)
            self.other_pub.publish(step)
            self.stats_pub.publish(convert.learner_stats_to_msg(LearnerStats(
                updates=self.i, updates_per_s=2.5, metrics={"critic_loss": 0.5, "alpha": float("nan")})))
            self.image_pub.publish(img)
            self._stop.wait(0.05)  # publishing rate

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _decode(channel: dict, payload: bytes):
    """A message of an advertised channel, decoded with the channel's own schema."""
    if channel["encoding"] == "json":
        return json.loads(payload)
    if channel["encoding"] == "cdr":
        from mcap.records import Schema
        from mcap_ros2.decoder import DecoderFactory

        schema = Schema(id=channel["id"], name=channel["schemaName"], encoding=channel["schemaEncoding"],
                        data=channel["schema"].encode())
        return DecoderFactory().decoder_for("cdr", schema)(payload)
    assert channel["encoding"] == "protobuf" and channel["schemaEncoding"] == "protobuf"
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"])).file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"])).FromString(payload)


@pytest.mark.ros
@pytest.mark.timing  # DDS discovery and a WebSocket client against wall-clock timeouts
def test_foxglove_client_receives_the_session(ros_context, spin, tmp_path):
    from rclpy.node import Node
    from websockets.sync.client import connect

    from robot_stack.nodes.live_view_node import LiveViewNode
    from robot_stack.nodes.params import parameter_overrides

    pub_node = Node("session", context=ros_context)
    view = LiveViewNode(context=ros_context, namespace=NS, parameter_overrides=parameter_overrides(
        {"port": 0, "discover_every_s": 0.2, "subscribe_every_s": 0.1}))
    spin(pub_node, view)
    port = view.server.port
    wanted = {f"{NS}/{t}" for t in ("ee_pose", "live/transforms", "steps", "learner/stats", "live/learner_metrics",
                                    "cameras/front/image_raw/compressed")}
    with _Publisher(pub_node), connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"],
                                       open_timeout=10) as ws:
        info = json.loads(ws.recv(timeout=10))
        assert info["op"] == "serverInfo" and info["name"] == "robot_stack"
        channels: dict[str, dict] = {}
        end = time.monotonic() + 20
        while not wanted <= set(channels) and time.monotonic() < end:
            msg = json.loads(ws.recv(timeout=20))
            if msg["op"] == "advertise":
                channels.update({c["topic"]: c for c in msg["channels"]})
        assert wanted <= set(channels), f"advertised: {sorted(channels)}"
        assert channels[f"{NS}/steps"]["schemaName"] == "robot_stack/msg/StepRecord"
        assert channels[f"{NS}/steps"]["schemaEncoding"] == "ros2msg"
        assert channels[f"{NS}/learner/stats"]["schemaName"] == "robot_stack/msg/LearnerStats"
        assert "RobotStats[] robots" in channels[f"{NS}/learner/stats"]["schema"]  # with the types it uses
        assert channels[f"{NS}/live/transforms"]["schemaName"] == "foxglove.FrameTransforms"
        # Only this graph's namespace (and the ROS-wide /rosout, /diagnostics).
        assert not [t for t in channels if not t.startswith(NS + "/") and t not in ("/rosout", "/diagnostics")]
        # Nothing watched yet: no ROS subscription.
        assert all(t.subscription is None for t in view.topics.topics.values())

        subs = {i: channels[t] for i, t in enumerate(sorted(wanted))}
        ws.send(json.dumps({"op": "subscribe",
                            "subscriptions": [{"id": i, "channelId": c["id"]} for i, c in subs.items()]}))
        got: dict[str, list] = {}
        end = time.monotonic() + 20
        while any(len(got.get(t, [])) < 3 for t in wanted) and time.monotonic() < end:
            frame = ws.recv(timeout=20)
            if isinstance(frame, bytes) and frame[0] == 1:
                sub_id, _t_ns = struct.unpack_from("<IQ", frame, 1)
                channel = subs[sub_id]
                got.setdefault(channel["topic"], []).append(_decode(channel, frame[13:]))
        assert all(len(got.get(t, [])) >= 3 for t in wanted), (
            f"received {({t: len(v) for t, v in got.items()})}; the node wants {sorted(view.server.wanted_topics())}, "
            f"subscribed {sorted(n for n, t in view.topics.topics.items() if t.subscription is not None)}, "
            f"skipped {view.topics.skipped}, conversion errors {view.server.errors}")

        pose = got[f"{NS}/ee_pose"][-1]
        assert pose.header.frame_id == "base" and pose.pose.position.x == pytest.approx(0.5)
        step = got[f"{NS}/steps"][-1]
        assert list(step.action) == pytest.approx([0.25, -0.5, 1.0]) and step.episode_id == 4
        assert list(step.policy_action) == pytest.approx([0.0, 0.5, -1.0])
        stats = got[f"{NS}/learner/stats"][-1]
        assert stats.updates > 0 and stats.updates_per_s == 2.5 and list(stats.metric_names) == ["critic_loss", "alpha"]
        assert got[f"{NS}/live/learner_metrics"][-1] == {"critic_loss": 0.5, "alpha": None}  # NaN is no JSON
        (tf,) = got[f"{NS}/live/transforms"][-1].transforms
        assert (tf.parent_frame_id, tf.child_frame_id) == ("base", "ee")
        assert (tf.translation.x, tf.translation.z, tf.rotation.w) == pytest.approx((0.5, 0.25, 1.0))
        image = got[f"{NS}/cameras/front/image_raw/compressed"][-1]
        import cv2

        bgr = cv2.imdecode(np.frombuffer(bytes(image.data), np.uint8), cv2.IMREAD_COLOR)
        assert bgr.shape == (32, 32, 3) and bgr[..., 2].mean() > 200 and bgr[..., 0].mean() < 40  # red

        # Unsubscribed: the ROS subscriptions go too.
        ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": list(subs)}))
        end = time.monotonic() + 10
        while any(t.subscription is not None for t in view.topics.topics.values()) and time.monotonic() < end:
            time.sleep(0.05)  # the node matches its subscriptions every 0.1 s
        assert all(t.subscription is None for t in view.topics.topics.values())
    view.close()


def test_layout_file_is_the_built_layout():
    from robot_stack.nodes import topics
    from robot_stack.recording.layout import SHOWN, layout_json

    shipped = (ROOT / "foxglove" / "robot_stack_layout.json").read_text()
    assert shipped == layout_json(), "regenerate: python -m robot_stack.recording.layout foxglove/robot_stack_layout.json"
    layout = json.loads(shipped)
    text = json.dumps(layout)
    for path in ("/robot_stack/cameras/front/image_raw/compressed", "/robot_stack/ee_pose",
                 "/robot_stack/operator.intervening", "/robot_stack/steps.policy_action[0]",
                 "/robot_stack/steps.action[0]", "/robot_stack/episodes.success_rate",
                 "/robot_stack/learner/stats.updates_per_s", "/robot_stack/live/learner_metrics.critic_loss",
                 "/robot_stack/live/transforms", "/diagnostics", "/rosout"):
        assert path in text, path
    # The topics it shows are the table's (renamed there, the layout follows or this fails).
    assert set(SHOWN) <= {t.name for t in topics.TOPICS}
    other = layout_json("arm1")
    assert "/arm1/steps.action[0]" in other and "/robot_stack/" not in other
