"""Does franky-sim keep real time on this machine? Real-time factor = robot state time / wall time.

Cases (each runs the world in a child process, ``robot_stack.sim.franky_world``, as the sim
graph does):

* ``idle``: the world alone (no client), factor from the world's own step count;
* ``client10``: plus a franky client streaming Cartesian velocity commands at 10 Hz;
* ``client10+render10``: plus the world rendering one 64x64 camera at 10 Hz (reach task);
* ``client100+render10``: the Franka node's rate (100 Hz commands) with the render.

Run:  bash tools/in_env.sh python benchmarks/franky_sim_realtime.py [--seconds 15]
Writes benchmarks/results/franky_sim_realtime.json and prints one line per case.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

from robot_stack.sim.franky_world import WorldProcess

HOST = "127.0.0.44"


def run_client(host: str, seconds: float, rate_hz: float) -> dict:
    import franky

    robot = franky.Robot(host, realtime_config=franky.RealtimeConfig.Ignore, relative_dynamics_factor=0.2)
    hold = franky.Duration(int(2000 / rate_hz))  # hold two periods so the arm never stops between commands
    s0 = robot.state
    t_robot0, t_wall0 = s0.time.to_sec(), time.perf_counter()
    next_t = t_wall0
    late = []
    n = 0
    while time.perf_counter() - t_wall0 < seconds:
        t = time.perf_counter() - t_wall0
        vy = 0.05 if int(t) % 2 == 0 else -0.05  # back and forth, 1 s each way
        robot.move(franky.CartesianVelocityMotion(franky.Twist([0.0, vy, 0.0], [0.0, 0.0, 0.0]), duration=hold),
                   asynchronous=True)
        n += 1
        next_t += 1.0 / rate_hz
        delay = next_t - time.perf_counter()
        late.append(-delay)
        time.sleep(max(0.0, delay))  # client pacing
    s1 = robot.state
    wall = time.perf_counter() - t_wall0
    robot.move(franky.CartesianVelocityMotion(franky.Twist([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), duration=franky.Duration(10)),
               asynchronous=True)
    robot.join_motion(2.0)
    return {"rtf": (s1.time.to_sec() - t_robot0) / wall, "commands": n, "wall_s": wall,
            "client_late_ms_max": float(max(0.0, max(late) * 1e3))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    cases = [
        ("idle", "none", (), None),
        ("client10", "none", (), 10.0),
        ("client10+render10", "reach", ("--render-hz", "10", "--camera", "front", "--image-size", "64"), 10.0),
        ("client100+render10", "reach", ("--render-hz", "10", "--camera", "front", "--image-size", "64"), 100.0),
    ]
    results = {}
    for name, task, extra, rate in cases:
        with WorldProcess(HOST, task=task, extra_args=extra) as world:
            if rate is None:
                time.sleep(args.seconds)  # the world runs alone for the measurement window
                res = {}
            else:
                res = run_client(HOST, args.seconds, rate)
        res["world"] = world.stats
        if rate is None:
            res["rtf"] = world.stats["realtime_factor"]
        results[name] = res
        render = world.stats.get("render_ms_mean")
        print(f"{name:22s} real-time factor {res['rtf']:.3f}"
              + (f"  world render {render:.1f} ms/frame" if render else "")
              + (f"  client late max {res['client_late_ms_max']:.1f} ms" if "client_late_ms_max" in res else ""),
              flush=True)
    out = pathlib.Path(__file__).parent / "results" / "franky_sim_realtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.node(), "cpu_count": __import__("os").cpu_count(),
                               "seconds_per_case": args.seconds, "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
