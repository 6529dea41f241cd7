"""Fleet ingest: N synthetic robots stream step records into one learner that stores and trains.

Each robot is its own process (its own DDS participant, as a robot PC would be): a node in
namespace ``armK`` that publishes realistic step records on ``/armK/steps`` at 10 Hz, with no
physics: two 128x128 rgb8 cameras (front, wrist; random frames from a pool), the 11-value
proprio of the peg-insertion spec, a 3-d action, 50-step episodes with a 10-step takeover,
and the is_last record of each episode. The learner is the real learner node process
(config/learner.yaml, the peg_insertion_front_wrist_128 spec, UTD 1, replay logs on disk)
with ``robots`` naming every robot: it labels, stores and trains while the records arrive.

Per robot count it reports records sent (by the robots) and received (the learner's
per-robot record counts, after a drain of up to ``--drain`` s once the robots stopped and
their publishers had every record acknowledged or timed out), records lost (sent - received),
records/s received while the robots sent, the learner's CPU (process time / wall time while
the robots sent, in cores; this machine has 2), its updates/s in that window, and how many of
the robots' 10 Hz ticks came late (> 50 ms: the publishing side starved of CPU).

    python benchmarks/fleet_ingest.py --robots 1 2 4 8 16     # writes benchmarks/results/fleet_ingest.json
    python benchmarks/fleet_ingest.py --robots 16 --merge     # adds/replaces the 16-robot run in the file
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC_FILE = ROOT / "policies" / "specs" / "peg_insertion_front_wrist_128.json"
EPISODE_STEPS = 50
TAKEOVER = range(20, 30)


# ----------------------------------------------------------------------------- one robot
def run_robot(robot: str, rate_hz: float, duration_s: float) -> None:
    """A synthetic robot: wait for the learner, wait for 'go' on stdin, publish, report JSON."""
    import numpy as np
    import rclpy
    from rclpy.duration import Duration
    from rclpy.node import Node

    from robot_stack.msg import StepRecord
    from robot_stack.nodes import convert, qos
    from robot_stack.types.records import StepRecord as Step
    from robot_stack.types.spec import PolicySpec

    spec = PolicySpec.from_json(SPEC_FILE.read_text())
    rng = np.random.default_rng(int("".join(c for c in robot if c.isdigit()) or 0))
    pool = [{c.name: rng.integers(0, 256, c.shape, dtype=np.uint8) for c in spec.cameras} for _ in range(8)]
    rclpy.init()
    node = Node("actor", namespace=robot)
    pub = node.create_publisher(StepRecord, "steps", qos.STEPS)
    deadline = time.monotonic() + 120
    while not pub.get_subscription_count():
        if time.monotonic() > deadline:
            print(json.dumps({"robot": robot, "error": "learner never subscribed"}), flush=True)
            return
        time.sleep(0.05)
    print("ready", flush=True)
    sys.stdin.readline()  # go
    period = 1.0 / rate_hz
    t0 = time.monotonic()
    sent = late = 0
    ep, i = 0, 0
    while True:
        tick = t0 + sent * period
        now = time.monotonic()
        if tick >= t0 + duration_s:
            break
        if now < tick:
            time.sleep(tick - now)
        elif now - tick > 0.05:
            late += 1
        last = i == EPISODE_STEPS
        a = np.zeros(0, np.float32) if last else rng.uniform(-1, 1, spec.action.dim).astype(np.float32)
        stamp = time.time()
        step = Step(episode_id=ep, step_index=i, obs={**pool[sent % len(pool)],
                                                      "proprio": rng.normal(size=spec.proprio_dim).astype(np.float32)},
                    action=a, policy_action=a, intervention=i in TAKEOVER, is_first=i == 0, is_last=last,
                    stamp_s=stamp, proprio_names=spec.proprio_names)
        pub.publish(convert.step_to_msg(step, "base"))
        sent += 1
        ep, i = (ep + 1, 0) if last else (ep, i + 1)
    acked = pub.wait_for_all_acked(Duration(seconds=60))
    print(json.dumps({"robot": robot, "sent": sent, "late_ticks": late, "acked": bool(acked),
                      "send_s": round(time.monotonic() - t0, 3)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


# ----------------------------------------------------------------------------- driver
def _cpu_s(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StatsProbe:
    """The learner's stats topic (robot_stack/LearnerStats), newest message kept as a dict."""

    def __init__(self):
        import threading

        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from robot_stack.nodes import topics

        rclpy.init()
        self.node = Node("fleet_ingest_probe")
        self.latest: dict | None = None
        self.node.create_subscription(topics.LEARNER_STATS.msg_type, topics.LEARNER_STATS.resolve(), self._on,
                                      topics.LEARNER_STATS.profile)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on(self, msg) -> None:
        from robot_stack.nodes import convert

        stats = convert.learner_stats_from_msg(msg)
        self.latest = {**stats.as_dict(), "robots": stats.robots_dict()}

    def wait(self, pred, timeout_s: float) -> dict | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.latest is not None and pred(self.latest):
                return self.latest
            time.sleep(0.1)
        return self.latest

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.shutdown()


