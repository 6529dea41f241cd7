# Over 400 lines: one script measures every latency figure the README quotes (probe nodes, runs, statistics, resume).
"""Latency, jitter and step throughput of the robot graph, measured over real DDS on loopback.

The real nodes run as separate processes, as on the robot:

* a franky-sim world (``robot_stack.sim.franky_world``, task none) on a loopback address;
* ``franka_node`` (franky backend against that world) with ``debug_latency: true``: it
  publishes, for each velocity command, when its first twist went to franky
  (``franka/debug/sent``, robot_stack/CommandSent; every name from robot_stack/nodes/topics.py,
  in the nodes' default namespace);
* ``actor_node`` with a random-init policy for a spec with two 128x128 cameras
  (``reset_mode: none``, episodes of ``max_episode_steps``);
* ``spacemouse_node`` with the ``fake`` backend: a replay script of byte-level HID reports
  decoded by pyspacemouse, anchored to the wall clock (``fake_script_start_unix_s``) so
  this script knows when each report arrives. The operator takes over every
  ``--cycle-s`` seconds (alternating +x/-x), sending a report every 10 ms for
  ``--deflect-s`` seconds, then lets go;
* a camera process (this file with ``--role cameras``) publishing two 128x128 rgb8 streams
  at 30 Hz (deadline-paced, stamped with the capture time);
* this process: a learner stand-in that counts StepRecords, and the probe that collects
  OperatorCommands and the franka node's sent events.

Figures (all times are ROS time = the host's wall clock, shared by the processes):

* ``takeover_ms``: SpaceMouse report arrival (script time) -> franky ``send_twist`` returned
  for the command built from it, over every deflection report (``takeover_onset_ms``: only
  the report that started each intervention). Matching: the actor stamps a forwarded
  operator command with the OperatorCommand's stamp (the device read time); a read belongs
  to the newest report that had arrived by then; a report's latency is its first send.
* ``frame_to_action_ms``: capture stamp of the newest camera frame a policy step used ->
  franky send of that step's command (StepRecord stamp = the command's stamp = tick time).
* ``control_jitter_ms``: |actor tick period - 100 ms| from consecutive StepRecord stamps.
* ``steps_per_s``, ``steps_sent`` (the actor's own count), ``steps_lost`` (sent - received).

Run (about 1.5 min):
    bash tools/in_env.sh python benchmarks/latency.py [--seconds 60] [--out benchmarks/results/latency.json]
``--node-prefix "chrt -f 20" --prefix-nodes actor,franka`` runs those two processes SCHED_FIFO
(as ``rt_prefix`` does in session.launch.yaml). Before/after switches: ``--no-send-on-command`` (franka node sends only on its 100 Hz
timer), ``--no-publish-on-report`` (SpaceMouse node publishes deflection changes only at its
50 Hz rate), ``--spacemouse-read-rate-hz``.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import pathlib
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CAMERAS = ("front", "wrist")
IMAGE_SIZE = 128
CAMERA_RATE_HZ = 30.0
CONTROL_RATE_HZ = 10.0
REPORT_PERIOD_S = 0.01  # a SpaceMouse sends about 100 reports/s while it is moved


# ----------------------------------------------------------------------------- camera role
def run_cameras() -> int:
    """Publish two 128x128 rgb8 streams at 30 Hz until SIGINT/SIGTERM."""
    import rclpy
    from sensor_msgs.msg import Image

    from robot_stack.nodes import topics

    rclpy.init()
    node = rclpy.create_node("bench_cameras", namespace=topics.DEFAULT_NAMESPACE)
    pubs = {c: topics.publisher(node, topics.CAMERA_IMAGE, camera=c) for c in CAMERAS}
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8).tobytes() for _ in range(8)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    period = 1.0 / CAMERA_RATE_HZ
    next_t = time.monotonic()
    i = 0
    while not stop.is_set():
        stamp = node.get_clock().now().to_msg()
        for c in CAMERAS:
            msg = Image(height=IMAGE_SIZE, width=IMAGE_SIZE, encoding="rgb8", is_bigendian=0, step=IMAGE_SIZE * 3)
            msg.header.stamp = stamp
            msg.header.frame_id = f"{c}_optical"
            msg.data = frames[i % len(frames)]
            pubs[c].publish(msg)
        i += 1
        next_t += period
        stop.wait(max(0.0, next_t - time.monotonic()))  # pacing to the frame deadline
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# ----------------------------------------------------------------------------- set-up
def policy_spec_json() -> str:
    spec = {
        "cameras": [{"name": c, "height": IMAGE_SIZE, "width": IMAGE_SIZE} for c in CAMERAS],
        "proprio_names": ["tcp_x_m", "tcp_y_m", "tcp_z_m"],
        # Slow: the random policy wanders; keep it well inside the workspace box.
        "action": {"names": ["vx", "vy", "vz"], "max_lin_speed_m_s": 0.02, "max_ang_speed_rad_s": 0.1},
        "control_rate_hz": CONTROL_RATE_HZ,
    }
    network = {"encoder": "small", "encoder_channels": 32, "latent_dim": 50, "hidden_dims": [128, 128]}
    return json.dumps({"policy_spec": spec, "network": network})


def operator_script(seconds: float, cycle_s: float, deflect_s: float, lead_s: float) -> tuple[dict, list[float], list[int]]:
    """(report script, arrival time of each deflection report (s after start), cycle index)."""
    reports, at, cycle = [], [], []
    t, k = lead_s, 0
    while t + cycle_s <= lead_s + seconds:
        sign = 1.0 if k % 2 == 0 else -1.0
        n = int(round(deflect_s / REPORT_PERIOD_S))
        for j in range(n):
            ts = t + j * REPORT_PERIOD_S
            # Each report differs a little (a real device's readings never repeat exactly).
            reports.append({"at_s": round(ts, 4), "axes": [sign * (0.6 + 0.002 * (j % 20)), 0, 0, 0, 0, 0]})
            at.append(round(ts, 4))
            cycle.append(k)
        reports.append({"at_s": round(t + n * REPORT_PERIOD_S, 4), "axes": [0, 0, 0, 0, 0, 0]})
        t += cycle_s
        k += 1
    return {"device": "SpaceMouseCompact", "reports": reports}, at, cycle


def params_file(tmp: pathlib.Path, node: str, params: dict) -> str:
    path = tmp / f"{node}.yaml"
    path.write_text(yaml.safe_dump({f"/**/{node}": {"ros__parameters": params}}))  # the node in any namespace
    return str(path)


class Children:
    """Child processes with their output in log files; stopped in reverse order."""

    def __init__(self, tmp: pathlib.Path):
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=ROOT)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout_s: float = 15.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}")

    def stop_all(self) -> None:
        for name in list(self.procs)[::-1]:
            self.stop(name)


# ----------------------------------------------------------------------------- probe
class Probe:
    """In-process node: learner stand-in (StepRecords) plus the latency probes. Callbacks only
    store what arrived; all analysis happens after the run."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from robot_stack.nodes import topics

        rclpy.init()
        self.node = rclpy.create_node("bench_probe", namespace=topics.DEFAULT_NAMESPACE)
        self.lock = threading.Lock()
        self.steps: list[tuple] = []       # (recv_s, stamp_s, episode, index, is_last, intervention, has_action, img stamps)
        self.operator: list[tuple] = []    # (recv_s, stamp_s, intervening)
        self.sent: list[tuple] = []        # (stamp_s, sent_s, trigger, recv_s in the franka node)
        self.cmd: list[tuple] = []         # (recv_s, stamp_s) of the actor's cmd_twist
        self.first_step = threading.Event()
        self.first_operator = threading.Event()
        # The learner stand-in and the probes, on the table's names (relative: same namespace).
        topics.subscription(self.node, topics.STEPS, self._on_step)
        topics.subscription(self.node, topics.OPERATOR, self._on_operator)
        topics.subscription(self.node, topics.FRANKA_DEBUG_SENT, self._on_sent)
        topics.subscription(self.node, topics.CMD_TWIST, self._on_cmd)
        self.executor = SingleThreadedExecutor()  # callbacks only store: one thread, no busy-waiting
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _now(self) -> float:
        return time.time()

    @staticmethod
    def _s(stamp) -> float:
        return stamp.sec + stamp.nanosec * 1e-9

    def _on_step(self, m) -> None:
        rec = (self._now(), self._s(m.header.stamp), int(m.episode_id), int(m.step_index), bool(m.is_last),
               bool(m.intervention), len(m.action) > 0, [self._s(im.header.stamp) for im in m.images])
        with self.lock:
            self.steps.append(rec)
        self.first_step.set()

    def _on_operator(self, m) -> None:
        with self.lock:
            self.operator.append((self._now(), self._s(m.header.stamp), bool(m.intervening)))
        self.first_operator.set()

    def _on_cmd(self, m) -> None:
        with self.lock:
            self.cmd.append((self._now(), self._s(m.header.stamp)))

    def _on_sent(self, m) -> None:
        from robot_stack.nodes import convert

        d = convert.command_sent_from_msg(m)
        with self.lock:
            self.sent.append((d.command_stamp_s, d.sent_s, d.trigger, d.received_s))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


