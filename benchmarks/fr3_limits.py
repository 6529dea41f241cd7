# Over 400 lines: every command pattern against franka-sim, its environment set-up and the resumable result file in one script.
"""The franka node against franka-sim with the FR3's limits enforced: every command pattern the
stack produces, reflexes, recoveries and how close each limited quantity came to its limit.

franka-sim (PyPI; .venv-franka-sim, made by tools/bootstrap.sh) speaks the libfranka protocol and
aborts a motion the way an FR3 does when a commanded signal breaks its limits
(``FRANKA_SIM_ENFORCE_MOTION_LIMITS``) or when 20 command cycles in a row are lost
(``FRANKA_SIM_ENFORCE_COMM_CONSTRAINTS``). tools/franka_sim_server.py wraps it with measurement.
The franka node runs in this process with its shipped config (config/franka.yaml), the franky
backend pointed at the simulator; a probe node publishes what the actor, the SpaceMouse node
and an episode runner would:

* ``policy_noise``: 10 Hz random twists with rotation within the node's limits, sign flipped
  every tick (the actor's commands);
* ``operator_steps``: 100 Hz operator commands stepping 0 -> full -> 0 (operator fallback);
* ``stream_cuts``: full-speed streams cut off (the watchdog ramps the arm down);
* ``homes``: home moves to random poses, and homes started while the arm moves;
* ``box_edges``: full speed into every face and corner of the workspace box;
* ``gripper_moving``: gripper open/close while the arm moves;
* ``forced_reflex``: the simulator aborts the running motion with a joint_reflex (as a
  contact would); the node must recover once per reflex and go on.

Writes benchmarks/results/fr3_limits.json: per pattern reflexes, recoveries and peak_fraction
(limited quantity -> its peak as a fraction of the limit franka-sim judges it against), and
lost command cycles (total, longest run), for a run at normal priority and one with the
real-time set-up (the node's control thread at SCHED_FIFO and the process under ``chrt -f``, as
``rt_prefix:='chrt -f 20'`` does; the simulator itself runs under ``chrt -f 30`` in both: it
stands for the robot's real-time controller).

    bash tools/in_env.sh python benchmarks/fr3_limits.py --minutes 10
    bash tools/in_env.sh python benchmarks/fr3_limits.py --seconds-per-pattern 5 --setups rt

``--stall-ms 2,8`` stops the node's process (SIGSTOP) for 2-8 ms at random moments, the lost
cycles a loaded machine causes, on purpose: what the node's lossy-link acceleration is for.

tests/test_franka_sim_limits.py runs the same patterns briefly in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import pathlib
import platform
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
FSIM_PYTHON = ROOT / ".venv-franka-sim" / "bin" / "python"
PATTERNS = ("policy_noise", "operator_steps", "stream_cuts", "homes", "box_edges", "gripper_moving", "forced_reflex")


def available() -> bool:
    """franka-sim's environment is there (tools/bootstrap.sh made it)."""
    return FSIM_PYTHON.exists() and importlib.util.find_spec("franky_sim") is not None


def franky_sim_mjcf() -> pathlib.Path:
    """franky-sim's FR3 model (franka-sim's own loader downloads, which cannot work offline)."""
    spec = importlib.util.find_spec("franky_sim")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "assets" / "fr3.xml"