def received(stats: dict | None) -> int:
    return sum(r["records"] for r in (stats or {}).get("robots", {}).values()) + (stats or {}).get("rejected_steps", 0)


def run_fleet(n: int, duration_s: float, rate_hz: float, drain_s: float, probe: StatsProbe) -> dict:
    robots = [f"arm{k + 1}" for k in range(n)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="fleet_ingest_") as run_dir:
        learner = subprocess.Popen(
            [sys.executable, "-m", "robot_stack.nodes.learner_node", "--ros-args",
             "--params-file", str(ROOT / "config" / "learner.yaml"),
             "-p", f"run_dir:={run_dir}", "-p", f"spec_file:={SPEC_FILE}", "-p", "tensorboard:=false",
             "-p", "stats_every_s:=1.0", "-p", f"robots:=[{', '.join(robots)}]"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        actors = []
        try:
            probe.latest = None
            assert probe.wait(lambda s: "robots_active" in s, 120), "learner silent"
            actors = [subprocess.Popen([sys.executable, __file__, "--actor", r, "--rate", str(rate_hz),
                                        "--duration", str(duration_s)], env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True) for r in robots]
            for a in actors:
                line = a.stdout.readline()
                assert line.strip() == "ready", f"robot did not get ready: {line!r}"
            before = probe.wait(lambda s: True, 5)
            cpu0, t0, rec0, upd0 = _cpu_s(learner.pid), time.monotonic(), received(before), before["updates"]
            for a in actors:
                a.stdin.write("go\n")
                a.stdin.flush()
            time.sleep(duration_s)
            cpu1, t1 = _cpu_s(learner.pid), time.monotonic()
            during = probe.latest
            reports = [json.loads(a.stdout.readline()) for a in actors]
            sent = sum(r["sent"] for r in reports)
            final = probe.wait(lambda s: received(s) >= sent, drain_s)
            got = received(final)  # robots that are slow to exit are killed below
            row = {
                "robots": n,
                "records_sent": sent,
                "records_received": got,
                "lost": sent - got,
                "records_per_s": round((received(during) - rec0) / (t1 - t0), 2),
                "offered_per_s": round(n * rate_hz, 1),
                "learner_cpu": round((cpu1 - cpu0) / (t1 - t0), 3),
                "updates_per_s": round((during["updates"] - upd0) / (t1 - t0), 3),
                "update_backlog": final["update_backlog"],
                "late_ticks": sum(r["late_ticks"] for r in reports),
                "all_acked": all(r["acked"] for r in reports),
                "dropped_steps": final["dropped_steps"],
                "per_robot_received": {rid: r["records"] for rid, r in final["robots"].items()},
            }
        finally:
            for a in actors:
                try:
                    a.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    a.kill()
                    a.wait()
            learner.send_signal(signal.SIGINT)
            try:
                learner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                learner.kill()
                learner.wait()
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--robots", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds each robot publishes")
    ap.add_argument("--rate", type=float, default=10.0, help="records/s per robot")
    ap.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the learner to catch up")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fleet_ingest.json"))
    ap.add_argument("--merge", action="store_true", help="keep the file's runs for other robot counts")
    ap.add_argument("--actor", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.actor:
        run_robot(a.actor, a.rate, a.duration)
        return 0
    probe = StatsProbe()
    runs = []
    try:
        for n in a.robots:
            row = run_fleet(n, a.duration, a.rate, a.drain, probe)
            print(json.dumps(row), flush=True)
            runs.append(row)
    finally:
        probe.close()
    out = pathlib.Path(a.out)
    command = "python benchmarks/fleet_ingest.py " + " ".join(sys.argv[1:])
    commands = [command]
    if a.merge and out.exists():
        before = json.loads(out.read_text())
        old = [r for r in before["runs"] if r["robots"] not in {r["robots"] for r in runs}]
        runs = sorted(old + runs, key=lambda r: r["robots"])
        commands = before.get("commands", [before.get("command", "")]) + commands
    out.write_text(json.dumps({
        "what": "N synthetic robots (own processes, no physics) -> one learner node (stores + trains, UTD 1)",
        "record": "2 x 128x128 rgb8 images + 11 proprio + 3 action, 10 Hz per robot, 50-step episodes",
        "machine": f"{os.cpu_count()} cores, robots and learner on the same machine, DDS over loopback",
        "commands": commands,
        "duration_s": a.duration,
        "runs": runs,
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
