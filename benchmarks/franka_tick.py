"""What one control tick of the franka node costs: read state, safety filter, send, in-process.

The franky backend and the safety filter with the shipped ``config/franka.yaml`` against a franky-sim
world (a child process, ``robot_stack.sim.franky_world``, task none), at the node's 100 Hz on
absolute deadlines, with a slowly changing twist command. Each part is timed on its own:
``read_state`` (franky's state, the success-rate bookkeeping, the gripper read),
``submit+update`` (the filter: speed, box, orientation and joint-limit stages, the ramp) and
``send_twist`` (the twist mapped to joint velocities, franky's motion planning). A takeover
command pays ``submit+update`` and ``send_twist`` between DDS arrival and the robot. Measured in a
paced loop, not a tight one: the code runs with cold caches, as in the node (about twice the
cost of a tight loop).

Run:  bash tools/in_env.sh python benchmarks/franka_tick.py [--ticks 1000]
Prints p50 / p90 / p99 per part in ms (nothing is written).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import pathlib
import time

import numpy as np
import yaml

from robot_stack.devices.franka.base import make_robot
from robot_stack.devices.franka.safety import SafetyFilter
from robot_stack.nodes.franka_node import FrankaNodeConfig
from robot_stack.sim.franky_world import WorldProcess
from robot_stack.types.config import from_dict

HOST = "127.0.0.47"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=1000, help="control ticks to time (after 100 of warm-up)")
    ap.add_argument("--rate-hz", type=float, default=100.0)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the filter's box warnings are not the subject
    params = yaml.safe_load((ROOT / "config" / "franka.yaml").read_text())["/**/franka"]["ros__parameters"]
    cfg = from_dict(FrankaNodeConfig, params)
    times: dict[str, list[float]] = {"read_state": [], "submit+update": [], "send_twist": []}
    with WorldProcess(HOST, task="none"):
        robot = make_robot(dataclasses.replace(cfg.robot, backend="franky", robot_ip=HOST),
                           cfg.safety.collision_torque_threshold_nm, cfg.safety.collision_force_threshold_n,
                           limits=cfg.safety.cartesian_limits)
        safety = SafetyFilter(cfg.safety)
        period = 1.0 / args.rate_hz
        with robot:
            deadline = time.monotonic()
            for i in range(args.ticks + 100):
                a = time.perf_counter()
                s = robot.read_state()
                b = time.perf_counter()
                now = time.monotonic()
                safety.submit(np.array([0.0, 0.03 * np.sin(i / 50.0), 0.01 * np.cos(i / 70.0)]),
                              np.array([0.0, 0.0, 0.05 * np.sin(i / 90.0)]), now)
                out = safety.update(now, s.p_base_ee, s.q_rad, s.T_base_ee[:3, :3])
                c = time.perf_counter()
                robot.send_twist(out.lin_m_s, out.ang_rad_s)
                d = time.perf_counter()
                if i >= 100:
                    times["read_state"].append(b - a)
                    times["submit+update"].append(c - b)
                    times["send_twist"].append(d - c)
                deadline += period
                time.sleep(max(0.0, deadline - time.monotonic()))
            robot.stop()
    total = np.sum([np.array(v) for v in times.values()], axis=0)
    for name, v in [*times.items(), ("tick", total)]:
        p50, p90, p99 = np.percentile(np.array(v) * 1e3, [50, 90, 99])
        print(f"{name:14s} p50 {p50:6.3f}  p90 {p90:6.3f}  p99 {p99:6.3f} ms")


if __name__ == "__main__":
    main()