# ----------------------------------------------------------------------------- analysis
def _key(t_s: float) -> int:
    return int(round(t_s * 1e6))  # stamps travel as sec/nanosec: compare at microsecond resolution


def pct(values, q) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def stats_ms(values_s) -> dict:
    v = np.asarray(values_s, float) * 1e3
    if not len(v):
        return {"n": 0}
    return {"n": int(len(v)), "p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99), "max": float(v.max()),
            "mean": float(v.mean())}


def analyse(probe: Probe, arrivals_unix: list[float], cycles: list[int], t_window: tuple[float, float]) -> dict:
    with probe.lock:
        steps, operator, sent, cmds = list(probe.steps), list(probe.operator), list(probe.sent), list(probe.cmd)
    cmd_recv = {}
    for recv_s, stamp in cmds:
        cmd_recv.setdefault(_key(stamp), recv_s)
    op_recv = {}
    for recv_s, stamp, _ in operator:
        op_recv.setdefault(_key(stamp), recv_s)
    sent_by_stamp: dict[int, float] = {}
    franka_recv: dict[int, float] = {}
    for stamp, sent_s, _, recv_s in sent:
        k = _key(stamp)
        if sent_s < sent_by_stamp.get(k, np.inf):
            sent_by_stamp[k], franka_recv[k] = sent_s, recv_s

    # -- takeover: report -> first franky send of a command built from it
    arr = np.asarray(arrivals_unix)
    first_send = np.full(len(arr), np.inf)
    first_read = np.full(len(arr), np.inf)  # stamp (device read time) of the command that got there first
    op_stamps = sorted({_key(s): s for _, s, _ in operator}.values())
    for s in op_stamps:
        sent_s = sent_by_stamp.get(_key(s))
        if sent_s is None:
            continue
        i = bisect.bisect_right(arrivals_unix, s + 1e-6) - 1  # newest report that had arrived at the read
        if i >= 0 and s - arr[i] < 0.5 and sent_s < first_send[i]:  # a later read belongs to no deflection
            first_send[i], first_read[i] = sent_s, s
    in_window = (arr >= t_window[0]) & (arr <= t_window[1])
    got = np.isfinite(first_send)
    ok = in_window & got
    lat = first_send[ok] - arr[ok]
    report_to_read = first_read[ok] - arr[ok]
    hops = {"read_to_probe_operator": [], "read_to_probe_cmd_twist": [], "read_to_franka_callback": [],
            "franka_callback_to_sent": []}
    for r in first_read[ok]:
        if _key(r) in franka_recv:
            hops["read_to_franka_callback"].append(franka_recv[_key(r)] - r)
            hops["franka_callback_to_sent"].append(sent_by_stamp[_key(r)] - franka_recv[_key(r)])
        if _key(r) in op_recv:
            hops["read_to_probe_operator"].append(op_recv[_key(r)] - r)
        if _key(r) in cmd_recv:
            hops["read_to_probe_cmd_twist"].append(cmd_recv[_key(r)] - r)
    read_to_sent = first_send[ok] - first_read[ok]
    onset_lat = []
    for c in sorted(set(np.asarray(cycles)[in_window].tolist())):
        idx = np.where((np.asarray(cycles) == c) & in_window)[0]
        first = idx[0]
        # The takeover is done when any command of this deflection reached franky.
        sends = first_send[idx][np.isfinite(first_send[idx])]
        if len(sends):
            onset_lat.append(float(sends.min() - arr[first]))
    reports_without_send = int((in_window & ~got).sum())

    # -- steps: loss, rate, jitter, frame -> action
    steps_w = [s for s in steps if t_window[0] <= s[1] <= t_window[1]]
    stamps = np.array(sorted(s[1] for s in steps_w))
    periods = np.diff(stamps)
    nominal = 1.0 / CONTROL_RATE_HZ
    regular = periods[periods < 1.5 * nominal]
    jitter = np.abs(regular - nominal)
    f2a = []
    f2a_oldest = []
    for recv_s, stamp, ep, idx, is_last, interv, has_action, img in steps_w:
        if is_last or interv or not img:
            continue
        sent_s = sent_by_stamp.get(_key(stamp))
        if sent_s is not None:
            f2a.append(sent_s - max(img))
            f2a_oldest.append(sent_s - min(img))
    unique_steps = {(s[2], s[3], s[4]) for s in steps}
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    return {
        "takeover_ms": stats_ms(lat),
        "takeover_onset_ms": stats_ms(onset_lat),
        "takeover_onset_ms_each": [round(1e3 * x, 2) for x in onset_lat],  # in cycle order
        "takeover_report_to_read_ms": stats_ms(report_to_read),
        "takeover_read_to_sent_ms": stats_ms(read_to_sent),
        "takeover_hops_ms": {k: stats_ms(v) for k, v in hops.items()},
        "reports": int(in_window.sum()),
        "reports_coalesced": reports_without_send,
        "frame_to_action_ms": stats_ms(f2a),
        "frame_to_action_oldest_frame_ms": stats_ms(f2a_oldest),
        "control_period_ms": stats_ms(regular),
        "control_jitter_ms": stats_ms(jitter),
        "control_gaps": int((periods >= 1.5 * nominal).sum()),
        "steps_in_window": int(len(stamps)),
        "steps_per_s": float((len(stamps) - 1) / span) if len(stamps) > 1 else 0.0,
        "steps_received": len(steps),
        "steps_received_unique": len(unique_steps),
        "sent_events": len(sent),
    }


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", default="bench", choices=("bench", "cameras"), help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=60.0, help="measurement window, s")
    ap.add_argument("--host", default="127.0.0.107", help="loopback address of the franky-sim world")
    ap.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "107")))
    ap.add_argument("--cycle-s", type=float, default=1.25, help="one operator takeover every this many s")
    ap.add_argument("--deflect-s", type=float, default=0.25, help="how long each takeover pushes the device, s")
    ap.add_argument("--no-send-on-command", action="store_true", help="franka node: send only on its control timer")
    ap.add_argument("--no-publish-on-report", action="store_true",
                    help="spacemouse node: publish deflection changes only at publish_rate_hz")
    ap.add_argument("--spacemouse-read-rate-hz", type=float, default=200.0)
    ap.add_argument("--actor-timer", default="thread", choices=("thread", "ros"), help="actor control loop")
    ap.add_argument("--actor-executor", default="events", choices=("multi_threaded", "events"))
    ap.add_argument("--nice", type=int, default=0,
                    help="run the whole graph at this nice value (e.g. -10 on a shared machine; needs root)")
    ap.add_argument("--node-prefix", default="",
                    help="command prefix for the SpaceMouse, actor and Franka nodes, like a launch file's "
                         "launch-prefix (e.g. 'nice -n -10' or 'chrt -f 20'; needs root or CAP_SYS_NICE)")
    ap.add_argument("--prefix-nodes", default="spacemouse,actor,franka",
                    help="which of the three nodes get --node-prefix (comma-separated)")
    ap.add_argument("--rt-priority", type=int, default=0,
                    help="SCHED_FIFO priority for the actor's and the Franka node's control threads and "
                         "the SpaceMouse reader (control_thread_priority, reader_thread_priority; "
                         "0: normal scheduling)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latency.json"))
    args = ap.parse_args()
    if args.role == "cameras":
        return run_cameras()

    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from robot_stack.sim.franky_world import WorldProcess

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="latency_"))
    if args.nice:
        os.nice(args.nice)  # inherited by the world, the nodes and the probe
    kids = Children(tmp)
    py = sys.executable
    prefixed = set(args.prefix_nodes.split(","))
    prefix_for = {n: shlex.split(args.node_prefix) if n in prefixed else [] for n in ("spacemouse", "actor", "franka")}
    result: dict = {}
    t_launch = time.time()
    with WorldProcess(args.host, task="none"):
        probe = Probe()
        try:
            kids.start("franka", [*prefix_for["franka"], py, "-m", "robot_stack.nodes.franka_node", "--ros-args", "--params-file", params_file(tmp, "franka", {
                "robot": {"backend": "franky", "robot_ip": args.host},
                "debug_latency": True, "send_on_command": not args.no_send_on_command,
                "control_thread_priority": args.rt_priority})])
            kids.start("cameras", [py, str(pathlib.Path(__file__).resolve()), "--role", "cameras"])
            spec_path = tmp / "spec.json"
            spec_path.write_text(policy_spec_json())
            kids.start("actor", [*prefix_for["actor"], py, "-m", "robot_stack.nodes.actor_node", "--ros-args", "--params-file", params_file(tmp, "actor", {
                "spec_file": str(spec_path), "reset_mode": "none", "max_episode_steps": 100, "log_every_s": 5.0,
                "executor": args.actor_executor, "control_thread_priority": args.rt_priority,
                **({} if args.actor_timer == "thread" else {"control_thread": False})})],
                env={"OMP_NUM_THREADS": "1"})  # 2 cores: one torch thread leaves room for the rest
            deadline = time.monotonic() + 180.0
            while not probe.first_step.wait(1.0):
                kids.check_alive()
                if time.monotonic() > deadline:
                    raise TimeoutError("no StepRecord from the actor within 180 s")
            t_ready = time.time()
            lead_s = 5.0  # the SpaceMouse node starts within this (no torch to import)
            t0 = time.time() + lead_s
            script, at, cycles = operator_script(args.seconds, args.cycle_s, args.deflect_s, 0.0)
            (tmp / "reports.yaml").write_text(yaml.safe_dump(script))
            kids.start("spacemouse", [*prefix_for["spacemouse"], py, "-m", "robot_stack.nodes.spacemouse_node", "--ros-args", "--params-file", params_file(tmp, "spacemouse", {
                "backend": "fake", "hid_provider": "robot_stack.testing.spacemouse:scripted_hid_device",
                "fake_reports_file": str(tmp / "reports.yaml"), "fake_script_start_unix_s": t0,
                "read_rate_hz": args.spacemouse_read_rate_hz, "reader_thread_priority": args.rt_priority,
                "publish_on_report": not args.no_publish_on_report})])
            while not probe.first_operator.wait(1.0):
                kids.check_alive()
            if time.time() > t0:
                print(f"warning: the SpaceMouse node came up {time.time() - t0:.1f} s late; early reports are skipped",
                      file=sys.stderr)
            window = (max(t0, time.time()), t0 + args.seconds)
            while time.time() < window[1] + 1.0:
                kids.check_alive()
                time.sleep(0.5)  # waiting out the measurement window (not synchronization)
            # Stop the sources first: without fresh frames the actor takes no more steps, so
            # every record it published can arrive before it exits and reports its count.
            t_stop = time.time()
            kids.stop("spacemouse")
            t_sm = time.time()
            kids.stop("cameras")
            t_cam = time.time()
            time.sleep(1.5)  # let the last records drain
            kids.stop("actor")  # its close() waits until this probe acknowledged every record
            n_seen, settle_deadline = -1, time.time() + 10.0
            while time.time() < settle_deadline and len(probe.steps) != n_seen:
                n_seen = len(probe.steps)
                time.sleep(1.0)  # until the probe's count stops moving (its callbacks may lag)
            franka_errors = len(re.findall(r"\] \[franka\]: error:", kids.log("franka")))
            m = re.findall(r"steps_published=(\d+)", kids.log("actor"))
            steps_sent = int(m[-1]) if m else None
            arrivals = [t0 + a for a in at]
            with probe.lock:
                last = sorted(probe.steps, key=lambda r: r[0])[-3:]
            print(f"stop: spacemouse {t_sm - t_stop:.2f} s, cameras {t_cam - t_sm:.2f} s; probe thread alive "
                  f"{probe.thread.is_alive()}; last steps (recv rel. to camera stop, ep, idx): "
                  f"{[(round(r[0] - t_cam, 2), r[2], r[3]) for r in last]}", file=sys.stderr)
            res = analyse(probe, arrivals, cycles, window)
        finally:
            kids.stop_all()
            probe.close()
    print(f"logs: {tmp}", file=sys.stderr)

    steps_lost = None if steps_sent is None else steps_sent - res["steps_received_unique"]
    load = os.getloadavg()
    result = {
        "takeover_ms_p50": res["takeover_ms"].get("p50"),
        "takeover_ms_p99": res["takeover_ms"].get("p99"),
        "frame_to_action_ms_p50": res["frame_to_action_ms"].get("p50"),
        "frame_to_action_ms_p99": res["frame_to_action_ms"].get("p99"),
        "control_jitter_ms_p99": res["control_jitter_ms"].get("p99"),
        "steps_per_s": res["steps_per_s"],
        "steps_sent": steps_sent,
        "steps_lost": steps_lost,
        "valid": franka_errors == 0,
        "franka_errors": franka_errors,
        "goals": {"takeover_ms_p99_below": 5.0, "control_jitter_ms_p99_below": 2.0, "steps_lost": 0},
        "details": res,
        "conditions": {
            "machine": platform.node(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "loadavg_1_5_15_at_end": [round(x, 2) for x in load],
            "measured_s": round(window[1] - window[0], 1), "startup_s": round(t_ready - t_launch, 1),
            "cameras": f"{len(CAMERAS)} x {IMAGE_SIZE}x{IMAGE_SIZE} rgb8 at {CAMERA_RATE_HZ:g} Hz",
            "control_rate_hz": CONTROL_RATE_HZ, "operator_cycle_s": args.cycle_s, "deflect_s": args.deflect_s,
            "franka_send_on_command": not args.no_send_on_command,
            "spacemouse_publish_on_report": not args.no_publish_on_report,
            "spacemouse_read_rate_hz": args.spacemouse_read_rate_hz,
            "actor_control_loop": args.actor_timer, "actor_executor": args.actor_executor, "nice": args.nice, "node_prefix": args.node_prefix, "prefix_nodes": args.prefix_nodes, "rt_priority": args.rt_priority, "rmw": os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp"),
            "rmw_fastrtps_publication_mode": os.environ.get("RMW_FASTRTPS_PUBLICATION_MODE", "(default)"),
            "command": shlex.join(["python", "benchmarks/latency.py", *sys.argv[1:]]),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("takeover (report -> franky send)", res["takeover_ms"], "< 5 ms p99"),
        ("  report -> device read", res["takeover_report_to_read_ms"], ""),
        ("  device read -> franky send", res["takeover_read_to_sent_ms"], ""),
        ("  read -> franka cmd callback", res["takeover_hops_ms"]["read_to_franka_callback"], ""),
        ("  franka callback -> franky send", res["takeover_hops_ms"]["franka_callback_to_sent"], ""),
        ("  (read -> probe gets OperatorCmd)", res["takeover_hops_ms"]["read_to_probe_operator"], ""),
        ("  (read -> probe gets cmd_twist)", res["takeover_hops_ms"]["read_to_probe_cmd_twist"], ""),
        ("takeover onset (first report)", res["takeover_onset_ms"], ""),
        ("frame -> action (franky send)", res["frame_to_action_ms"], ""),
        ("control jitter |T - 100 ms|", res["control_jitter_ms"], "< 2 ms p99"),
    ]
    print(f"{'figure':34s} {'n':>5s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}  goal")
    for name, s, goal in rows:
        f = lambda k: f"{s[k]:8.2f}" if s.get(k) is not None else f"{'-':>8s}"  # noqa: E731
        print(f"{name:34s} {s['n']:5d} {f('p50')} {f('p99')} {f('max')}  {goal}")
    print(f"steps: {res['steps_per_s']:.2f}/s, sent {steps_sent}, received {res['steps_received_unique']}, "
          f"lost {steps_lost}; control gaps {res['control_gaps']}; reports coalesced into a newer one "
          f"{res['reports_coalesced']}/{res['reports']}; load {load[0]:.1f}")
    if franka_errors:
        print(f"INVALID RUN: the franka node logged {franka_errors} robot errors (franky-sim connection lost or "
              f"timed out under CPU load); see {tmp}/franka.log", file=sys.stderr)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
