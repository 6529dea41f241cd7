"""The task scene in MuJoCo without the libfranka protocol, reached over a small UDP link.

:class:`DirectWorld` is the second sim mode of the sim graph (``sim_world_node`` with
``physics: direct``; the Franka node with ``robot.backend: direct``). It owns the same scene as
:class:`robot_stack.sim.franky_world.FrankyWorld` (franky-sim's FR3 scene plus the task's
bodies and cameras, built by :func:`robot_stack.sim.realtime_world.build_task_scene`) and the
same reset/success/render methods (:class:`~robot_stack.sim.realtime_world.RealtimeWorld`), but
instead of franky-sim's 1 kHz torque loop behind libfranka it steps MuJoCo at
``control_rate_hz`` with ``physics_timestep_s`` substeps, the arm driven by the fast Gymnasium
driver's resolved-rate IK (:class:`robot_stack.sim.robot.EEVelocityController`: position
servos under gravity compensation tracking an integrated TCP setpoint, clipped to that
controller's workspace box, which contains the Franka node's safety box). On a 2-core machine
that leaves room for the rest of the graph (see benchmarks/sim_direct_realtime.py).

The robot side is served on ``hostname:port`` (UDP) by a thread of this world, with the wire
format of :mod:`robot_stack.devices.franka.direct` (whose :class:`DirectRobot` is the client).
What the world does with the commands, like a robot would:

* ``TWIST`` is held for the hold time the client sends (sim time), then the arm is brought to
  rest: a client that dies cannot leave the arm moving. Every change of the executed twist is
  limited to ``max_lin_accel_m_s2`` / ``max_ang_accel_rad_s2``.
* A twist above ``reflex_lin_speed_m_s`` / ``reflex_ang_speed_rad_s`` or with non-finite
  values puts the world in a reflex (error) state: the arm stops and every motion command is
  refused until ``RECOVER``.
* ``MOVE_HOME`` runs :class:`robot_stack.devices.franka.base.PoseServo` (the franky backend's home
  law, with the limits the client sends) at the control rate until the pose is reached; any
  motion command pre-empts it (reported as failed).
* Gripper: the hand's position servo follows a width setpoint that moves at the requested
  speed: to the width for ``GRIPPER_MOVE``, to zero for ``GRIPPER_GRASP`` (the fingers stop on
  contact and squeeze with about ``HAND_STIFFNESS_N_M`` x width / 2; the requested force is not
  modelled).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import socket
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from robot_stack.devices.franka import wire
from robot_stack.devices.franka.base import GRIPPER_MAX_WIDTH_M
from robot_stack.devices.franka.servo import PoseServo
from robot_stack.sim.realtime_world import RealtimeWorld, RealtimeWorldConfig, WorldScene, build_task_scene

logger = logging.getLogger(__name__)

HAND_CTRL_PER_M = 255.0 / GRIPPER_MAX_WIDTH_M
"""franky-sim's FR3 hand actuator: ctrl 0..255 spans finger width 0..0.08 m."""
HAND_STIFFNESS_N_M = 2000.0
"""Hand servo stiffness on the finger tendon (the MJCF's 100 N/m cannot beat the fingers' joint
friction: they crept at ~1 cm/s); a grasp then squeezes with about stiffness x width / 2."""
HAND_DAMPING_N_S_M = 60.0
"""Hand servo damping on the finger tendon, N s/m (about critical with the fingers' armature)."""


