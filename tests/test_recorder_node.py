"""Recorder node over real DDS on loopback: what publishers sent is what the bag holds, read back
with a reader independent of the writer (mcap + mcap-ros2-support), types and counts; plus the
launch files' recording arguments."""
from __future__ import annotations

import pathlib
import threading
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _read_bag(bag_dir: pathlib.Path) -> dict[str, list]:
    """{topic: [(schema name, decoded message)]} from the bag's .mcap via mcap_ros2."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    (mcap_file,) = bag_dir.glob("*.mcap")
    out: dict[str, list] = {}
    with open(mcap_file, "rb") as f:
        for schema, channel, _m, msg in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
            out.setdefault(channel.topic, []).append((schema.name, msg))
    return out


def _log_times_and_data(bag_dir: pathlib.Path) -> dict[str, list[tuple[int, bytes]]]:
    """Per topic, (log time, CDR bytes) of every message in the bag's .mcap, in log-time order."""
    from mcap.reader import make_reader

    (mcap_file,) = bag_dir.glob("*.mcap")
    rows: dict[str, list] = {}
    with open(mcap_file, "rb") as f:
        for _schema, channel, message in make_reader(f).iter_messages(log_time_order=True):
            rows.setdefault(channel.topic, []).append((message.log_time, message.data))
    return rows


class _Spinner:
    """Spins nodes in a thread until stop(), then hands the executor back (as run_node does
    before a node's close(): the recorder drains with it)."""

    def __init__(self, ctx, *nodes):
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=ctx)
        for n in nodes:
            self.executor.add_node(n)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


