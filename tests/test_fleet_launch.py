"""launch/fleet_sim.launch.yaml: `robots` namespaced sim robots (own address, seed, operator, recorder)
and one learner."""
from __future__ import annotations

import pathlib
import re

import pytest

from robot_stack.launch import LaunchError, load_launch
from robot_stack.testing.launched import params_of

REPO = pathlib.Path(__file__).resolve().parents[1]


def namespace_of(proc) -> str:
    return next((a.split(":=", 1)[1] for a in proc.cmd if a.startswith("__ns:=")), "")


@pytest.mark.parametrize("robots", [1, 3, 8])
def test_fleet_sim_starts_one_graph_per_robot_and_one_learner(robots):
    plan = load_launch(REPO / "launch" / "fleet_sim.launch.yaml", {"robots": str(robots), "run_dir": "/tmp/fleet"})
    try:
        by_ns: dict[str, list] = {}
        for p in plan.processes:
            by_ns.setdefault(namespace_of(p), []).append(p)
        arms = [f"/arm{k}" for k in range(1, robots + 1)]
        assert sorted(ns for ns in by_ns if ns) == sorted(arms)
        addresses, seeds, skills = set(), set(), []
        for ns in arms:
            nodes = {re.sub(r"-\d+$", "", p.name): p for p in by_ns[ns]}  # the runner numbers repeated names
            assert set(nodes) == {"recorder", "sim_world", "franka", "spacemouse", "actor"}
            world, franka = params_of(nodes["sim_world"]), params_of(nodes["franka"])
            assert world["physics"] == "direct" and franka["robot.backend"] == "direct"
            assert world["hostname"] == franka["robot.robot_ip"]
            addresses.add(world["hostname"])
            seeds.add(world["seed"])
            skills.append(world["operator_skill"])
            # Each robot's folder in the fleet's (an include leaks its args: not the previous robot's)
            assert params_of(nodes["actor"])["episode_id_file"] == f"/tmp/fleet{ns}/actor_episode_id"
            assert params_of(nodes["recorder"])["bag_dir"] == f"/tmp/fleet{ns}/bags"  # one bag per robot
        assert len(addresses) == len(seeds) == robots  # every world on its own address
        assert skills[:3] == ["expert_90", "expert_50", "expert_20"][:robots]
        top = {p.name: p for p in by_ns[""]}
        assert set(top) == {"learner", "monitor"}
        assert params_of(top["learner"])["discover_robots"] is True
        assert params_of(top["learner"])["run_dir"] == "/tmp/fleet/learner"
        assert params_of(top["monitor"])["out_dir"] == "/tmp/fleet"
        assert params_of(top["monitor"])["discover_robots"] is True
    finally:
        plan.cleanup()


def test_fleet_sim_record_false_starts_no_recorder():
    plan = load_launch(REPO / "launch" / "fleet_sim.launch.yaml", {"robots": "2", "record": "false"})
    try:
        assert not [p for p in plan.processes if p.name.startswith("recorder")]
    finally:
        plan.cleanup()


