"""franka-sim (PyPI, a MuJoCo FR3 behind the libfranka protocol) as a strict test robot.

Runs in its own environment (``.venv-franka-sim``, made by tools/bootstrap.sh: franka-sim pins
numpy 1.26 and mujoco 3.2, which clash with the stack's). Not part of the robot_stack package;
``robot_stack.testing.franka_sim`` starts it and talks to it.

What it adds to franka-sim's own server, without changing what the server judges:

* the FR3 model from franky-sim's MJCF (``--mjcf``; franka-sim's default loader downloads);
* a bind address (franka-sim binds 0.0.0.0:1337 otherwise, and libfranka has no port option);
* measurement: per limited quantity, the peak of what franka-sim's limit checker computed on
  the commanded stream, as a fraction of the threshold it judges it against; every violation
  (counted whether or not enforcement is on), every reflex, every recovery, and the lost
  command cycles (total and longest run) from its communication-constraints tracker;
* a line-based control socket on ``--control-port`` (same host): ``stats`` answers one JSON
  line, ``reset`` zeroes the figures, ``reflex`` aborts the running motion with a
  ``joint_reflex`` error the way a contact would (a forced reflex for the recovery tests),
  ``quit`` stops the server.

Enforcement follows franka-sim's own switches: ``FRANKA_SIM_ENFORCE_MOTION_LIMITS`` and
``FRANKA_SIM_ENFORCE_COMM_CONSTRAINTS`` (or ``--enforce-motion-limits`` /
``--enforce-comm-constraints``).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time

logger = logging.getLogger("franka_sim_server")

# Index 6 of libfranka's error arrays, joint_reflex: what a contact above the collision
# thresholds latches. franka-sim does not simulate contact reflexes itself.
FORCED_REFLEX_INDEX = 6
# Franka Hand TCP: 0.1034 m along the flange z axis, rotated -45 deg about it (Franka's hand data).
# franka-sim measures the EE from the body <prefix>link7 when the model has no link8 (franky-sim's
# MJCF has none): link7's origin lies 0.107 m before the flange, so the TCP is 0.2104 m from it.
HAND_TCP_Z_M = 0.107 + 0.1034


def absolute_meshdir_mjcf(src_path: str, out_dir: str) -> str:
    """A copy of ``src_path`` whose ``meshdir`` is absolute (franka-sim loads it from elsewhere)."""
    src_dir = os.path.dirname(os.path.abspath(src_path))
    with open(src_path, encoding="utf-8") as f:
        text = f.read()

    def fix(m: re.Match) -> str:
        path = os.path.normpath(os.path.join(src_dir, m.group(2)))
        if not os.path.isdir(path) and os.path.isdir(os.path.join(src_dir, "meshes")):
            path = os.path.join(src_dir, "meshes")  # franky-sim names 'assets' but ships 'meshes'
        return f'{m.group(1)}="{path}"'

    text, n = re.subn(r'(meshdir|texturedir|assetdir)="([^"]*)"', fix, text)
    if n == 0:  # no compiler directory given: meshes are relative to the file itself
        text = text.replace("<compiler", f'<compiler meshdir="{src_dir}"', 1)
    out = os.path.join(out_dir, os.path.basename(src_path))
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return out


class Figures:
    """What the checker saw since the last reset (thread-safe, cheap on the 1 kHz path)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.peak_fraction: dict[str, float] = {}
            self.peak_detail: dict[str, str] = {}
            self.violations: dict[str, int] = {}
            self.reflexes: list[str] = []
            self.recoveries = 0
            self.lost_cycles = 0
            self.cycles = 0
            self.longest_lost_run = 0
            self.started_wall_s = time.time()

    def peak(self, key: str, fraction: float, detail: str) -> None:
        if fraction > self.peak_fraction.get(key, -1.0):
            with self.lock:
                if fraction > self.peak_fraction.get(key, -1.0):
                    self.peak_fraction[key] = fraction
                    self.peak_detail[key] = detail

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "peak_fraction": {k: round(v, 4) for k, v in sorted(self.peak_fraction.items())},
                "peak_detail": dict(sorted(self.peak_detail.items())),
                "violations": dict(self.violations),
                "reflexes": list(self.reflexes),
                "recoveries": self.recoveries,
                "lost_cycles": {"total": self.lost_cycles, "longest_run": self.longest_lost_run,
                                "cycles": self.cycles},
                "seconds": round(time.time() - self.started_wall_s, 2),
            }


FIGURES = Figures()

# Which quantity a checker comparison is about, from its (signal, unit).
_CARTESIAN_KEYS = {"m/s": "translational_velocity", "m/s^2": "translational_acceleration",
                   "m/s^3": "translational_jerk", "rad/s": "rotational_velocity",
                   "rad/s^2": "rotational_acceleration", "rad/s^3": "rotational_jerk"}