def _wait(cond, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)  # polling state another thread updates, bounded by timeout_s
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _recorder(ctx, tmp_path, namespace=None, **params):
    """A recorder in ``namespace`` (None: the nodes' default, robot_stack)."""
    from robot_stack.nodes.params import parameter_overrides
    from robot_stack.nodes.recorder_node import RecorderNode

    kwargs = {} if namespace is None else {"namespace": namespace}
    return RecorderNode(context=ctx, **kwargs, parameter_overrides=parameter_overrides(
        {"bag_dir": str(tmp_path / "bags"), "discover_every_s": 0.2, "report_every_s": 0.0, "drain_s": 0.5, **params}))


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback; best-effort images on a loaded machine
def test_recorded_bag_holds_what_was_published(ros_context, tmp_path):
    """A recorder in the default namespace: the table's topics there (typed status and
    /diagnostics too) and a topic found by discovery; not the debug probe, not another
    namespace's topics."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from std_msgs.msg import Int32

    from robot_stack.msg import CommandSent, EpisodeSummary, OperatorCommand, StepRecord
    from robot_stack.msg import FrankaStatus as FrankaStatusMsg
    from robot_stack.nodes import convert, qos
    from robot_stack.recording.bag import bag_info
    from robot_stack.types.status import FrankaStatus, Health

    pub = Node("publisher", context=ros_context)
    # Episode summaries are latched (transient local): those sent before the recorder starts
    # reach it too.
    episodes = pub.create_publisher(EpisodeSummary, "/robot_stack/episodes", qos.EPISODES)
    for i in range(3):
        episodes.publish(EpisodeSummary(episode_id=i, steps=10 + i))
    recorder = _recorder(ros_context, tmp_path)
    spinner = _Spinner(ros_context, pub, recorder)
    try:
        steps = pub.create_publisher(StepRecord, "/robot_stack/steps", qos.STEPS)
        ops = pub.create_publisher(OperatorCommand, "/robot_stack/operator", qos.COMMAND)
        images = pub.create_publisher(Image, "/robot_stack/cameras/front/image_raw", qos.offered("SENSOR"))
        status = pub.create_publisher(FrankaStatusMsg, "/robot_stack/franka/status", qos.EPISODES)
        # volatile, as a node of another project publishes /diagnostics: the recorder adapts to it
        health = pub.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        extra = pub.create_publisher(Int32, "/robot_stack/extra/reading", qos.COMMAND)  # not in the table: discovered
        debug = pub.create_publisher(CommandSent, "/robot_stack/franka/debug/sent", qos.STEPS)  # excluded by default
        other = pub.create_publisher(Int32, "/elsewhere", qos.COMMAND)  # not selected
        arm2 = pub.create_publisher(StepRecord, "/arm2/steps", qos.STEPS)  # another graph's namespace
        for p in (steps, ops, images, status, health, extra):
            _wait(lambda p=p: p.get_subscription_count() >= 1, 15.0, f"the recorder to subscribe {p.topic_name}")
        img = Image(height=8, width=8, encoding="rgb8", step=24)
        img.data = np.arange(192, dtype=np.uint8).tobytes()
        for i in range(40):
            ops.publish(OperatorCommand(intervening=i % 4 == 0, episode_mark=i % 3))
            if i < 15:
                m = StepRecord(episode_id=9, step_index=i, camera_names=["front"], images=[img])
                m.action = np.array([0.1 * (i % 10), 0.0, -0.5], np.float32)
                steps.publish(m)
            if i < 10:
                images.publish(img)
            if i < 5:
                extra.publish(Int32(data=i))
                debug.publish(CommandSent(trigger="x"))
                other.publish(Int32(data=i))
                arm2.publish(StepRecord(episode_id=1, step_index=i))
            if i == 7:
                status.publish(convert.franka_status_to_msg(FrankaStatus(event="ready", counters={"clipped": 3})))
                health.publish(convert.diagnostics_to_msg([Health(name="/robot_stack/franka", level=0, message="ok")], 1.0))
            time.sleep(0.01)  # a steady stream, as a node publishes (best-effort images keep up)
        want = {"/robot_stack/steps": 15, "/robot_stack/operator": 40, "/robot_stack/cameras/front/image_raw": 10,
                "/robot_stack/episodes": 3, "/robot_stack/franka/status": 1, "/diagnostics": 1,
                "/robot_stack/extra/reading": 5}

        def counts():
            return {t: s.messages for t, s in recorder.bag.summary.topics.items()}

        _wait(lambda: all(counts().get(t, 0) >= n for t, n in want.items()), 15.0, "every message in the bag")
    finally:
        spinner.stop()
    recorder.close()
    bag_dir = recorder.bag.path
    assert bag_dir.parent == tmp_path / "bags" and bag_dir.name.startswith("session_")
    got = _read_bag(bag_dir)
    got.pop("/rosout", None)  # the recorder's own log lines
    assert {t: len(v) for t, v in got.items()} == want
    types = {t: {s for s, _ in v} for t, v in got.items()}
    assert types == {"/robot_stack/steps": {"robot_stack/msg/StepRecord"},
                     "/robot_stack/operator": {"robot_stack/msg/OperatorCommand"},
                     "/robot_stack/cameras/front/image_raw": {"sensor_msgs/msg/Image"},
                     "/robot_stack/episodes": {"robot_stack/msg/EpisodeSummary"},
                     "/robot_stack/franka/status": {"robot_stack/msg/FrankaStatus"},
                     "/diagnostics": {"diagnostic_msgs/msg/DiagnosticArray"},
                     "/robot_stack/extra/reading": {"std_msgs/msg/Int32"}}
    assert [m.step_index for _, m in got["/robot_stack/steps"]] == list(range(15))
    assert [m.episode_mark for _, m in got["/robot_stack/operator"]] == [i % 3 for i in range(40)]
    assert [m.steps for _, m in got["/robot_stack/episodes"]] == [10, 11, 12]
    assert [m.data for _, m in got["/robot_stack/extra/reading"]] == list(range(5))
    assert bytes(got["/robot_stack/cameras/front/image_raw"][0][1].data) == bytes(range(192))
    (status_msg,) = [m for _, m in got["/robot_stack/franka/status"]]
    assert (status_msg.event, list(status_msg.counter_names), list(status_msg.counter_values)) == ("ready", ["clipped"], [3])
    assert got["/diagnostics"][0][1].status[0].name == "/robot_stack/franka"
    assert bag_info(bag_dir).custom_data == {"namespace": "/robot_stack"}
    pub.destroy_node()
    recorder.destroy_node()


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback
def test_a_recorder_that_matches_late_still_gets_the_first_state_messages(ros_context, tmp_path):
    """State and camera publishers keep their last samples (qos.offered) and the recorder asks
    for them: what a node published before discovery matched it with the recorder is in the bag.
    A subscriber asking for the table's profile (best effort, volatile) gets nothing old."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.node import Node

    from robot_stack.nodes import qos, topics

    pub = Node("publisher", context=ros_context, namespace=topics.DEFAULT_NAMESPACE)
    poses = topics.publisher(pub, topics.EE_POSE)  # as the franka node makes it
    for i in range(60):  # 1.2 s at 50 Hz, before any recorder exists
        m = PoseStamped()
        m.pose.position.x = float(i)
        poses.publish(m)
    live: list[float] = []
    listener = Node("listener", context=ros_context)
    listener.create_subscription(PoseStamped, topics.EE_POSE.resolve(), lambda m: live.append(m.pose.position.x),
                                 qos.STATE)
    recorder = _recorder(ros_context, tmp_path)
    spinner = _Spinner(ros_context, pub, listener, recorder)
    try:
        _wait(lambda: poses.get_subscription_count() >= 2, 15.0, "the recorder and the listener to match")
        for i in range(60, 70):
            m = PoseStamped()
            m.pose.position.x = float(i)
            poses.publish(m)
            time.sleep(0.02)
        name = topics.EE_POSE.resolve()
        _wait(lambda: recorder.bag.summary.topics.get(name) is not None
              and recorder.bag.summary.topics[name].messages >= 70, 15.0, "70 poses in the bag")
    finally:
        spinner.stop()
    recorder.close()
    got = _read_bag(recorder.bag.path)
    # The publisher keeps 100: all 60 sent before the recorder existed, then the 10 after.
    assert [m.pose.position.x for _, m in got[name]] == [float(i) for i in range(70)]
    assert live and min(live) >= 60.0  # the best-effort, volatile listener: only what came after it matched
    for node in (pub, listener, recorder):
        node.destroy_node()


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback; best-effort images on a loaded machine
def test_selected_topics_and_jpeg_images(ros_context, tmp_path):
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from robot_stack.msg import OperatorCommand
    from robot_stack.nodes import qos

    # A relative pattern is taken in the node's namespace: this recorder runs in /arm1.
    recorder = _recorder(ros_context, tmp_path, topics="cameras/*/image_raw", images="jpeg", bag_prefix="cams",
                         namespace="/arm1")
    pub = Node("publisher", context=ros_context)
    spinner = _Spinner(ros_context, pub, recorder)
    try:
        # Best effort and volatile, as a camera driver of another project publishes: the
        # recorder's request (reliable, transient local) cannot match it until it adapts.
        images = pub.create_publisher(Image, "/arm1/cameras/wrist/image_raw", qos.SENSOR)
        ops = pub.create_publisher(OperatorCommand, "/arm1/operator", qos.COMMAND)
        _wait(lambda: images.get_subscription_count() >= 1, 15.0, "the recorder to subscribe the images")
        topic = recorder.topics.topics["/arm1/cameras/wrist/image_raw"]
        assert (topic.qos.reliability, topic.qos.durability) == (ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)
        img = Image(height=16, width=16, encoding="rgb8", step=48)
        img.data = np.full(768, 200, np.uint8).tobytes()
        for _ in range(6):
            images.publish(img)
            ops.publish(OperatorCommand())
            time.sleep(0.02)
        _wait(lambda: sum(s.messages for s in recorder.bag.summary.topics.values()) >= 6, 15.0, "6 images")
    finally:
        spinner.stop()
    recorder.close()
    assert recorder.bag.path.name.startswith("cams_")
    got = _read_bag(recorder.bag.path)
    assert list(got) == ["/arm1/cameras/wrist/image_raw/compressed"]  # nothing else was selected
    # The bag records the QoS the images came with (best effort, volatile), for ros2 bag play.
    import yaml

    (entry,) = yaml.safe_load((recorder.bag.path / "metadata.yaml").read_text())[
        "rosbag2_bagfile_information"]["topics_with_message_count"]
    (offered,) = entry["topic_metadata"]["offered_qos_profiles"]
    assert (offered["reliability"], offered["durability"]) == ("best_effort", "volatile")
    schema, first = got["/arm1/cameras/wrist/image_raw/compressed"][0]
    assert schema == "sensor_msgs/msg/CompressedImage" and first.format.endswith("jpeg compressed bgr8")
    pub.destroy_node()
    recorder.destroy_node()


