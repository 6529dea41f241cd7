"""The session bag without a ROS graph: messages serialised by rclpy, written by SessionBag
(rosbags), read back by a reader independent of the writer (the ``mcap`` package with
``mcap-ros2-support``'s decoder), and the metadata ``ros2 bag info`` reads."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _serialize(msg) -> bytes:
    from rclpy.serialization import serialize_message

    return serialize_message(msg)


def _image(h=48, w=64, seed=0, encoding="rgb8"):
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(seed)
    arr = (np.indices((h, w)).sum(0)[..., None] * np.array([1, 2, 3]) + rng.integers(0, 8, (h, w, 3))) % 256
    msg = Image(height=h, width=w, encoding=encoding, step=w * 3)
    msg.header.frame_id = "front_optical_frame"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
    msg.data = arr.astype(np.uint8).tobytes()
    return msg, arr.astype(np.uint8)


def _read_mcap(bag_dir: pathlib.Path):
    """Every message of the bag's .mcap, decoded by mcap_ros2: [(topic, schema name, encoding, msg)]."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    (mcap_file,) = bag_dir.glob("*.mcap")
    out = []
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        for schema, channel, _message, decoded in reader.iter_decoded_messages():
            out.append((channel.topic, schema.name, schema.encoding, channel.message_encoding, decoded))
    return out


def _session_messages():
    """(topic, type, [rclpy messages]) of several session topics, typed status messages too."""
    from geometry_msgs.msg import PoseStamped

    from robot_stack.msg import EpisodeSummary, OperatorCommand, StepRecord
    from robot_stack.nodes import convert
    from robot_stack.types.status import FrankaStatus, Health, LearnerStats, OperatorDecision, RobotStats

    img, _ = _image()
    steps = []
    for i in range(7):
        s = StepRecord(episode_id=3, step_index=i, camera_names=["front"], images=[img],
                       proprio_names=["ee_pos_x"], intervention=bool(i % 2), is_first=i == 0)
        s.proprio = np.array([0.1 * i], np.float32)
        s.action = np.array([0.5, -0.25, 0.0, 1.0], np.float32)
        s.policy_action = np.array([0.1, 0.2, 0.3, -1.0], np.float32)
        steps.append(s)
    poses = []
    for i in range(20):
        p = PoseStamped()
        p.header.frame_id = "base"
        p.pose.position.x = 0.01 * i
        p.pose.orientation.w = 1.0
        poses.append(p)
    ops = [OperatorCommand(intervening=i % 3 == 0, gripper=-1, episode_mark=i % 3) for i in range(11)]
    return [
        ("/robot_stack/steps", "robot_stack/msg/StepRecord", steps),
        ("/robot_stack/ee_pose", "geometry_msgs/msg/PoseStamped", poses),
        ("/robot_stack/operator", "robot_stack/msg/OperatorCommand", ops),
        ("/robot_stack/cameras/front/image_raw", "sensor_msgs/msg/Image", [_image(seed=k)[0] for k in range(5)]),
        ("/robot_stack/episodes", "robot_stack/msg/EpisodeSummary", [EpisodeSummary(episode_id=3, steps=7, success=True)]),
        ("/robot_stack/learner/stats", "robot_stack/msg/LearnerStats", [convert.learner_stats_to_msg(LearnerStats(
            updates=4, updates_per_s=1.5, metrics={"critic_loss": 0.25},
            robots=(RobotStats(robot_id="arm1", transitions=9, active=True),), stamp_s=12.5))]),
        ("/robot_stack/franka/status", "robot_stack/msg/FrankaStatus", [convert.franka_status_to_msg(FrankaStatus(
            event="home_done", detail="x", mode="policy", counters={"clipped": 2}, stamp_s=3.0))]),
        ("/robot_stack/sim/operator_debug", "robot_stack/msg/OperatorDecision", [convert.operator_decision_to_msg(
            OperatorDecision(intervening=True, started=True, probability=0.5, q_policy=None, q_expert=1.0))]),
        ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", [convert.diagnostics_to_msg(
            [Health(name="/robot_stack/franka", level=1, message="slow", values={"rate_hz": 990})], 4.0)]),
    ]


