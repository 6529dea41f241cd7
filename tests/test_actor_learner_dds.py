"""Actor <-> learner over real DDS on loopback, with fake cameras, robot state and operator.

The actor starts without a spec and builds its policy from the learner's first weights; the
learner must receive step records whose intervention flags follow the operator, label them
(RLIF: the policy step before each takeover gets -1), train, and get at least one newer
weight version applied by the actor.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.timing]  # timing: processes over DDS on loopback, learning within a deadline

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("torch")
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from robot_stack.msg import EpisodeSummary, OperatorCommand, StepRecord  # noqa: E402
from robot_stack.nodes import actor_node as an  # noqa: E402
from robot_stack.nodes import convert, qos, topics  # noqa: E402
from robot_stack.nodes import learner_node as ln  # noqa: E402
from robot_stack.nodes.params import parameter_overrides  # noqa: E402
from robot_stack.rl.labelling import label_steps  # noqa: E402
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec  # noqa: E402
from robot_stack.types.teleop import OperatorCommand as OperatorCommandData  # noqa: E402

SPEC = PolicySpec(
    cameras=(CameraSpec("wrist", 32, 32),),
    proprio_names=("tcp_x_m", "tcp_y_m", "tcp_z_m", "tcp_vx_m_s", "tcp_vy_m_s", "tcp_vz_m_s"),
    action=ActionSpec(names=("vx", "vy", "vz"), max_lin_speed_m_s=0.1),
    control_rate_hz=20.0,
)
OPERATOR_SPEED_M_S = 0.05  # normalized action 0.5 on vy


class FakeWorld:
    """Camera + state publishers (30 Hz) and an operator who takes over for 0.5 s every 1.5 s."""

    def __init__(self, ctx):
        self.node = Node("fake_world", context=ctx)
        self.img_pub = self.node.create_publisher(Image, topics.CAMERA_IMAGE.resolve(camera="wrist"), qos.SENSOR)
        self.pose_pub = self.node.create_publisher(PoseStamped, topics.EE_POSE.resolve(), qos.STATE)
        self.twist_pub = self.node.create_publisher(TwistStamped, topics.EE_TWIST.resolve(), qos.STATE)
        self.op_pub = self.node.create_publisher(OperatorCommand, topics.OPERATOR.resolve(), qos.COMMAND)
        self.t0 = time.monotonic()
        self.k = 0
        self.node.create_timer(1 / 30, self.sensors)
        self.node.create_timer(1 / 50, self.operator)

    def sensors(self):
        now = self.node.get_clock().now().to_msg()
        t = convert.stamp_to_s(now)
        self.k += 1
        img = np.full((40, 40, 3), self.k % 256, np.uint8)  # any size: the actor resizes
        self.img_pub.publish(convert.image_to_msg(img, t, "wrist_optical_frame"))
        pose = PoseStamped()
        pose.header.stamp = now
        pose.pose.position.x, pose.pose.position.z = 0.4 + 0.001 * (self.k % 50), 0.3
        pose.pose.orientation.w = 1.0
        self.pose_pub.publish(pose)
        tw = TwistStamped()
        tw.header.stamp = now
        self.twist_pub.publish(tw)

    def operator(self):
        phase = (time.monotonic() - self.t0) % 1.5
        on = 0.6 <= phase < 1.1
        cmd = OperatorCommandData(t=time.time(), intervening=on,
                                  lin_m_s=np.array([0.0, OPERATOR_SPEED_M_S if on else 0.0, 0.0]))
        self.op_pub.publish(convert.operator_to_msg(cmd))


@pytest.mark.timeout(120)
def test_actor_and_learner_learn_together_over_dds(ros_context, tmp_path):
    learner = ln.LearnerNode(context=ros_context, parameter_overrides=parameter_overrides({
        "run_dir": str(tmp_path / "run"), "spec_json": SPEC.to_json(), "min_transitions": 16,
        "publish_every_updates": 3, "tensorboard": False, "stats_every_s": 1.0,
        "sac": {"num_critics": 2, "batch_size": 16,
                "network": {"encoder_channels": 8, "latent_dim": 16, "hidden_dims": [32, 32], "augment_pad_px": 2}},
    }))
    actor = an.ActorNode(context=ros_context, parameter_overrides=[
        Parameter("control_rate_hz", value=20.0), Parameter("max_episode_steps", value=20),
        Parameter("reset_mode", value="none"), Parameter("max_frame_age_s", value=0.5),
        Parameter("max_state_age_s", value=0.5), Parameter("operator_timeout_s", value=0.3)])
    world = FakeWorld(ros_context)
    probe = Node("probe", context=ros_context)
    steps: list = []
    episodes: list = []
    lock = threading.Lock()

    def on_step(m):
        with lock:
            steps.append(m)

    probe.create_subscription(StepRecord, topics.STEPS.resolve(), on_step, qos.STEPS)
    probe.create_subscription(EpisodeSummary, topics.EPISODES.resolve(), episodes.append, qos.EPISODES)
    executor = SingleThreadedExecutor(context=ros_context)
    for n in (learner, actor, world.node, probe):
        executor.add_node(n)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 90.0
        while time.monotonic() < deadline:
            core = actor.core
            if core is not None and core.policy_version >= 3 and len(episodes) >= 3:
                break
            time.sleep(0.1)
        assert actor.core is not None, "the actor never built its policy from the learner's weights"
        assert actor.core.policy_version >= 3, (
            f"no weight update reached the actor (version {actor.core.policy_version}, learner "
            f"updates {learner.core.updates}, transitions {learner.core.transitions})")
        assert len(episodes) >= 3
        executor.remove_node(actor)  # stop producing steps, then compare what both sides saw
        # Both subscribers get every step (reliable), but on a loaded machine one may still be
        # delivering the last ones: wait until neither count moves for a while.
        seen, settle_deadline = None, time.monotonic() + 20.0
        while time.monotonic() < settle_deadline:
            time.sleep(0.5)  # polling for quiescence, bounded by the deadline
            with lock:
                now_seen = (len(steps), learner.core.transitions)
            if now_seen == seen:
                break
            seen = now_seen
        with lock:
            # A record may reach the probe twice (the actor resends what no learner acknowledged
            # yet, e.g. records sent before the learner's first acknowledgement); once each here.
            records = list({(m.episode_id, m.step_index): m for m in steps}.values())
        parsed = sorted((convert.step_from_msg(m, SPEC) for m in records), key=lambda s: s.key)
        flagged = [s for s in parsed if not s.is_last and s.intervention]
        assert flagged and len(flagged) < len(parsed), "expected both operator and policy steps"
        # Intervention flags follow the operator: an operator step executed the operator's command.
        full = [s for s in flagged if abs(s.action[1] - 0.5) < 1e-4]
        assert len(full) >= len(flagged) // 2, [s.action.tolist() for s in flagged]
        # A policy step untouched by the operator executed exactly the policy's proposal (steps
        # around a takeover or release mix in the operator's command or a hold, time-weighted).
        policy_steps = [s for s in parsed if not s.is_last and not s.intervention]
        untouched = [s for s in policy_steps if np.allclose(s.action, s.policy_action, atol=1e-6)]
        assert len(untouched) >= len(policy_steps) // 2
        # The learner labelled the same stream the probe saw, with the RLIF rule.
        expected = list(label_steps(parsed, learner.core.config.labelling))
        penalties = sum(t.reward < 0 for t in expected)
        assert penalties >= 1
        lc = learner.core
        stored = lc.online._reward[lc.online._valid]
        assert learner.core.transitions == len(expected) == lc.online.num_added
        assert int((stored < 0).sum()) == penalties
        assert learner.rejected_steps == 0
        ep_ids = [e.episode_id for e in episodes]
        assert ep_ids == sorted(set(ep_ids)) and all(e.truncated for e in episodes)
    finally:
        executor.shutdown(timeout_sec=5.0)
        spinner.join(timeout=10.0)
        learner.close()
        for n in (learner, actor, world.node, probe):
            n.destroy_node()


def _wait_for_line(path, text: str, proc, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        if proc.poll() is not None:
            return text in path.read_text()
        time.sleep(0.1)
    return False


@pytest.mark.timeout(120)
def test_node_executables_start_with_shipped_params_and_stop_cleanly(tmp_path):
    """scripts/actor_node and scripts/learner_node with config/*.yaml: the actor builds its
    policy from the learner's weights; SIGINT stops both (exit 0, checkpoint written)."""
    import json
    import pathlib
    import signal
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    spec = PolicySpec(cameras=(CameraSpec("wrist", 64, 64),), proprio_names=SPEC.proprio_names, action=SPEC.action)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    run_dir = tmp_path / "run"
    logs = {n: tmp_path / f"{n}.log" for n in ("learner", "actor", "bad")}
    procs = {}
    try:
        procs["learner"] = subprocess.Popen(
            [sys.executable, str(root / "scripts/learner_node"), "--ros-args", "--params-file",
             str(root / "config/learner.yaml"), "-p", f"run_dir:={run_dir}", "-p", f"spec_file:={spec_file}",
             "-p", "tensorboard:=false"],
            stdout=logs["learner"].open("w"), stderr=subprocess.STDOUT)
        procs["actor"] = subprocess.Popen(
            [sys.executable, str(root / "scripts/actor_node"), "--ros-args", "--params-file",
             str(root / "config/actor.yaml"), "-p", "reset_mode:=none"],
            stdout=logs["actor"].open("w"), stderr=subprocess.STDOUT)
        assert _wait_for_line(logs["actor"], "built the policy from the learner's weights version 1",
                              procs["actor"], 90.0), logs["actor"].read_text() + logs["learner"].read_text()
        for name in ("actor", "learner"):
            procs[name].send_signal(signal.SIGINT)
            assert procs[name].wait(timeout=30) == 0, logs[name].read_text()
        assert (run_dir / "checkpoint.pt").exists() and (run_dir / "policies" / "latest.pt").exists()
        bad = subprocess.run([sys.executable, str(root / "scripts/actor_node"), "--ros-args", "-p",
                              "control_rate_hz:=fast"], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "control_rate_hz" in bad.stderr, bad.stderr
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.mark.timeout(150)
def test_no_step_is_lost_without_a_learner_or_across_a_learner_restart(ros_context, tmp_path):
    """The actor steps with no learner (its records wait in the spool), a learner starts (it gets
    them all, in order), is killed without closing (no checkpoint, nothing flushed beyond what
    add_step wrote) and another starts on the same run_dir: every completed episode ends up in the
    replay log whole, nothing is acknowledged twice or skipped, policy versions keep increasing."""
    learner_params = parameter_overrides({
        "run_dir": str(tmp_path / "run"), "spec_json": SPEC.to_json(), "min_transitions": 10_000,
        "tensorboard": False, "stats_every_s": 1.0,
        "sac": {"num_critics": 2, "batch_size": 16,
                "network": {"encoder_channels": 8, "latent_dim": 16, "hidden_dims": [32, 32], "augment_pad_px": 2}}})
    actor = an.ActorNode(context=ros_context, parameter_overrides=[
        Parameter("spec_json", value=SPEC.to_json()), Parameter("control_rate_hz", value=20.0),
        Parameter("max_episode_steps", value=15), Parameter("reset_mode", value="none"),
        Parameter("max_frame_age_s", value=0.5), Parameter("max_state_age_s", value=0.5),
        Parameter("operator_timeout_s", value=0.3), Parameter("wait_for_learner_s", value=0.0),
        Parameter("spool_dir", value=str(tmp_path / "spool")), Parameter("spool_resend_after_s", value=1.0)])
    world = FakeWorld(ros_context)
    probe = Node("probe", context=ros_context)
    episodes: list = []
    versions: list[int] = []
    probe.create_subscription(EpisodeSummary, topics.EPISODES.resolve(), episodes.append, qos.EPISODES)
    from robot_stack.msg import PolicyWeights
    probe.create_subscription(PolicyWeights, topics.POLICY.resolve(), lambda m: versions.append(int(m.version)), qos.POLICY)
    executor = SingleThreadedExecutor(context=ros_context)
    for n in (actor, world.node, probe):
        executor.add_node(n)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    def wait(cond, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not cond():
            time.sleep(0.05)
        assert cond(), what

    learners = []
    try:
        wait(lambda: actor.spool.counters["spooled"] >= 40, 30.0, "the actor did not step without a learner")
        assert actor.spool.pending == actor.spool.counters["spooled"]  # nothing published into the void
        a = ln.LearnerNode(context=ros_context, parameter_overrides=learner_params)
        learners.append(a)
        executor.add_node(a)
        wait(lambda: a.core.intake_counters()["accepted_steps"] >= 80, 40.0, "learner A did not get the spooled records")
        first = a.core.online.stored_steps[""]
        assert min(first) == 1, "learner A did not start with the actor's first episode"
        executor.remove_node(a)  # killed: no close(), no checkpoint
        a.destroy_node()
        time.sleep(2.0)  # the actor keeps stepping meanwhile
        b = ln.LearnerNode(context=ros_context, parameter_overrides=learner_params)
        learners.append(b)
        executor.add_node(b)
        wait(lambda: b.core.intake_counters()["accepted_steps"] >= 40, 40.0, "learner B did not take over")
        actor._stop_control_loop()  # no more records: everything must be acknowledged now
        wait(lambda: actor.spool.pending == 0, 30.0, f"records never acknowledged: {actor.spool.counters}")
        assert a.core.intake_counters()["gaps"] == 0 and b.core.intake_counters()["gaps"] == 0
        assert a.core.fleet.dropped_steps == 0 and b.core.fleet.dropped_steps == 0
        buf = b.core.online
        got = {int(e): int(n) for e, n in zip(*np.unique(buf._episode[buf._valid], return_counts=True))}
        done = [e for e in episodes if e.episode_id in got]
        assert len(done) >= 5
        for e in done:
            assert got[e.episode_id] == e.steps, f"episode {e.episode_id}: {got[e.episode_id]} of {e.steps} transitions stored"
        assert b.core.version > max(v for v in versions[:-1]) and versions == sorted(versions)
    finally:
        executor.shutdown(timeout_sec=5.0)
        spinner.join(timeout=10.0)
        actor.close()
        for n in learners[1:]:
            n.close()
        for n in (*learners[1:], actor, world.node, probe):
            n.destroy_node()