class FrankaSim:
    """tools/franka_sim_server.py in .venv-franka-sim, on ``host`` (a loopback address of its own:
    libfranka always connects to port 1337), with its control socket on ``control_port``."""

    def __init__(self, host: str, control_port: int, enforce_motion_limits: bool = True,
                 enforce_comm_constraints: bool = True, gripper: bool = True, fifo_priority: int = 0,
                 log_path: str | os.PathLike | None = None):
        self.host, self.control_port = host, control_port
        self.args = ["--host", host, "--control-port", str(control_port), "--mjcf", str(franky_sim_mjcf()),
                     "--enforce-motion-limits" if enforce_motion_limits else "--no-enforce-motion-limits",
                     "--enforce-comm-constraints" if enforce_comm_constraints else "--no-enforce-comm-constraints"]
        if not gripper:
            self.args.append("--no-gripper")
        self.fifo_priority = fifo_priority
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout_s: float = 60.0) -> "FrankaSim":
        # A clean environment: .venv's paths (PYTHONPATH, the ROS wheels' library path) must not
        # leak into the other interpreter (numpy 1.26 there, 2.x here).
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "AMENT_PREFIX_PATH")
               and not k.startswith("_ROS_WHEELS")}
        cmd = [str(FSIM_PYTHON), str(ROOT / "tools" / "franka_sim_server.py"), *self.args]
        if self.fifo_priority > 0:
            cmd = ["chrt", "-f", str(self.fifo_priority), *cmd]
        self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"franka-sim exited with {self.proc.returncode} (log: {self.log_path})")
            with contextlib.suppress(OSError), socket.create_connection((self.host, 1337), timeout=0.5):
                with contextlib.suppress(OSError, ValueError):
                    self.request("stats")
                    return self
            time.sleep(0.3)  # start-up polling
        self.stop()
        raise RuntimeError(f"franka-sim did not serve on {self.host}:1337 within {timeout_s} s")

    def request(self, cmd: str) -> dict:
        with socket.create_connection((self.host, self.control_port), timeout=5.0) as s:
            s.sendall((cmd + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def stats(self) -> dict:
        return self.request("stats")

    def reset(self) -> None:
        self.request("reset")

    def reflex(self) -> bool:
        return bool(self.request("reflex")["ok"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def shipped_params() -> dict:
    """The franka node's parameters in config/franka.yaml (nested sections as dicts)."""
    return yaml.safe_load((ROOT / "config" / "franka.yaml").read_text())["/**/franka"]["ros__parameters"]


def apply_overrides(params: dict, overrides: dict) -> None:
    """Set ``{"safety.x": value}`` as ``params["safety"]["x"]``; KeyError names an unknown one."""
    for key, value in overrides.items():
        *path, leaf = key.split(".")
        section = params
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict) or leaf not in section:
            raise KeyError(f"--set {key}: no such parameter in config/franka.yaml")
        section[leaf] = value


class Driver:
    """The franka node (in this process) plus a probe node that plays actor, operator and runner."""

    def __init__(self, host: str, seed: int = 0, control_thread_priority: int = 0, overrides: dict | None = None):
        import rclpy
        from geometry_msgs.msg import PoseStamped, TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from std_msgs.msg import Float32

        from robot_stack.msg import OperatorCommand
        from robot_stack.nodes import franka_node as fn
        from robot_stack.nodes import topics
        from robot_stack.nodes.params import parameter_overrides

        self._msgs = dict(TwistStamped=TwistStamped, OperatorCommand=OperatorCommand, Float32=Float32,
                          PoseStamped=PoseStamped)
        self.rng = np.random.default_rng(seed)
        self.ctx = rclpy.context.Context()
        rclpy.init(context=self.ctx)
        params = shipped_params()
        params["robot"].update({"backend": "franky", "robot_ip": host})
        params["connect_timeout_s"] = 30.0
        params["control_thread_priority"] = control_thread_priority
        apply_overrides(params, overrides or {})
        self.node = fn.FrankaNode(context=self.ctx, parameter_overrides=parameter_overrides(params))
        self.safety = self.node.config.safety
        # The probe sits in the nodes' namespace, so the table's relative names reach the franka node.
        self.probe = Node("fr3_limits_probe", namespace=topics.DEFAULT_NAMESPACE, context=self.ctx)
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self.pose: np.ndarray | None = None
        self.box_overshoot_m = 0.0
        """Farthest the EE got outside the workspace box (per pattern: run_patterns resets it), m."""
        topics.subscription(self.probe, topics.FRANKA_STATUS, self._on_status)
        topics.subscription(self.probe, topics.EE_POSE, self._on_pose)
        self.twist_pub = topics.publisher(self.probe, topics.CMD_TWIST)
        self.op_pub = topics.publisher(self.probe, topics.OPERATOR)
        self.home_client = topics.client(self.probe, topics.FRANKA_HOME)
        self.grip_pub = topics.publisher(self.probe, topics.GRIPPER_CMD)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    def close(self) -> None:
        import rclpy

        self.node.close()
        self.executor.shutdown(timeout_sec=2.0)
        self._spin.join(timeout=5.0)
        rclpy.try_shutdown(context=self.ctx)

    # -- observations --------------------------------------------------------------------------
    def _on_status(self, msg) -> None:
        from robot_stack.nodes import convert

        s = convert.franka_status_from_msg(msg)
        with self._lock:
            self.events.append({"event": s.event, "detail": s.detail, "mode": s.mode, "t": s.stamp_s})

    def _on_pose(self, msg) -> None:
        p = msg.pose.position
        self.pose = np.array([p.x, p.y, p.z])
        lo, hi = np.array(self.safety.workspace_min_xyz_m), np.array(self.safety.workspace_max_xyz_m)
        self.box_overshoot_m = max(self.box_overshoot_m, float(np.max(np.maximum(lo - self.pose, self.pose - hi))))

    def event_names(self, start: int = 0) -> list[str]:
        with self._lock:
            return [e["event"] for e in self.events[start:]]

    def wait_event(self, name: str, start: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if name in self.event_names(start):
                return True
            time.sleep(0.02)  # polling the collected events
        return False

    # -- commands ------------------------------------------------------------------------------
    def twist(self, lin, ang=(0.0, 0.0, 0.0)) -> None:
        msg = self._msgs["TwistStamped"]()
        msg.header.frame_id = "base"
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in ang)
        self.twist_pub.publish(msg)

    def operator(self, lin, ang=(0.0, 0.0, 0.0), intervening: bool = True) -> None:
        msg = self._msgs["OperatorCommand"]()
        msg.header.frame_id = "base"
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.intervening = intervening
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in lin)
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in ang)
        self.op_pub.publish(msg)

    def home(self, timeout_s: float = 30.0) -> bool:
        """Home (randomized like an episode start) through the franka/home service; True when the
        answer says the pose was reached."""
        from std_srvs.srv import Trigger

        if not self.home_client.wait_for_service(timeout_sec=timeout_s):
            return False
        answered = threading.Event()
        future = self.home_client.call_async(Trigger.Request())
        future.add_done_callback(lambda _f: answered.set())
        return answered.wait(timeout_s) and bool(future.result().success)

    def gripper(self, width_m: float) -> None:
        self.grip_pub.publish(self._msgs["Float32"](data=float(width_m)))

    def stream(self, seconds: float, rate_hz: float, make) -> None:
        """Publish ``make(k)`` (a (lin, ang) twist, or None for nothing) at ``rate_hz`` for ``seconds``."""
        period, t0 = 1.0 / rate_hz, time.monotonic()
        k = 0
        while time.monotonic() - t0 < seconds:
            cmd = make(k)
            if cmd is not None:
                self.twist(*cmd)
            k += 1
            time.sleep(max(0.0, t0 + k * period - time.monotonic()))  # publishing rate

    def rest(self, seconds: float = 0.6) -> None:
        """No commands: the watchdog ramps the arm to rest."""
        time.sleep(seconds)

    # -- patterns ------------------------------------------------------------------------------
    def random_twist(self, scale: float = 1.0):
        s = self.safety
        return (self.rng.uniform(-1, 1, 3) * s.max_lin_speed_m_s * scale,
                self.rng.uniform(-1, 1, 3) * s.max_ang_speed_rad_s * scale)

    def policy_noise(self, seconds: float) -> None:
        state = {"cmd": self.random_twist(), "sign": 1.0}

        def make(k):
            state["sign"] = -state["sign"]
            lin, ang = self.random_twist()
            return lin * state["sign"], ang * state["sign"]
        self.stream(seconds, 10.0, make)
        self.rest()

    def operator_steps(self, seconds: float) -> None:
        self.rest(0.4)  # no actor: the operator falls back to driving directly
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            lin, ang = self.random_twist()
            lin = lin / max(np.linalg.norm(lin), 1e-9) * self.safety.max_lin_speed_m_s  # full speed
            for _ in range(int(self.rng.integers(20, 60))):  # 0.2-0.6 s at 100 Hz
                self.operator(lin, ang)
                time.sleep(0.01)  # 100 Hz, as the SpaceMouse node publishes
            for _ in range(int(self.rng.integers(5, 30))):
                self.operator((0, 0, 0), (0, 0, 0))
                time.sleep(0.01)
        for _ in range(10):
            self.operator((0, 0, 0), intervening=False)
            time.sleep(0.01)
        self.rest()

    def stream_cuts(self, seconds: float) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            lin, ang = self.random_twist()
            lin = lin / max(np.linalg.norm(lin), 1e-9) * self.safety.max_lin_speed_m_s
            self.stream(float(self.rng.uniform(0.3, 0.8)), 50.0, lambda k: (lin, ang))
            self.rest(float(self.rng.uniform(0.3, 0.6)))  # cut: the watchdog ramps down

    def homes(self, seconds: float) -> None:
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            if i % 2:  # home while moving: the command stream runs when the home starts
                lin, _ = self.random_twist()
                self.stream(0.4, 50.0, lambda k: (lin, (0, 0, 0)))
            self.home()
            i += 1

    def box_edges(self, seconds: float) -> None:
        s = self.safety
        v = s.max_lin_speed_m_s
        dirs = [np.array(d, float) for d in
                [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]]
        dirs += [np.array((x, y, z), float) / math.sqrt(3) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            d = dirs[i % len(dirs)]
            self.stream(1.8, 50.0, lambda k: (d * v, (0, 0, 0)))  # into the wall or corner at full speed
            i += 1
        self.rest()

    def gripper_moving(self, seconds: float) -> None:
        t0 = time.monotonic()
        state = {"open": True}

        def make(k):
            if k % 25 == 0:  # every 0.5 s
                state["open"] = not state["open"]
                self.gripper(0.08 if state["open"] else 0.0)
            if k % 5 == 0:
                state["cmd"] = self.random_twist(0.7)
            return state["cmd"]
        while time.monotonic() - t0 < seconds:
            self.stream(min(2.0, seconds), 50.0, make)
        self.gripper(0.08)
        self.rest()

    def forced_reflex(self, seconds: float, sim: FrankaSim) -> int:
        """Stream, make the simulator abort the motion (a contact would), go on streaming; returns
        how many reflexes were forced. Spaced so that the node's recovery budget
        (max_recovery_attempts per recovery_window_s) is never the limit: at most two per window."""
        t0 = time.monotonic()
        forced = 0
        spacing_s = self.safety.recovery_window_s / 2.0
        last = -math.inf
        while time.monotonic() - t0 < seconds:
            stop = threading.Event()
            lin, ang = self.random_twist(0.5)

            def publish():
                while not stop.is_set():
                    self.twist(lin, ang)
                    stop.wait(0.02)  # 50 Hz
            th = threading.Thread(target=publish, daemon=True)
            th.start()
            time.sleep(0.5)
            start = len(self.events)
            if (forced < 2 or time.monotonic() - last >= spacing_s) and sim.reflex():
                forced += 1
                last = time.monotonic()
                self.wait_event("recovered", start, 10.0)
            time.sleep(0.8)  # streaming goes on after the recovery
            stop.set()
            th.join()
            self.rest()
        return forced


def run_patterns(sim: FrankaSim, driver: Driver, seconds: float, patterns=PATTERNS, log=print,
                 on_start=None) -> dict:
    """Run each pattern for ``seconds`` from home; per pattern the simulator's figures.
    ``on_start()`` is called once the first home move is done."""
    results = {}
    if not driver.home():
        raise RuntimeError(f"the first home move failed: {driver.event_names()[-5:]}")
    if on_start is not None:
        on_start()
    for name in patterns:
        sim.reset()
        start = len(driver.events)
        t0 = time.monotonic()
        forced = None
        driver.box_overshoot_m = 0.0
        if name == "forced_reflex":
            forced = driver.forced_reflex(seconds, sim)
        else:
            getattr(driver, name)(seconds)
        stats = sim.stats()
        ev = driver.event_names(start)
        results[name] = {
            "seconds": round(time.monotonic() - t0, 1),
            "reflexes": len(stats["reflexes"]) - (forced or 0),
            "reflex_errors": stats["reflexes"],
            "forced_reflexes": forced,
            "recoveries": stats["recoveries"],
            "node_recovering_events": ev.count("recovering"),
            "violations": stats["violations"],
            "peak_fraction": stats["peak_fraction"],
            "peak_detail": stats["peak_detail"],
            "lost_cycles": stats["lost_cycles"],
            "box_overshoot_m": round(driver.box_overshoot_m, 4),
            "node_events": {e: ev.count(e) for e in sorted(set(ev))},
        }
        log(f"{name}: {results[name]['seconds']} s, reflexes {results[name]['reflexes']}"
            f"{'' if forced is None else f' (+{forced} forced)'}, recoveries {stats['recoveries']}, "
            f"lost {stats['lost_cycles']}, peaks {stats['peak_fraction']}")
        if "gave_up" in [e.get("mode") for e in driver.events[start:]]:
            log("the node gave up: stopping the run")
            break
        # Every pattern ends at home, the last one too: after a reflex franka-sim holds the pose
        # the abort caught (its hold controller leaves joint 7 ringing at ~0.08 rad/s), and the
        # run ends with the arm at rest after an ordinary motion.
        if name != "homes" and not driver.home():
            log(f"home after {name} failed")
    return results


ROBOT_MODE_IDLE = 1
"""libfranka RobotMode::kIdle: no motion running, nothing commanded."""


def at_rest(sim: FrankaSim, timeout_s: float = 6.0, threshold_rad_s: float = 0.01) -> dict:
    """Wait until nothing is commanded and the arm is still (or ``timeout_s`` passed, e.g. while an
    EE left outside the box is pulled back): robot mode and joint speeds.

    Joint 7 is reported apart: once franka-sim's position hold was engaged mid-motion (a reflex
    aborts the motion where it is), it rings on joint 7 at about 0.08 rad/s and keeps ringing
    through every later hold, with nothing commanded (the hold controller against franky-sim's
    model; the TCP lies on joint 7's axis and does not move)."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = sim.stats()
        dq = np.abs(np.array(st["dq"]))
        rest = {"robot_mode": st["robot_mode"], "dq_max_joints_1_6_rad_s": float(dq[:6].max()),
                "dq_joint_7_rad_s": float(dq[6])}
        if (st["robot_mode"] == ROBOT_MODE_IDLE and rest["dq_max_joints_1_6_rad_s"] < threshold_rad_s) \
                or time.monotonic() > deadline:
            return rest
        time.sleep(0.2)  # polling the simulator


def summarize(results: dict) -> dict:
    peaks: dict[str, float] = {}
    for r in results.values():
        for k, v in r["peak_fraction"].items():
            peaks[k] = max(peaks.get(k, 0.0), v)
    lost = [r["lost_cycles"] for r in results.values()]
    return {
        "reflexes": sum(r["reflexes"] for r in results.values()),
        # Of those, aborts for lost command cycles (the process was not scheduled in time), not
        # for a commanded motion: the real-time set-up is what prevents them.
        "communication_reflexes": sum(1 for r in results.values() for e in r["reflex_errors"]
                                      if e.startswith("communication_constraints_violation")),
        "forced_reflexes": sum(r["forced_reflexes"] or 0 for r in results.values()),
        "recoveries": sum(r["recoveries"] for r in results.values()),
        "peak_fraction": dict(sorted(peaks.items())),
        "lost_cycles": {"total": sum(x["total"] for x in lost), "longest_run": max((x["longest_run"] for x in lost), default=0),
                        "cycles": sum(x["cycles"] for x in lost)},
    }


def run_setup(rt: bool, seconds: float, host: str, control_port: int, seed: int, log=print,
              patterns=PATTERNS, overrides: dict | None = None, on_start=None) -> dict:
    """One run of every pattern; ``rt``: the node's control thread at SCHED_FIFO 20 (this process
    is put under ``chrt -f 20`` by main())."""
    sim = FrankaSim(host, control_port, fifo_priority=30, log_path=ROOT / "benchmarks" / "results" / "tmp" / "franka_sim.log")
    (ROOT / "benchmarks" / "results" / "tmp").mkdir(parents=True, exist_ok=True)
    with sim:
        driver = Driver(host, seed=seed, control_thread_priority=20 if rt else 0, overrides=overrides)
        try:
            t0 = time.monotonic()
            results = run_patterns(sim, driver, seconds, patterns, log=log, on_start=on_start)
            rest = at_rest(sim)
            # The node's events of the whole set-up: a mode that starts between two patterns (a
            # stall while the simulator resets) is announced once and counted in no pattern.
            events = driver.event_names()
            return {"patterns": results, "summary": summarize(results), "at_end": rest,
                    "seconds": round(time.monotonic() - t0, 1),
                    "node_events": {e: events.count(e) for e in sorted(set(events))}}
        finally:
            driver.close()


class Stalls:
    """Stops a process (SIGSTOP, every thread of it, libfranka's control thread included) for a
    random LO..HI ms at random moments (exponential gaps, mean ``every_s``): the stalls a loaded
    machine inflicts, on purpose and countable. Starts once ``started`` is set (the process's first
    home move is done), the first three ``first_ms`` long where given."""

    def __init__(self, pid: int, started: threading.Event, ms: tuple[float, float], every_s: float, seed: int,
                 first_ms: float | None = None):
        self.pid, self.started, self.ms, self.every_s, self.first_ms = pid, started, ms, every_s, first_ms
        self.rng = np.random.default_rng(seed + 7)
        self.durations_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.started.wait(0.1):
            if self._stop.is_set():
                return
        while not self._stop.wait(self.rng.exponential(self.every_s)):
            first = self.first_ms and len(self.durations_ms) < 3
            d = (self.first_ms if first else self.rng.uniform(*self.ms)) / 1000.0
            try:
                os.kill(self.pid, signal.SIGSTOP)
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < d:  # spin: a sleep this short overshoots
                    pass
                self.durations_ms.append((time.perf_counter() - t0) * 1000.0)
            except ProcessLookupError:
                return
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        d = np.array(self.durations_ms) if self.durations_ms else np.zeros(1)
        return {"count": len(self.durations_ms), "ms_min": round(float(d.min()), 2),
                "ms_mean": round(float(d.mean()), 2), "ms_max": round(float(d.max()), 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=None, help="total per set-up (sets --seconds-per-pattern)")
    p.add_argument("--seconds-per-pattern", type=float, default=20.0)
    p.add_argument("--setups", default="normal,rt", help="comma list of: normal, rt")
    p.add_argument("--host", default="127.0.0.59")
    p.add_argument("--control-port", type=int, default=18059)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fr3_limits.json"))
    p.add_argument("--patterns", default=",".join(PATTERNS), help="comma list of patterns to run (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                   help="override a parameter of config/franka.yaml, e.g. safety.max_joint_jerk_rad_s3=250 (repeatable)")
    p.add_argument("--stall-ms", default=None, metavar="LO,HI",
                   help="stop the node's process (SIGSTOP) for LO..HI ms at random moments, as a loaded machine "
                        "does: each stall loses that many command cycles (e.g. 4,12)")
    p.add_argument("--stall-every-s", type=float, default=2.0, help="mean time between stalls, s")
    p.add_argument("--stall-first-ms", type=float, default=None,
                   help="make the first three stalls this long (e.g. 1: lone lost cycles before the longer ones)")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_notify_parent", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    patterns = tuple(x for x in args.patterns.split(",") if x)
    unknown = sorted(set(patterns) - set(PATTERNS))
    if unknown:
        p.error(f"unknown pattern(s) {', '.join(unknown)}; choose from {', '.join(PATTERNS)}")
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--set {item}: expected KEY=VALUE, e.g. safety.max_joint_jerk_rad_s3=250")
        overrides[key.strip()] = yaml.safe_load(value)
    try:
        apply_overrides(shipped_params(), overrides)
    except KeyError as e:
        p.error(e.args[0])
    stall_ms = None
    if args.stall_ms:
        try:
            stall_ms = tuple(float(x) for x in args.stall_ms.split(","))
        except ValueError:
            stall_ms = ()
        if len(stall_ms) != 2 or not 0 < stall_ms[0] <= stall_ms[1]:
            p.error(f"--stall-ms {args.stall_ms}: expected LO,HI in ms with 0 < LO <= HI, e.g. 4,12")
    seconds = args.seconds_per_pattern if args.minutes is None else args.minutes * 60.0 / len(patterns)
    if not available():
        print("franka-sim's environment is missing: run tools/bootstrap.sh", file=sys.stderr)
        return 2
    if args._child:  # one set-up, in this (possibly chrt'ed) process; result as JSON on stdout's last line
        res = run_setup(args._child == "rt", seconds, args.host, args.control_port, args.seed,
                        log=lambda m: print(m, file=sys.stderr, flush=True), patterns=patterns, overrides=overrides,
                        # the parent's Stalls wait for this (chrt execs: the parent is this script)
                        on_start=(lambda: os.kill(os.getppid(), signal.SIGUSR1)) if args._notify_parent else None)
        print(json.dumps(res))
        return 0
    out = {"stall_ms": stall_ms, "stall_every_s": args.stall_every_s if stall_ms else None,
           "what": "franka node (shipped config) vs franka-sim with motion limits and communication constraints "
                   "enforced", "machine": platform.node(), "load_avg_start": os.getloadavg(),
           "seconds_per_pattern": seconds, "patterns": list(patterns), "overrides": overrides, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "setups": {}}
    for setup in args.setups.split(","):
        cmd = [sys.executable, __file__, "--_child", setup, "--seconds-per-pattern", str(seconds),
               "--host", args.host, "--control-port", str(args.control_port), "--seed", str(args.seed),
               "--patterns", ",".join(patterns), *(f"--set={item}" for item in args.set),
               *(["--_notify_parent"] if stall_ms else [])]
        if setup == "rt":
            cmd = ["chrt", "-f", "20", *cmd]
        print(f"== {setup}: {' '.join(cmd)}", flush=True)
        started = threading.Event()
        signal.signal(signal.SIGUSR1, lambda *_: started.set())
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        stalls = Stalls(proc.pid, started, stall_ms, args.stall_every_s, args.seed, args.stall_first_ms) if stall_ms else None
        stdout, _ = proc.communicate()
        if stalls:
            stalls.stop()
        if proc.returncode != 0:
            print(f"set-up {setup} failed with {proc.returncode}", file=sys.stderr)
            return 1
        res = json.loads(stdout.strip().splitlines()[-1])
        if stalls:
            res["stalls"] = stalls.summary()
        res["load_avg_end"] = os.getloadavg()
        out["setups"][setup] = res
        print(json.dumps(res["summary"], indent=1), flush=True)
    pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