def _write(bag_dir, streams, **kwargs):
    from robot_stack.recording.bag import QosSettings, SessionBag

    t = 1_700_000_000_000_000_000
    kwargs.setdefault("custom_data", {"namespace": "/robot_stack"})
    with SessionBag(bag_dir, **kwargs) as bag:
        for topic, msgtype, _ in streams:
            bag.add_topic(topic, msgtype, QosSettings(reliable=topic != "/robot_stack/ee_pose", depth=7))
        # interleaved in time, as a recorder receives them
        for i in range(max(len(m) for _, _, m in streams)):
            for topic, _, msgs in streams:
                if i < len(msgs):
                    t += 1_000_000
                    bag.write(topic, _serialize(msgs[i]), t)
    return bag.summary


def _session_types() -> set[str]:
    """Every message type of the topic table, every message of our msg/ folder, and the types the
    recorder adds (/rosout's Log, compressed images)."""
    from robot_stack.nodes import topics

    own = {f"robot_stack/msg/{p.stem}" for p in (ROOT / "msg").glob("*.msg")}
    return {t.type for t in topics.TOPICS} | own | {"rcl_interfaces/msg/Log", "sensor_msgs/msg/CompressedImage"}


def test_type_hashes_and_schemas_match_rosidl():
    """The bag's type hashes are the ones rosidl generated for the installed messages (what
    ros2 bag play checks), for every type of the topic table and every message in msg/: the
    recorder knows each of them."""
    from robot_stack.recording.schemas import MessageTypes, ament_prefixes

    types = MessageTypes()
    checked, wanted = set(), _session_types()
    assert {"robot_stack/msg/LearnerStats", "robot_stack/msg/RobotStats", "robot_stack/msg/FrankaStatus",
            "robot_stack/msg/CommandSent", "robot_stack/msg/OperatorDecision",
            "diagnostic_msgs/msg/DiagnosticArray"} <= wanted
    for msgtype in sorted(wanted):
        text, rihs01 = types.definition(msgtype)  # UnknownMessageType if the recorder could not record it
        assert isinstance(text, str) and text
        pkg, kind, name = msgtype.split("/")
        files = [p / "share" / pkg / kind / f"{name}.json" for p in ament_prefixes()]
        found = next((f for f in files if f.is_file()), None)
        if found is None:
            continue
        want = {h["type_name"]: h["hash_string"] for h in json.loads(found.read_text())["type_hashes"]}[msgtype]
        assert rihs01 == want, msgtype
        checked.add(msgtype)
    # Every type has its rosidl description installed here (the colcon build and the wheels).
    assert checked == wanted, f"no rosidl type description to compare with: {sorted(wanted - checked)}"


def test_bag_reads_back_with_an_independent_reader(tmp_path):
    streams = _session_messages()
    bag_dir = tmp_path / "session_bag"
    summary = _write(bag_dir, streams)
    assert summary.messages == sum(len(m) for _, _, m in streams)

    got = _read_mcap(bag_dir)
    for topic, msgtype, msgs in streams:
        mine = [g for g in got if g[0] == topic]
        assert len(mine) == len(msgs), topic
        assert {(g[1], g[2], g[3]) for g in mine} == {(msgtype, "ros2msg", "cdr")}, topic
    steps = [g[4] for g in got if g[0] == "/robot_stack/steps"]
    assert [s.step_index for s in steps] == list(range(7))
    assert [s.intervention for s in steps] == [bool(i % 2) for i in range(7)]
    np.testing.assert_array_equal(np.asarray(steps[2].action, np.float32), [0.5, -0.25, 0.0, 1.0])
    _, arr = _image()
    np.testing.assert_array_equal(np.frombuffer(bytes(steps[0].images[0].data), np.uint8).reshape(arr.shape), arr)
    ops = [g[4] for g in got if g[0] == "/robot_stack/operator"]
    assert [o.episode_mark for o in ops] == [i % 3 for i in range(11)]
    poses = [g[4] for g in got if g[0] == "/robot_stack/ee_pose"]
    assert poses[5].pose.position.x == pytest.approx(0.05) and poses[5].header.frame_id == "base"


