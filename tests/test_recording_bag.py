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
    """(topic, type, [rclpy messages]) of several session topics."""
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import String

    from robot_stack.msg import EpisodeSummary, OperatorCommand, StepRecord

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
        ("/robot_stack/learner/stats", "std_msgs/msg/String", [String(data=json.dumps({"updates": 4}))]),
    ]


def _write(bag_dir, streams, **kwargs):
    from robot_stack.recording.bag import QosSettings, SessionBag

    t = 1_700_000_000_000_000_000
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


def test_type_hashes_and_schemas_match_rosidl():
    """The bag's type hashes are the ones rosidl generated for the installed messages (what
    ros2 bag play checks), for every type of the session table and our own messages."""
    from robot_stack.recording.schemas import MessageTypes, ament_prefixes
    from robot_stack.recording.topics import SESSION_TOPICS

    types = MessageTypes()
    checked = 0
    for msgtype in sorted({t.msgtype for t in SESSION_TOPICS} | {"sensor_msgs/msg/CompressedImage"}):
        pkg, kind, name = msgtype.split("/")
        files = [p / "share" / pkg / kind / f"{name}.json" for p in ament_prefixes()]
        found = next((f for f in files if f.is_file()), None)
        if found is None:
            continue
        want = {h["type_name"]: h["hash_string"] for h in json.loads(found.read_text())["type_hashes"]}[msgtype]
        text, rihs01 = types.definition(msgtype)
        assert rihs01 == want, msgtype
        assert isinstance(text, str)
        checked += 1
    assert checked >= 14, f"only {checked} types had a rosidl type description to compare with"


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
    assert "/robot_stack/steps" in info.describe()
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


def test_topic_selection():
    from robot_stack.recording.topics import SESSION_TOPICS, TopicSelection

    default = TopicSelection.parse("", "")
    names = {t.name for t in default.known()}
    assert {"/robot_stack/steps", "/robot_stack/episodes", "/robot_stack/policy", "/robot_stack/operator",
            "/robot_stack/cameras/front/image_raw", "/robot_stack/ee_pose", "/robot_stack/franka/cmd_twist",
            "/robot_stack/franka/status", "/robot_stack/learner/stats", "/rosout"} <= names
    assert not default.matches("/robot_stack/franka/debug/sent")
    assert not default.matches("/robot_stack/spacemouse/joy")  # repeats /robot_stack/operator
    assert default.matches("/robot_stack/some/new_topic") and not default.matches("/other")
    chosen = TopicSelection.parse("steps, cameras/*/image_raw /robot_stack/spacemouse/joy", "*/wrist/*",
                                  namespace="/robot_stack")
    # fnmatch: * matches across /, so the depth images match cameras/*/image_raw too
    assert {t.name for t in chosen.known(SESSION_TOPICS)} == {
        "/robot_stack/steps", "/robot_stack/cameras/front/image_raw", "/robot_stack/cameras/front/depth/image_raw",
        "/robot_stack/spacemouse/joy"}
    assert TopicSelection.parse("", "/robot_stack/policy").matches("/robot_stack/steps")
    assert not TopicSelection.parse("", "/robot_stack/policy").matches("/robot_stack/policy")