def instrument() -> None:
    """Wrap franka-sim's checker and trackers so every judged value updates FIGURES."""
    from franka_sim import comm_constraints
    from franka_sim.limits import checker as checker_mod
    from franka_sim.limits import tables

    Checker = checker_mod.MotionLimitChecker
    norm = checker_mod._norm

    orig_halves = Checker._check_cartesian_halves

    def halves(self, values, translational_limit, rotational_limit, error_index, signal, units):
        if signal == "O_dP_EE_c":
            t, r = norm(values[:3]), norm(values[3:6])
            FIGURES.peak("cartesian_" + _CARTESIAN_KEYS[units[0]], t / translational_limit,
                         f"{t:.4g} {units[0]} of {translational_limit}")
            FIGURES.peak("cartesian_" + _CARTESIAN_KEYS[units[1]], r / rotational_limit,
                         f"{r:.4g} {units[1]} of {rotational_limit}")
        return orig_halves(self, values, translational_limit, rotational_limit, error_index, signal, units)

    Checker._check_cartesian_halves = halves

    orig_per_joint = Checker._check_per_joint

    def per_joint(self, values, limits, error_index, signal, unit):
        # A joint-velocity stream (dq_c) and the robot's IK of a Cartesian one are judged alike.
        if signal.startswith("IK of") or signal == "dq_c":
            key = {"rad/s^2": "joint_acceleration", "rad/s^3": "joint_jerk"}.get(unit)
            if key is not None:
                fr = [abs(v) / lim for v, lim in zip(values, limits)]
                j = max(range(7), key=fr.__getitem__)
                FIGURES.peak(key, fr[j], f"joint {j + 1}: {values[j]:.4g} {unit} of {limits[j]:.4g}")
        return orig_per_joint(self, values, limits, error_index, signal, unit)

    Checker._check_per_joint = per_joint

    orig_commanded = Checker._check_joint_velocity_limits

    def commanded(self, velocity, signal):
        upper = tables.upper_joint_velocity_limits(self._joint_positions)
        lower = tables.lower_joint_velocity_limits(self._joint_positions)
        best, detail = 0.0, ""
        for i in range(7):
            lim = upper[i] if velocity[i] >= 0 else -lower[i]
            fr = abs(velocity[i]) / max(lim, 1e-9)
            if fr > best:
                best, detail = fr, f"joint {i + 1}: {velocity[i]:.4g} rad/s of {lim:.4g} (q {self._joint_positions[i]:.3f})"
        FIGURES.peak("joint_velocity", best, detail)
        return orig_commanded(self, velocity, signal)

    Checker._check_joint_velocity_limits = commanded

    orig_cart_measured = Checker._check_measured_cartesian_velocity_locked

    def cart_measured(self):
        v = self._measured_ee_velocity
        if v is not None and len(v) >= 3:
            speed = norm(v[:3])
            FIGURES.peak("cartesian_translational_velocity_measured", speed / self.measured_cartesian_velocity_limit,
                         f"{speed:.4g} m/s of {self.measured_cartesian_velocity_limit}")
        return orig_cart_measured(self)

    Checker._check_measured_cartesian_velocity_locked = cart_measured

    orig_measured = Checker._check_measured_velocity_locked

    def measured(self):
        dq = self._measured_velocity
        if dq is not None and len(dq) >= 7:
            upper = tables.upper_joint_velocity_limits(self._joint_positions)
            lower = tables.lower_joint_velocity_limits(self._joint_positions)
            margin = self.measured_velocity_margin
            best, detail = 0.0, ""
            for i in range(7):
                # The threshold the safety controller judges against: envelope + margin.
                lim = (upper[i] + margin) if dq[i] >= 0 else (-lower[i] + margin)
                fr = abs(dq[i]) / lim
                if fr > best:
                    best, detail = fr, f"joint {i + 1}: {dq[i]:.4g} rad/s of {lim:.4g} (q {self._joint_positions[i]:.3f})"
            FIGURES.peak("joint_velocity_measured", best, detail)
        return orig_measured(self)

    Checker._check_measured_velocity_locked = measured

    Tracker = comm_constraints.CommConstraintTracker
    orig_close = Tracker._close_cycle_locked

    def close_cycle(self, closed_id):
        outcome = orig_close(self, closed_id)
        if outcome.active:
            with FIGURES.lock:
                FIGURES.cycles += 1
                if outcome.lost:
                    FIGURES.lost_cycles += 1
                    FIGURES.longest_lost_run = max(FIGURES.longest_lost_run, outcome.consecutive_lost)
        return outcome

    Tracker._close_cycle_locked = close_cycle