@pytest.mark.ros
def test_kept_samples_chooses_what_the_recorder_asks_camera_and_state_publishers_for(ros_context, tmp_path):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from robot_stack.nodes import topics

    want = {True: (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
            False: (ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)}
    for kept, (reliability, durability) in want.items():
        recorder = _recorder(ros_context, tmp_path / str(kept), kept_samples=kept)
        try:
            for name in (topics.EE_POSE.resolve(), topics.CAMERA_IMAGE.resolve(camera="front")):
                q = recorder.topics.topics[name].qos
                assert (q.reliability, q.durability) == (reliability, durability), (kept, name)
            q = recorder.topics.topics[topics.OPERATOR.resolve()].qos  # commands: as the table says either way
            assert (q.reliability, q.durability) == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
        finally:
            recorder.close()
            recorder.destroy_node()


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback
def test_batched_and_per_message_recorders_write_the_same_messages_in_order(ros_context, tmp_path):
    """take_every_s > 0 (the default) takes what arrived in batches; the bag must hold what a
    recorder called back per message holds, each topic in publishing order, with log times that
    do not go back and lie between the publish and the end of the test."""
    from rclpy.node import Node
    from std_msgs.msg import Int32

    from robot_stack.nodes import qos

    batched = _recorder(ros_context, tmp_path / "batched", namespace="/n1", topics="/t/a /t/b", take_every_s=0.05)
    each = _recorder(ros_context, tmp_path / "each", namespace="/n2", topics="/t/a /t/b", take_every_s=0.0)
    pub = Node("publisher", context=ros_context)
    pubs = {name: pub.create_publisher(Int32, name, qos.COMMAND) for name in ("/t/a", "/t/b")}
    spinner = _Spinner(ros_context, pub, batched, each)
    t0 = time.time_ns()
    try:
        _wait(lambda: all(p.get_subscription_count() >= 2 for p in pubs.values()), 15.0, "both recorders to match")
        for i in range(200):
            pubs["/t/a"].publish(Int32(data=i))
            if i % 3 == 0:
                pubs["/t/b"].publish(Int32(data=i))
            time.sleep(0.002)
        _wait(lambda: all(r.bag.summary.messages >= 267 for r in (batched, each)), 15.0, "267 messages in both bags")
        # The batched recorder's subscriptions belong to a node of their own, in its namespace.
        assert ("recorder_subscriptions", "/n1") in pub.get_node_names_and_namespaces()
    finally:
        spinner.stop()
    t1 = time.time_ns()
    got = {}
    for name, recorder in (("batched", batched), ("each", each)):
        recorder.close()
        got[name] = _log_times_and_data(recorder.bag.path)
        recorder.destroy_node()
    for topic, n in (("/t/a", 200), ("/t/b", 67)):
        times = [t for t, _ in got["batched"][topic]]
        assert len(times) == n and times == sorted(times) and t0 <= times[0] and times[-1] <= t1, topic
        assert [d for _, d in got["batched"][topic]] == [d for _, d in got["each"][topic]], topic
    pub.destroy_node()


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback
def test_batched_recorder_with_sim_time_logs_ros_time(ros_context, tmp_path):
    """With use_sim_time the middleware's receive stamps (system clock) become ROS time: 0 before
    the first /clock message, the sim clock's time after it. The recorder's timers run on the
    wall clock: it discovers and takes messages while the sim clock stands still."""
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Int32

    from robot_stack.nodes import qos

    recorder = _recorder(ros_context, tmp_path, namespace="/n3", topics="/t/c", use_sim_time=True)
    pub = Node("publisher", context=ros_context)
    data = pub.create_publisher(Int32, "/t/c", qos.COMMAND)
    clock = pub.create_publisher(Clock, "/clock", 10)
    spinner = _Spinner(ros_context, pub, recorder)
    try:
        _wait(lambda: data.get_subscription_count() >= 1 and clock.get_subscription_count() >= 1, 15.0,
              "the recorder to find /t/c with no /clock yet")
        data.publish(Int32(data=0))  # before any /clock: ROS time 0
        _wait(lambda: recorder.bag.summary.messages >= 1, 15.0, "the first message in the bag")
        sim_s = 1000
        msg = Clock()
        msg.clock.sec = sim_s
        clock.publish(msg)
        _wait(lambda: recorder.get_clock().now().nanoseconds >= sim_s * 10**9, 15.0, "the sim clock")
        for i in range(1, 6):
            data.publish(Int32(data=i))
        _wait(lambda: recorder.bag.summary.messages >= 6, 15.0, "6 messages in the bag")
    finally:
        spinner.stop()
    recorder.close()
    times = [t for t, _ in _log_times_and_data(recorder.bag.path)["/t/c"]]
    assert len(times) == 6 and times[0] == 0, times
    # Received within the test's seconds after the clock said 1000 s (the clock does not run on).
    assert all(sim_s * 10**9 - 15 * 10**9 <= t <= sim_s * 10**9 for t in times[1:]), times
    recorder.destroy_node()
    pub.destroy_node()


@pytest.mark.ros
def test_bad_parameters_stop_the_recorder_at_start_up(ros_context, tmp_path):
    from robot_stack.types.config import ConfigError

    with pytest.raises(ConfigError, match="images"):
        _recorder(ros_context, tmp_path, images="png")
    with pytest.raises(ConfigError, match="chunk_compression"):
        _recorder(ros_context, tmp_path, chunk_compression="lz5")


@pytest.mark.parametrize("launch_file", ["sim.launch.yaml", "session.launch.yaml"])
def test_launch_files_record_by_default_and_record_false_turns_it_off(launch_file, tmp_path, monkeypatch):
    import yaml

    from robot_stack.launch import load_launch

    monkeypatch.setenv("ROBOT_STACK_ROOT", str(ROOT))

    def params(plan, name):
        proc = next((p for p in plan.processes if p.name == name), None)
        if proc is None:
            return None
        out = {}
        for i, a in enumerate(proc.cmd):
            if a == "--params-file":
                for section in (yaml.safe_load(open(proc.cmd[i + 1])) or {}).values():
                    out.update(section["ros__parameters"])
        return out

    plan = load_launch(ROOT / "launch" / launch_file, {"run_dir": str(tmp_path / "run")})
    try:
        p = params(plan, "recorder")
        assert p is not None, "no recorder in the default launch"
        assert p["bag_dir"] == str(tmp_path / "run" / "bags") and p["topics"] == "" and p["exclude"] == ""
        assert p["images"] == ("raw" if launch_file == "sim.launch.yaml" else "jpeg")
        assert params(plan, "live_view") is None  # the live view is opt-in
        assert plan.processes[0].name == "recorder"  # started first, before anything publishes
    finally:
        plan.cleanup()
    plan = load_launch(ROOT / "launch" / launch_file, {"record": "false", "live_view": "true", "live_view_port": "9001"})
    try:
        assert params(plan, "recorder") is None
        assert params(plan, "live_view")["port"] == 9001
    finally:
        plan.cleanup()
    plan = load_launch(ROOT / "launch" / launch_file, {"record_topics": "steps,episodes", "record_images": "jpeg",
                                                       "record_exclude": "policy", "namespace": "arm1"})
    try:
        p = params(plan, "recorder")
        assert (p["topics"], p["images"], p["exclude"]) == ("steps,episodes", "jpeg", "policy")
        recorder = next(p for p in plan.processes if p.name == "recorder")
        assert "__ns:=/arm1" in recorder.cmd  # the recorder runs in the graph's namespace
    finally:
        plan.cleanup()


def test_the_recorder_points_fast_dds_at_its_profile_unless_one_is_set():
    import xml.etree.ElementTree as ET

    from robot_stack.nodes.recorder_node import DDS_PROFILE, use_dds_profile

    env: dict[str, str] = {}
    assert use_dds_profile(env) and env == {"FASTDDS_DEFAULT_PROFILES_FILE": str(DDS_PROFILE)}
    ns = {"d": "http://www.eprosima.com"}
    reader = ET.parse(DDS_PROFILE).getroot().find("d:profiles/d:data_reader", ns)
    assert reader.get("is_default_profile") == "true"
    delay = reader.find("d:times/d:heartbeat_response_delay", ns)
    assert (delay.find("d:sec", ns).text, delay.find("d:nanosec", ns).text) == ("0", "100000000")
    env = {"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    assert use_dds_profile(env) and env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(DDS_PROFILE)
    for own in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/lab/dds.xml"}, {"FASTRTPS_DEFAULT_PROFILES_FILE": "/lab/dds.xml"},
                {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}):
        env = dict(own)
        assert not use_dds_profile(env) and env == own
