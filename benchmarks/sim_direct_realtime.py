"""Real-time factor of the sim world with the whole sim graph running: franky-sim vs direct.

Cases:

* ``direct_alone``: the direct world alone (one 64x64 camera rendered at 10 Hz in its process,
  as sim_world_node does) with a ``direct``-backend client process streaming velocity commands
  and reading the state at 100 Hz (the counterpart of benchmarks/franky_sim_realtime.py's
  ``client100+render10``);
* ``graph_<physics>``: ``robot-stack launch launch/sim.launch.yaml physics:=<physics>`` (sim
  world, franka, SpaceMouse, actor, learner, monitor: the learner trains once it has
  ``min_transitions``) for ``--seconds``, then Ctrl-C. The figures are the sim world's own
  log lines (sim time / wall time since it started, and over each 30 s window) and the CPU
  time each node used during the run (from /proc).

Run:  bash tools/in_env.sh python benchmarks/sim_direct_realtime.py [--seconds 75] [--physics direct franky]
Writes benchmarks/results/sim_direct_realtime.json and prints one line per case.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
ADDRESS = "127.0.0.166"
DOMAIN = "166"
RTF_LINE = re.compile(r"sim time (\d+) s, real-time factor ([0-9.]+) since start, ([0-9.]+) over the last (\d+) s")


def _client(port: int, seconds: float, queue) -> None:
    """100 Hz velocity client in its own process (as the franka node is): send + state read."""
    from robot_stack.devices.franka.base import FrankaConfig, make_robot

    robot = make_robot(FrankaConfig(backend="direct", robot_ip=ADDRESS, direct_port=port))
    robot.connect()
    t0 = time.perf_counter()
    half_rtts = []
    k = 0
    while time.perf_counter() - t0 < seconds:
        vy = 0.05 if int(time.perf_counter() - t0) % 2 == 0 else -0.05  # back and forth, 1 s each way
        a = time.perf_counter()
        robot.send_twist([0.0, vy, 0.0], [0.0, 0.0, 0.0])
        robot.read_state()
        half_rtts.append((time.perf_counter() - a) / 2)
        k += 1
        time.sleep(max(0.0, t0 + k * 0.01 - time.perf_counter()))  # 100 Hz client pacing
    robot.close()
    half_rtts.sort()
    queue.put({"request_ms_p50": 1e3 * half_rtts[len(half_rtts) // 2],
               "request_ms_p99": 1e3 * half_rtts[int(0.99 * (len(half_rtts) - 1))], "requests": 2 * len(half_rtts)})


def run_direct_alone(seconds: float) -> dict:
    """The world (and its 10 Hz render, as in sim_world_node) here; the client in a child process."""
    import multiprocessing

    os.environ.setdefault("MUJOCO_GL", "egl")
    from robot_stack.sim.direct_world import DirectWorld, DirectWorldConfig
    from robot_stack.sim.tasks import make_task

    port = 17390
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    with DirectWorld(DirectWorldConfig(hostname=ADDRESS, port=port), make_task("reach")) as world:
        client = ctx.Process(target=_client, args=(port, seconds, queue))
        client.start()
        cpu0, t0, sim0 = time.process_time(), time.perf_counter(), world.sim_time_s
        render_ms = []
        while client.is_alive():
            a = time.perf_counter()
            world.render("front", 64, 64)
            render_ms.append(1e3 * (time.perf_counter() - a))
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - a)))  # 10 Hz render pacing
        wall = time.perf_counter() - t0
        res = {"rtf": (world.sim_time_s - sim0) / wall, "world_cpu_s_per_s": (time.process_time() - cpu0) / wall,
               "render_ms_mean": sum(render_ms) / len(render_ms), **queue.get(timeout=10)}
        client.join()
    return res


def _cpu_s(pid: int) -> float | None:
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _cpu_with_children(pid: int) -> float | None:
    """CPU seconds of a node process and its children (the launch runs nodes as scripts)."""
    total = _cpu_s(pid)
    if total is None:
        return None
    try:
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for c in children:
        total += _cpu_with_children(int(c)) or 0.0
    return total


def run_graph(physics: str, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"sim_direct_rt_{physics}_") as run_dir:  # checkpoints, logs
        return _run_graph(physics, seconds, run_dir)


def _run_graph(physics: str, seconds: float, run_dir: str) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=DOMAIN, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(ROOT / "scripts" / "robot-stack"), "launch",
           str(ROOT / "launch" / "sim.launch.yaml"), f"physics:={physics}", f"run_dir:={run_dir}",
           f"sim_address:={ADDRESS}", "min_transitions:=32"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    load0 = os.getloadavg()
    try:
        time.sleep(seconds)  # the measurement window: the graph runs on its own
        pids = {m.group(1): int(m.group(2)) for line in list(lines)
                if (m := re.search(r"\[launch\] started '([^']+)' \(pid (\d+)\)", line))}
        cpu = {name: _cpu_with_children(pid) for name, pid in pids.items()}
        load1 = os.getloadavg()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        reader.join(timeout=5)
    out = "".join(lines)
    rtf = [{"sim_time_s": int(m.group(1)), "since_start": float(m.group(2)), "window": float(m.group(3)),
            "window_s": int(m.group(4))} for m in RTF_LINE.finditer(out)]
    episodes = len(re.findall(r"\[monitor\] episode", out))
    updates = [int(m) for m in re.findall(r"updates (\d+) \(", out)]
    return {"rc": rc, "rtf_reports": rtf, "rtf_since_start_final": rtf[-1]["since_start"] if rtf else None,
            "episodes": episodes, "learner_updates": max(updates) if updates else 0,
            "cpu_s_per_node": {k: (round(v / seconds, 3) if v is not None else None) for k, v in cpu.items()},
            "loadavg_1min_start_end": [round(load0[0], 2), round(load1[0], 2)]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=75.0, help="graph run length per physics, s")
    parser.add_argument("--alone-seconds", type=float, default=15.0)
    parser.add_argument("--physics", nargs="*", default=["direct", "franky"], choices=["direct", "franky"],
                        help="graph runs (none: only direct_alone)")
    args = parser.parse_args()
    results = {"direct_alone": run_direct_alone(args.alone_seconds)}
    r = results["direct_alone"]
    print(f"{'direct_alone':14s} real-time factor {r['rtf']:.3f}  world CPU {r['world_cpu_s_per_s']:.2f} s/s "
          f"(render {r['render_ms_mean']:.1f} ms/frame)  request (rtt/2) p50 {r['request_ms_p50']:.2f} ms "
          f"p99 {r['request_ms_p99']:.2f} ms", flush=True)
    for physics in args.physics:
        r = results[f"graph_{physics}"] = run_graph(physics, args.seconds)
        windows = ", ".join(f"{x['window']:.3f}" for x in r["rtf_reports"])
        print(f"graph_{physics:8s} real-time factor {r['rtf_since_start_final']} since start (windows: {windows}); "
              f"{r['episodes']} episodes, {r['learner_updates']} learner updates; CPU s/s "
              f"{json.dumps(r['cpu_s_per_node'])}; load {r['loadavg_1min_start_end']}; exit {r['rc']}", flush=True)
    out = pathlib.Path(__file__).parent / "results" / "sim_direct_realtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.node(), "cpu_count": os.cpu_count(), "graph_seconds": args.seconds,
                               "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