def make_server_class():
    from franka_sim import FrankaSimServer
    from franka_sim.limits.tables import ERROR_NAMES

    names = dict(ERROR_NAMES)
    names[FORCED_REFLEX_INDEX] = "joint_reflex"
    names[25] = "communication_constraints_violation"

    class InstrumentedServer(FrankaSimServer):
        hand_tcp = True

        def reset_state(self):
            super().reset_state()
            if self.hand_tcp:
                # Desk sets F_T_NE to the Franka Hand's TCP when the hand is installed; franka-sim
                # leaves it at identity. Column-major, like every pose on the wire.
                c, s = math.cos(-math.pi / 4), math.sin(-math.pi / 4)
                self.robot_state.state["F_T_NE"] = [c, s, 0.0, 0.0, -s, c, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0,
                                                    0.0, 0.0, HAND_TCP_Z_M, 1.0]
                self._refresh_ee_transform()

        def _abort_with_error(self, error_index, reason, motion_id=0):
            indices = (error_index,) if isinstance(error_index, int) else tuple(error_index)
            if not (motion_id and motion_id != self._motion_generation):
                with FIGURES.lock:
                    FIGURES.reflexes.append(
                        "+".join(names.get(i, str(i)) for i in indices) + ": " + reason[:200])
            return super()._abort_with_error(error_index, reason, motion_id)

        def handle_automatic_error_recovery_command(self, client_socket, header, payload):
            with FIGURES.lock:
                FIGURES.recoveries += 1
            return super().handle_automatic_error_recovery_command(client_socket, header, payload)

        def force_reflex(self) -> bool:
            """Abort the running motion with joint_reflex (as a contact would); False if idle."""
            with self._motion_lock:
                if not self.current_motion_id:
                    return False
                # Latched like franka-sim's own aborts (_latch_and_abort): the aborted motion's
                # datagrams still in flight are not judged again.
                self.motion_limits.latch()
                self._abort_with_error(FORCED_REFLEX_INDEX, "joint_reflex (forced by the test harness)",
                                       self._motion_generation)
                return True

    return InstrumentedServer


def count_violations() -> None:
    """Count every violation franka-sim reports (enforced or not), by error name."""
    from franka_sim.limits import checker as checker_mod

    orig_report = checker_mod.MotionLimitChecker.report

    def report(self, violation, *, enforced):
        name = violation.error_name
        with FIGURES.lock:
            FIGURES.violations[name] = FIGURES.violations.get(name, 0) + 1
        return orig_report(self, violation, enforced=enforced)

    checker_mod.MotionLimitChecker.report = report


def serve_control(server, host: str, port: int, stop: threading.Event) -> None:
    listener = socket.create_server((host, port))
    listener.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        with conn, conn.makefile("rw", encoding="utf-8") as f:
            for line in f:
                cmd = line.strip()
                if cmd == "stats":
                    reply = FIGURES.snapshot()
                    reply["robot_mode"] = int(server.robot_state.state.get("robot_mode", -1))
                    reply["dq_max"] = max(abs(float(v)) for v in server.robot_state.state["dq"])
                    reply["dq"] = [round(float(v), 4) for v in server.robot_state.state["dq"]]
                elif cmd == "reset":
                    FIGURES.reset()
                    reply = {"ok": True}
                elif cmd == "reflex":
                    reply = {"ok": server.force_reflex()}
                elif cmd == "quit":
                    stop.set()
                    reply = {"ok": True}
                else:
                    reply = {"error": f"unknown command {cmd!r}"}
                f.write(json.dumps(reply) + "\n")
                f.flush()
                if stop.is_set():
                    break
    listener.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address the FCI (1337) and gripper (1338) ports bind")
    p.add_argument("--control-port", type=int, required=True, help="port of the control socket on --host")
    p.add_argument("--mjcf", required=True, help="FR3 MJCF (franky-sim's franky_sim/assets/fr3.xml)")
    p.add_argument("--enforce-motion-limits", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--enforce-comm-constraints", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--no-gripper", action="store_true")
    p.add_argument("--flange-ee", action="store_true",
                   help="report franka-sim's own EE frame (link7 with this model) instead of the Franka Hand's TCP")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tmp = tempfile.mkdtemp(prefix="franka_sim_mjcf_")
    os.environ["FR3_MJCF"] = absolute_meshdir_mjcf(args.mjcf, tmp)
    instrument()
    count_violations()
    server_class = make_server_class()
    server_class.hand_tcp = not args.flange_ee
    server = server_class(host=args.host, enable_gripper=not args.no_gripper,
                                 enforce_comm_constraints=args.enforce_comm_constraints,
                                 enforce_motion_limits=args.enforce_motion_limits)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    control = threading.Thread(target=serve_control, args=(server, args.host, args.control_port, stop),
                               name="control", daemon=True)
    control.start()
    sim = threading.Thread(target=server.start, name="franka-sim", daemon=True)
    sim.start()
    print(f"franka_sim_server: serving on {args.host} (motion limits enforced: {server.enforce_motion_limits}, "
          f"communication constraints enforced: {server.enforce_comm_constraints})", flush=True)
    try:
        while not stop.wait(0.5) and sim.is_alive():
            pass
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