def test_eval_conditions_reject_names(tmp_path):
    f = tmp_path / "x.launch.yaml"
    f.write_text("launch:\n  - let: {name: a, value: \"$(eval 'x >= 2')\"}\n")
    with pytest.raises(LaunchError, match="cannot evaluate"):
        load_launch(f)


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timing  # the whole fleet over DDS in real time on a loaded machine
def test_fleet_sim_two_robots_train_one_learner_end_to_end(tmp_path):
    """fleet_sim.launch.yaml robots:=2 as a user runs it: two namespaced sim robots (world, franka
    node, SpaceMouse, actor, recorder each) and one discovering learner. Each robot's step records
    stay in its namespace, the learner stores both robots' transitions apart, and both actors
    drive with a policy version the learner trained on their data. Each robot's bag holds its
    own namespace's step records and policy versions, nothing of the other robot's."""
    import os
    import signal
    import threading
    import time

    import rclpy
    from ros_streams import spin_in_background

    from robot_stack.nodes import convert, topics
    from robot_stack.testing.launched import Launched

    rclpy_ctx = rclpy.Context()
    rclpy.init(context=rclpy_ctx, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    probe = rclpy.create_node("fleet_probe", context=rclpy_ctx)
    lock = threading.Lock()
    versions: dict[str, list[int]] = {"arm1": [], "arm2": []}  # policy version of each step record
    stats: list = []
    weights: dict[str, dict[int, str]] = {"arm1": {}, "arm2": {}}  # per robot: policy version -> SHA-256
    for rid in versions:
        probe.create_subscription(topics.POLICY.msg_type, topics.POLICY.resolve(rid),
                                  lambda m, rid=rid: weights[rid].__setitem__(m.version, m.sha256), topics.POLICY.profile)
        probe.create_subscription(topics.STEPS.msg_type, topics.STEPS.resolve(rid),
                                  lambda m, rid=rid: versions[rid].append(m.policy_version), topics.STEPS.profile)
    probe.create_subscription(topics.LEARNER_STATS.msg_type, topics.LEARNER_STATS.resolve(),
                              lambda m: stats.append(convert.learner_stats_from_msg(m)), topics.LEARNER_STATS.profile)
    spin_in_background(probe)
    fleet = Launched("fleet_sim.launch.yaml", ["robots:=2", f"run_dir:={tmp_path}", "min_transitions:=32"])
    rc = None
    try:
        def trained() -> dict[str, int]:
            """Per robot: the newest policy version its actor drove with, once the learner has
            updated; 0 before."""
            with lock:
                return {rid: max(v, default=0) for rid, v in versions.items()}

        deadline = time.monotonic() + 300.0
        first = None
        while time.monotonic() < deadline:
            assert fleet.running(), "the fleet's launch ended early:\n" + fleet.tail(80)
            if stats and first is None and stats[-1].updates > 0:
                first = stats[-1].policy_version  # trained weights exist from here on
            if first is not None and all(v > first for v in trained().values()):
                break
            time.sleep(0.5)
        rows = stats[-1].robots_dict() if stats else {}
        assert first is not None and all(v > first for v in trained().values()), (
            f"policy versions the actors drove with: {trained()}, first trained version {first}; learner robots "
            f"{rows}\n" + fleet.tail(60))
        last = stats[-1]
        assert set(rows) == {"arm1", "arm2"}, rows  # one stream per robot, no third one
        for rid, row in rows.items():
            assert row["transitions"] > 0 and row["active"], (rid, row)
        assert last.rejected_steps == 0 and last.dropped_steps == 0, last
        assert sum(r["env_steps"] for r in rows.values()) == last.env_steps
        # One policy for the fleet: every version both robots were sent is the same weights.
        common = set(weights["arm1"]) & set(weights["arm2"])
        assert any(v > first for v in common), f"no trained version sent to both robots: {sorted(common)}"
        assert all(weights["arm1"][v] == weights["arm2"][v] for v in common)
        # No step record crossed: each learner row counts at most what that robot's topic carried.
        with lock:
            for rid, row in rows.items():
                assert row["env_steps"] <= len(versions[rid]) + 5, (rid, row["env_steps"], len(versions[rid]))
    finally:
        if fleet.running():
            fleet.proc.send_signal(signal.SIGINT)
        rc = fleet.stop(timeout_s=90)
        fleet.save(tmp_path / "launch_output.log")
        rclpy.try_shutdown(context=rclpy_ctx)
    assert rc == 0, f"the fleet's launch exited {rc}:\n" + fleet.tail(60)
    out = "".join(fleet.lines)
    assert "fleet: 2/2 robots active" in out, "the monitor never printed the fleet line with both robots"
    assert (tmp_path / "arm1" / "actor_episode_id").exists() and (tmp_path / "arm2" / "actor_episode_id").exists()
    from robot_stack.recording.bag import bag_info

    for rid in ("arm1", "arm2"):
        info = bag_info(tmp_path / rid / "bags")
        assert info.custom_data.get("namespace") == f"/{rid}", info.custom_data
        assert info.topics[f"/{rid}/steps"].messages >= len(versions[rid]) > 0, (rid, info.describe())
        assert info.topics[f"/{rid}/policy"].messages > 0, info.describe()
        other = "arm2" if rid == "arm1" else "arm1"
        assert not [t for t in info.topics if t.startswith(f"/{other}/") or t.startswith("/robot_stack/")], (
            info.describe())
