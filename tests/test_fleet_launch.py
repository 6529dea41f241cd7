"""launch/fleet_sim.launch.yaml: `robots` namespaced sim robots (own address, seed, operator) and one learner."""
from __future__ import annotations

import pathlib
import re

import pytest
import yaml

from robot_stack.launch import LaunchError, load_launch

REPO = pathlib.Path(__file__).resolve().parents[1]


def params_of(proc) -> dict:
    out: dict = {}
    for i, a in enumerate(proc.cmd):
        if a == "--params-file":
            for section in (yaml.safe_load(open(proc.cmd[i + 1])) or {}).values():
                out.update(section["ros__parameters"])
    return out


def namespace_of(proc) -> str:
    return next((a.split(":=", 1)[1] for a in proc.cmd if a.startswith("__ns:=")), "")


@pytest.mark.parametrize("robots", [1, 3, 8])
def test_fleet_sim_starts_one_graph_per_robot_and_one_learner(robots):
    plan = load_launch(REPO / "launch" / "fleet_sim.launch.yaml", {"robots": str(robots)})
    try:
        by_ns: dict[str, list] = {}
        for p in plan.processes:
            by_ns.setdefault(namespace_of(p), []).append(p)
        arms = [f"/arm{k}" for k in range(1, robots + 1)]
        assert sorted(ns for ns in by_ns if ns) == sorted(arms)
        addresses, seeds, skills = set(), set(), []
        for ns in arms:
            nodes = {re.sub(r"-\d+$", "", p.name): p for p in by_ns[ns]}  # the runner numbers repeated names
            assert set(nodes) == {"sim_world", "franka", "spacemouse", "actor"}
            world, franka = params_of(nodes["sim_world"]), params_of(nodes["franka"])
            assert world["physics"] == "direct" and franka["robot.backend"] == "direct"
            assert world["hostname"] == franka["robot.robot_ip"]
            addresses.add(world["hostname"])
            seeds.add(world["seed"])
            skills.append(world["operator_skill"])
            assert params_of(nodes["actor"])["episode_id_file"].endswith(f"{ns}/actor_episode_id")
        assert len(addresses) == len(seeds) == robots  # every world on its own address
        assert skills[:3] == ["expert_90", "expert_50", "expert_20"][:robots]
        top = {p.name: p for p in by_ns[""]}
        assert set(top) == {"learner", "monitor"}
        assert params_of(top["learner"])["discover_robots"] is True
        assert params_of(top["monitor"])["discover_robots"] is True
    finally:
        plan.cleanup()


def test_eval_conditions_reject_names(tmp_path):
    f = tmp_path / "x.launch.yaml"
    f.write_text("launch:\n  - let: {name: a, value: \"$(eval 'x >= 2')\"}\n")
    with pytest.raises(LaunchError, match="cannot evaluate"):
        load_launch(f)