@dataclass(frozen=True)
class DirectWorldConfig(RealtimeWorldConfig):
    """Direct sim world settings."""

    hostname: str = "127.0.0.1"
    """Address the direct link's UDP socket binds (the Franka node's robot.robot_ip)."""
    port: int = 17337
    """UDP port of the direct link (the Franka node's robot.direct_port)."""
    control_rate_hz: float = 250.0
    """Rate of the arm controller (resolved-rate IK) and of the state the link reports, Hz."""
    physics_timestep_s: float = 0.002
    """MuJoCo step; control_rate_hz must divide into a whole number of them, s."""
    max_lin_accel_m_s2: float = 2.0
    """Largest change of the executed EE linear velocity, m/s^2 (also ramps stops)."""
    max_ang_accel_rad_s2: float = 10.0
    """Largest change of the executed EE angular velocity, rad/s^2."""
    reflex_lin_speed_m_s: float = 1.7
    """A commanded EE speed above this puts the world in its reflex state (FR3's Cartesian limit), m/s."""
    reflex_ang_speed_rad_s: float = 2.5
    """A commanded EE rotation speed above this puts the world in its reflex state, rad/s."""

    @property
    def substeps(self) -> int:
        return max(1, int(round(1.0 / (self.control_rate_hz * self.physics_timestep_s))))

    def validate(self) -> None:
        super().validate()
        if not self.hostname:
            raise ValueError("hostname must not be empty (use a loopback address such as 127.0.0.1)")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be a UDP port in 1..65535, got {self.port}")
        if not (self.control_rate_hz > 0 and self.physics_timestep_s > 0):
            raise ValueError("control_rate_hz and physics_timestep_s must be > 0")
        n = 1.0 / (self.control_rate_hz * self.physics_timestep_s)
        if n < 1.0 - 1e-9 or abs(n - round(n)) > 1e-6:
            raise ValueError(f"1 / control_rate_hz ({1.0 / self.control_rate_hz} s) must be a whole number (>= 1) "
                             f"of physics_timestep_s ({self.physics_timestep_s} s)")
        for name in ("max_lin_accel_m_s2", "max_ang_accel_rad_s2", "reflex_lin_speed_m_s", "reflex_ang_speed_rad_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass
class _Command:
    """What the robot side asked for (guarded by DirectWorld._cmd_lock)."""

    lin: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    ang: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    until_s: float = -math.inf
    """Sim time until which the twist is held."""
    error: str = ""
    """Reflex reason; non-empty = error state."""
    home: PoseServo | None = None
    home_reached: bool = False
    home_failed: bool = False
    hand_goal_m: float | None = None
    """Finger width the hand moves to (None: hold the current setpoint)."""
    hand_speed_m_s: float = 0.05


def _clip_norm(x: np.ndarray, n_max: float) -> np.ndarray:
    n = float(np.linalg.norm(x))
    return x if n <= n_max else x * (n_max / n)


class DirectWorld(RealtimeWorld):
    """Task scene + resolved-rate arm control + the direct link server; see the module docstring."""

    name = "direct-world"

    def __init__(self, config: DirectWorldConfig | None = None, scene: WorldScene | None = None,
                 clock=time.perf_counter):
        super().__init__(config or DirectWorldConfig(), scene, clock)
        self.step_dt_s = 1.0 / self.config.control_rate_hz
        self._controller = None
        self._handles = None
        self._cmd = _Command()
        self._cmd_lock = threading.Lock()
        self._lin = np.zeros(3)  # executed twist (after the acceleration limit)
        self._ang = np.zeros(3)
        self._hand_sp_m = 0.0  # finger width setpoint of the hand servo
        self._snapshot: wire.WireState | None = None
        self._sock: socket.socket | None = None
        self._server: threading.Thread | None = None
        self._server_running = False
        self.requests = 0
        """Requests served (for statistics)."""

    # -- lifecycle ----------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.config
        # The socket first: an address in use fails before anything is built.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((cfg.hostname, cfg.port))
        except OSError as e:
            sock.close()
            raise OSError(f"the direct sim world could not bind UDP {cfg.hostname}:{cfg.port} ({e}): another "
                          f"world is running there; pick another address or port") from e
        sock.settimeout(0.2)  # the server thread checks for close() this often
        try:
            self._build_model()
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._server = threading.Thread(target=self._serve, name="direct-link", daemon=True)
        self._server_running = True
        self._server.start()
        logger.info("direct sim world serving on udp://%s:%d (%g Hz control, %d substeps of %g s)",
                    cfg.hostname, cfg.port, cfg.control_rate_hz, cfg.substeps, cfg.physics_timestep_s)

    def _build_model(self) -> None:
        import mujoco

        from robot_stack.sim.robot import ControllerConfig, EEVelocityController, FR3Handles

        cfg = self.config
        sim = build_task_scene(cfg, self.scene)
        root = sim.scene
        sim.cleanup()  # only its scene tree is used: no franky-sim server, no torque loop
        for body in root.iter("body"):
            # Arm links float under gravity compensation so the position servos track exactly
            # (as in the fast driver); franky-sim compensates gravity in its torque loop instead.
            name = body.get("name", "")
            if name.startswith("robot0_fr3_link") and name != "robot0_fr3_link0":
                body.set("gravcomp", "1")
        model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
        model.opt.timestep = cfg.physics_timestep_s
        data = mujoco.MjData(model)
        h = FR3Handles(model)
        width = float(getattr(self.scene, "gripper_width_m", cfg.initial_gripper_width_m) if self.scene
                      else cfg.initial_gripper_width_m)
        data.qpos[h.qpos_adr] = cfg.initial_q_rad
        data.qpos[h.finger_qpos_adr] = width / 2.0
        data.ctrl[h.arm_act] = cfg.initial_q_rad
        if h.hand_act >= 0:
            # Stiffer hand servo, same ctrl scale: force = k (ctrl / HAND_CTRL_PER_M / 2 - L) - kv dL/dt
            # on the finger tendon L (= width / 2).
            model.actuator_gainprm[h.hand_act, 0] = HAND_STIFFNESS_N_M / (2.0 * HAND_CTRL_PER_M)
            model.actuator_biasprm[h.hand_act, 1:3] = (-HAND_STIFFNESS_N_M, -HAND_DAMPING_N_S_M)
            data.ctrl[h.hand_act] = width * HAND_CTRL_PER_M
        self._hand_sp_m = width
        mujoco.mj_forward(model, data)
        self._controller = EEVelocityController(h, ControllerConfig(ik_every_substeps=cfg.substeps))
        self._controller.reset(data)
        self._handles = h
        self._model, self._data = model, data
        self._snapshot = self._measure()

    def _shutdown(self) -> None:
        self._server_running = False
        if self._server is not None:
            self._server.join(timeout=2.0)
            self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def hostname(self) -> str:
        return self.config.hostname

    @property
    def port(self) -> int:
        return self.config.port

    # -- physics (world lock held) --------------------------------------------------------------
    def _step(self) -> None:
        import mujoco

        cfg, dt = self.config, self.step_dt_s
        now = self.sim_time_s
        snap = self._snapshot
        with self._cmd_lock:
            c = self._cmd
            if c.error:
                lin_t, ang_t = np.zeros(3), np.zeros(3)
            elif c.home is not None:
                reached, lin_t, ang_t = c.home.step(snap.T_base_ee, snap.ee_lin_m_s)
                if reached:
                    c.home, c.home_reached = None, True
            elif now <= c.until_s:
                lin_t, ang_t = c.lin, c.ang
            else:
                lin_t, ang_t = np.zeros(3), np.zeros(3)  # hold expired: come to rest by itself
            hand_goal, hand_speed = c.hand_goal_m, c.hand_speed_m_s
        if hand_goal is not None:
            self._hand_sp_m += float(np.clip(hand_goal - self._hand_sp_m, -hand_speed * dt, hand_speed * dt))
        self._lin = self._lin + _clip_norm(lin_t - self._lin, cfg.max_lin_accel_m_s2 * dt)
        self._ang = self._ang + _clip_norm(ang_t - self._ang, cfg.max_ang_accel_rad_s2 * dt)
        self._controller.step(self._model, self._data, self._lin, self._ang, dt, self._hand_sp_m * HAND_CTRL_PER_M)
        mujoco.mj_forward(self._model, self._data)  # state and renders of the stepped configuration
        self._snapshot = self._measure()

    def _measure(self) -> wire.WireState:
        h, data = self._handles, self._data
        jp, jr = h.jacobian(data)
        dq = data.qvel[h.dof_adr]
        T = np.eye(4)
        T[:3, :3] = h.R_base_ee(data)
        T[:3, 3] = h.tcp_pos(data)
        return wire.WireState(t_s=self.sim_time_s, q_rad=h.q(data), dq_rad_s=dq.copy(), T_base_ee=T,
                              ee_lin_m_s=jp @ dq, ee_ang_rad_s=jr @ dq, gripper_width_m=h.gripper_width(data), flags=0)

    # -- the direct link (server thread) ----------------------------------------------------------
    def _serve(self) -> None:
        while self._server_running:
            try:
                data, peer = self._sock.recvfrom(wire.MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError as e:
                if self._server_running:
                    logger.error("direct link receive failed: %s", e)
                return
            reply = self.handle_datagram(data)
            if reply is not None:
                try:
                    self._sock.sendto(reply, peer)
                except OSError as e:
                    logger.warning("direct link reply to %s failed: %s", peer, e)

    def handle_datagram(self, data: bytes) -> bytes | None:
        """The reply to one request datagram (None: not ours, ignored)."""
        try:
            kind, seq, values = wire.unpack_request(data)
        except wire.VersionMismatch as e:
            hdr = wire.HEADER.unpack_from(data)
            return wire.pack_reply(hdr[2], hdr[4], wire.Status.BAD_VERSION, wire.WireState.empty(),
                                   f"this sim world speaks direct-link protocol v{e.ours}, the request v{e.theirs}")
        except wire.ProtocolError as e:
            if len(data) >= wire.HEADER.size and data[:4] == wire.MAGIC:
                hdr = wire.HEADER.unpack_from(data)
                return wire.pack_reply(hdr[2], hdr[4], wire.Status.BAD_REQUEST, wire.WireState.empty(), str(e))
            logger.debug("ignored a datagram that is not ours: %s", e)
            return None
        self.requests += 1
        status, message = self._apply(kind, values)
        with self._cmd_lock:
            flags = self._flags(self._cmd)
        state = dataclasses.replace(self._snapshot, flags=flags)
        return wire.pack_reply(kind, seq, status, state, message)

    @staticmethod
    def _flags(c: _Command) -> int:
        return ((wire.FLAG_ERROR if c.error else 0) | (wire.FLAG_HOMING if c.home is not None else 0)
                | (wire.FLAG_HOME_REACHED if c.home_reached else 0) | (wire.FLAG_HOME_FAILED if c.home_failed else 0))

    def _apply(self, kind: wire.Kind, v: tuple) -> tuple[wire.Status, str]:
        cfg = self.config
        K = wire.Kind
        if kind in (K.HELLO, K.STATE):
            return wire.Status.OK, ""
        with self._cmd_lock:
            c = self._cmd
            if kind == K.RECOVER:
                if c.error:
                    logger.info("direct world: recovered from '%s'", c.error)
                self._cmd = _Command(hand_goal_m=c.hand_goal_m, hand_speed_m_s=c.hand_speed_m_s)
                return wire.Status.OK, ""
            if kind in (K.GRIPPER_MOVE, K.GRIPPER_GRASP):
                width, speed = (v[0], v[1]) if kind == K.GRIPPER_MOVE else (0.0, v[0])
                if not (math.isfinite(width) and math.isfinite(speed) and speed > 0):
                    return wire.Status.REJECTED, f"gripper width {width!r} / speed {speed!r} must be finite (speed > 0)"
                c.hand_goal_m = float(np.clip(width, 0.0, GRIPPER_MAX_WIDTH_M))
                c.hand_speed_m_s = float(speed)
                return wire.Status.OK, ""
            if kind == K.STOP:
                self._preempt_home(c)
                c.lin, c.ang, c.until_s = np.zeros(3), np.zeros(3), -math.inf
                return wire.Status.OK, ""
            if c.error:
                return wire.Status.REJECTED, f"robot in reflex mode ({c.error}): call recover()"
            if kind == K.TWIST:
                lin, ang, hold_s = np.array(v[0:3]), np.array(v[3:6]), float(v[6])
                if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang)) and math.isfinite(hold_s)):
                    return self._reflex(c, "non-finite velocity command")
                if np.linalg.norm(lin) > cfg.reflex_lin_speed_m_s:
                    return self._reflex(c, f"cartesian velocity reflex: {np.linalg.norm(lin):.2f} m/s exceeds "
                                           f"{cfg.reflex_lin_speed_m_s} m/s")
                if np.linalg.norm(ang) > cfg.reflex_ang_speed_rad_s:
                    return self._reflex(c, f"cartesian velocity reflex: {np.linalg.norm(ang):.2f} rad/s exceeds "
                                           f"{cfg.reflex_ang_speed_rad_s} rad/s")
                self._preempt_home(c)
                c.home_reached = False
                c.lin, c.ang, c.until_s = lin, ang, self.sim_time_s + max(0.0, hold_s)
                return wire.Status.OK, ""
            if kind == K.MOVE_HOME:
                T = np.array(v[0:16]).reshape(4, 4)
                limits = v[16:23]
                if not (np.all(np.isfinite(T)) and np.all(np.isfinite(limits))) or min(limits) <= 0:
                    return wire.Status.REJECTED, "home pose and limits must be finite (limits > 0)"
                R = T[:3, :3]
                if not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
                    return wire.Status.REJECTED, "home pose rotation is not orthonormal"
                c.home = PoseServo(T, self.step_dt_s, *limits)
                c.home_reached = c.home_failed = False
                c.lin, c.ang, c.until_s = np.zeros(3), np.zeros(3), -math.inf
                return wire.Status.OK, ""
        return wire.Status.BAD_REQUEST, f"unhandled request {kind.name}"

    @staticmethod
    def _preempt_home(c: _Command) -> None:
        if c.home is not None:
            c.home, c.home_failed = None, True

    def _reflex(self, c: _Command, reason: str) -> tuple[wire.Status, str]:
        self._preempt_home(c)
        c.error = reason
        c.lin, c.ang, c.until_s = np.zeros(3), np.zeros(3), -math.inf
        logger.warning("direct world: %s", reason)
        return wire.Status.REJECTED, reason