def test_metadata_is_what_ros2_bag_info_reads(tmp_path):
    streams = _session_messages()
    bag_dir = tmp_path / "b"
    _write(bag_dir, streams)
    meta = yaml.safe_load((bag_dir / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9 and meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["b.mcap"] and (bag_dir / "b.mcap").is_file()
    assert meta["message_count"] == sum(len(m) for _, _, m in streams)
    by_topic = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    for topic, msgtype, msgs in streams:
        t = by_topic[topic]
        assert t["message_count"] == len(msgs)
        md = t["topic_metadata"]
        assert md["type"] == msgtype and md["serialization_format"] == "cdr"
        assert md["type_description_hash"].startswith("RIHS01_")
        (qos,) = md["offered_qos_profiles"]
        assert qos["reliability"] == ("best_effort" if topic == "/robot_stack/ee_pose" else "reliable")
        assert qos["depth"] == 7 and qos["durability"] == "volatile" and qos["history"] == "keep_last"
    assert meta["duration"]["nanoseconds"] > 0 and meta["starting_time"]["nanoseconds_since_epoch"] > 0


def test_bag_info_and_read_messages_round_trip(tmp_path):
    from robot_stack.recording.bag import bag_info, find_bag, read_messages

    streams = _session_messages()
    bags = tmp_path / "bags"
    _write(bags / "session_2024_01_01-00_00_00", streams[:2])
    _write(bags / "session_2024_01_02-00_00_00", streams)
    assert find_bag(bags).name == "session_2024_01_02-00_00_00"  # the newest
    info = bag_info(bags)
    assert {t: s.messages for t, s in info.topics.items()} == {t: len(m) for t, _, m in streams}
    assert "/robot_stack/steps" in info.describe() and "namespace: /robot_stack" in info.describe()
    assert info.custom_data == {"namespace": "/robot_stack"}
    stats = [m for m in read_messages(bags, ["/robot_stack/learner/stats"])]
    assert [m.msgtype for m in stats] == ["robot_stack/msg/LearnerStats"]
    raw = list(read_messages(bags, ["/robot_stack/operator"]))
    assert [m.data for m in raw] == [_serialize(o) for o in streams[2][2]]
    assert all(m.msgtype == "robot_stack/msg/OperatorCommand" for m in raw)
    times = [m.t_ns for m in read_messages(bags)]
    assert times == sorted(times)
    with pytest.raises(FileNotFoundError):
        find_bag(tmp_path / "nothing")


def test_jpeg_mode_stores_compressed_images(tmp_path):
    import cv2

    from sensor_msgs.msg import Image

    streams = _session_messages()
    depth = Image(height=4, width=5, encoding="16UC1", step=10)
    depth_arr = np.arange(20, dtype=np.uint16).reshape(4, 5) * 1000
    depth.data = depth_arr.tobytes()
    streams.append(("/robot_stack/cameras/front/depth/image_raw", "sensor_msgs/msg/Image", [depth]))
    summary = _write(tmp_path / "j", streams, images="jpeg", jpeg_quality=95)
    assert "/robot_stack/cameras/front/image_raw/compressed" in summary.topics
    assert "/robot_stack/cameras/front/image_raw" not in summary.topics
    got = _read_mcap(tmp_path / "j")
    imgs = [g for g in got if g[0] == "/robot_stack/cameras/front/image_raw/compressed"]
    assert len(imgs) == 5 and {g[1] for g in imgs} == {"sensor_msgs/msg/CompressedImage"}
    first = imgs[0][4]
    assert first.format == "rgb8; jpeg compressed bgr8"
    assert first.header.frame_id == "front_optical_frame" and first.header.stamp.nanosec == 345
    _, arr = _image(seed=0)
    decoded = cv2.imdecode(np.frombuffer(bytes(first.data), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert np.abs(decoded.astype(int) - arr.astype(int)).mean() < 6.0  # lossy but the same picture
    (d,) = [g[4] for g in got if g[0] == "/robot_stack/cameras/front/depth/image_raw/compressed"]
    assert d.format == "16UC1; png compressed"
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(bytes(d.data), np.uint8), cv2.IMREAD_UNCHANGED), depth_arr)
    # step records keep their images raw whatever the mode (a replay must get exactly what the learner got)
    assert summary.topics["/robot_stack/steps"].msgtype == "robot_stack/msg/StepRecord"


def test_unknown_types_fail_early_and_installed_ones_are_found(tmp_path):
    from robot_stack.recording.bag import SessionBag
    from robot_stack.recording.schemas import MessageTypes, UnknownMessageType

    share = tmp_path / "prefix" / "share" / "my_msgs" / "msg"
    share.mkdir(parents=True)
    (share / "Reading.msg").write_text("std_msgs/Header header\nmy_msgs/Unit unit\nfloat64[3] value\n")
    (share / "Unit.msg").write_text("string name\n")
    types = MessageTypes([tmp_path / "prefix"])
    text, rihs01 = types.definition("my_msgs/msg/Reading")
    assert "MSG: my_msgs/Unit" in text and rihs01.startswith("RIHS01_")
    with SessionBag(tmp_path / "bag", types) as bag:
        with pytest.raises(UnknownMessageType, match="nobody_msgs/msg/Nothing"):
            bag.add_topic("/x", "nobody_msgs/msg/Nothing")
        bag.add_topic("/r", "my_msgs/msg/Reading")
        msg = types.make("my_msgs/msg/Reading", header=types.make("std_msgs/msg/Header", stamp=types.make(
            "builtin_interfaces/msg/Time", sec=1, nanosec=2), frame_id="f"), unit=types.make("my_msgs/msg/Unit", name="m"),
            value=np.array([1.0, 2.0, 3.0]))
        bag.write("/r", types.serialize(msg, "my_msgs/msg/Reading"), 5)
    (topic, schema, _, _, decoded) = _read_mcap(tmp_path / "bag")[0]
    assert (topic, schema, decoded.unit.name, list(decoded.value)) == ("/r", "my_msgs/msg/Reading", "m", [1.0, 2.0, 3.0])


def test_topic_selection_comes_from_the_topic_table():
    from robot_stack.nodes import topics
    from robot_stack.nodes.raw_topics import default_selection, table_specs
    from robot_stack.recording.topics import TopicSelection

    table = table_specs("/arm1", ("front", "wrist"))
    names = {t.name for t in table}
    assert {t.resolve("arm1", camera="wrist") for t in topics.TOPICS} <= names  # every entry, in the namespace
    assert "/diagnostics" in names and "/rosout" in names
    assert not any(n.startswith("/robot_stack/") for n in names)
    default = default_selection("", "", "/arm1")
    chosen = {t.name for t in default.known(table)}
    assert {"/arm1/steps", "/arm1/episodes", "/arm1/policy", "/arm1/operator", "/arm1/cameras/front/image_raw",
            "/arm1/ee_pose", "/arm1/franka/cmd_twist", "/arm1/franka/status", "/arm1/learner/stats",
            "/arm1/sim/operator_debug", "/diagnostics", "/rosout"} <= chosen
    assert names - chosen == {"/arm1/franka/debug/sent", "/arm1/spacemouse/joy", "/arm1/spacemouse/twist",
                             "/arm1/sim/operator_joy"}
    assert default.matches("/arm1/some/new_topic")  # not in the table: found by discovery
    assert not default.matches("/arm2/steps") and not default.matches("/robot_stack/steps")
    chosen = default_selection("steps, cameras/*/image_raw /arm1/spacemouse/joy", "*/wrist/*", "/arm1")
    # fnmatch: * matches across /, so the depth images match cameras/*/image_raw too
    assert {t.name for t in chosen.known(table)} == {
        "/arm1/steps", "/arm1/cameras/front/image_raw", "/arm1/cameras/front/depth/image_raw", "/arm1/spacemouse/joy"}
    assert default_selection("", "policy", "/arm1").matches("/arm1/steps")
    assert not default_selection("", "policy", "/arm1").matches("/arm1/policy")
    assert TopicSelection.parse("a", "", "/").include == ("/a",)
