"""FR3 kinematics on a MuJoCo model/data pair and the fast driver's EE-velocity controller.

Works on any model built with the franky_sim naming (``robot0_fr3_joint1`` ... ``robot0_hand``),
so the task definitions can use :class:`FR3Handles` in the franky-sim world too.

The TCP (tool centre point) is the point between the fingertips, 0.1034 m along the hand's
z axis (libfranka's default end-effector frame), expressed in the robot base frame, which
coincides with the world frame in both scenes (robot base at the origin).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_stack.sim.scene import ROBOT_PREFIX

logger = logging.getLogger(__name__)

TCP_OFFSET_M = 0.1034
"""Distance from the hand body origin to the TCP along the hand z axis (m)."""

R_BASE_EE_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
"""Hand orientation used by the tasks: gripper pointing down, fingers opening along base y."""


_EYE6 = np.eye(6)
_EYE7 = np.eye(7)


class FR3Handles:
    """Joint/body addresses of one FR3 in a compiled model (resolved once per model)."""

    def __init__(self, model: mujoco.MjModel, robot_prefix: str = ROBOT_PREFIX) -> None:
        self.model = model
        self.qpos_adr = np.empty(7, dtype=int)
        self.dof_adr = np.empty(7, dtype=int)
        self.jnt_range = np.empty((7, 2))
        for i in range(7):
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"{robot_prefix}fr3_joint{i + 1}")
            if jid < 0:
                raise KeyError(f"joint '{robot_prefix}fr3_joint{i + 1}' not in model: wrong robot_prefix?")
            self.qpos_adr[i] = model.jnt_qposadr[jid]
            self.dof_adr[i] = model.jnt_dofadr[jid]
            self.jnt_range[i] = model.jnt_range[jid]
        self.finger_qpos_adr = np.empty(2, dtype=int)
        self.finger_dof_adr = np.empty(2, dtype=int)
        for i in range(2):
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"{robot_prefix}finger_joint{i + 1}")
            self.finger_qpos_adr[i] = model.jnt_qposadr[jid]
            self.finger_dof_adr[i] = model.jnt_dofadr[jid]
        self.hand_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{robot_prefix}hand")
        if self.hand_id < 0:
            raise KeyError(f"body '{robot_prefix}hand' not in model")
        self.arm_act = np.array(
            [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{robot_prefix}fr3_joint{i + 1}") for i in range(7)]
        )
        self.hand_act = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, f"{robot_prefix}hand")
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    # -- state -----------------------------------------------------------------------------
    def q(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.qpos_adr].copy()

    def tcp_pos(self, data: mujoco.MjData) -> np.ndarray:
        """TCP position in the base frame (m)."""
        return data.xpos[self.hand_id] + data.xmat[self.hand_id].reshape(3, 3)[:, 2] * TCP_OFFSET_M

    def R_base_ee(self, data: mujoco.MjData) -> np.ndarray:
        return data.xmat[self.hand_id].reshape(3, 3).copy()

    def tcp_quat(self, data: mujoco.MjData) -> np.ndarray:
        """TCP orientation as (w, x, y, z), sign chosen with w >= 0."""
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, data.xmat[self.hand_id])
        return quat if quat[0] >= 0 else -quat

    def jacobian(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """(3x7 linear, 3x7 angular) TCP Jacobian w.r.t. the arm joints (needs mj_forward'ed data)."""
        mujoco.mj_jac(self.model, data, self._jacp, self._jacr, self.tcp_pos(data), self.hand_id)
        return self._jacp[:, self.dof_adr], self._jacr[:, self.dof_adr]

    def tcp_linvel(self, data: mujoco.MjData) -> np.ndarray:
        jp, _ = self.jacobian(data)
        return jp @ data.qvel[self.dof_adr]

    def gripper_width(self, data: mujoco.MjData) -> float:
        return float(data.qpos[self.finger_qpos_adr].sum())

    # -- kinematic moves -------------------------------------------------------------------
    def ik_step(
        self,
        data: mujoco.MjData,
        p_target: np.ndarray,
        R_target: np.ndarray,
        q_posture: np.ndarray | None = None,
        damping: float = 1e-2,
    ) -> np.ndarray:
        """One damped-least-squares step: joint increment towards the TCP pose target."""
        jp, jr = self.jacobian(data)
        J = np.concatenate([jp, jr], axis=0)
        # Orientation error sum_i R_i x Rt_i = 2 vee(skew(Rt R^T)) (np.cross is slow here).
        M = R_target @ self.R_base_ee(data).T
        e_rot = 0.5 * np.array([M[2, 1] - M[1, 2], M[0, 2] - M[2, 0], M[1, 0] - M[0, 1]])
        err = np.concatenate([p_target - self.tcp_pos(data), e_rot])
        JJt_inv = np.linalg.inv(J @ J.T + damping**2 * _EYE6)
        J_pinv = J.T @ JJt_inv
        dq = J_pinv @ err
        if q_posture is not None:
            # Null-space pull towards the posture keeps the elbow away from joint limits.
            dq += (_EYE7 - J_pinv @ J) @ (0.2 * (q_posture - self.q(data)))
        return dq

    def set_tcp_pose(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        p_target: np.ndarray,
        R_target: np.ndarray = R_BASE_EE_DOWN,
        q_start: np.ndarray | None = None,
        iterations: int = 60,
        tol_m: float = 1e-4,
    ) -> float:
        """Teleport the arm (qpos, zero qvel) to an IK solution; returns the residual error (m)."""
        if q_start is not None:
            data.qpos[self.qpos_adr] = q_start
        q_posture = self.q(data)
        err = np.inf
        for _ in range(iterations):
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            err = float(np.linalg.norm(p_target - self.tcp_pos(data)))
            if err < tol_m:
                break
            dq = self.ik_step(data, p_target, R_target, q_posture, damping=1e-3)
            q = np.clip(self.q(data) + dq, self.jnt_range[:, 0], self.jnt_range[:, 1])
            data.qpos[self.qpos_adr] = q
        data.qvel[self.dof_adr] = 0.0
        if self.arm_act.min() >= 0:
            data.ctrl[self.arm_act] = self.q(data)
        mujoco.mj_forward(model, data)
        return err


@dataclass
class ControllerConfig:
    """Fast driver's EE-velocity controller (resolved-rate IK feeding joint position servos)."""

    ik_every_substeps: int = 5
    """Recompute the IK target every this many physics substeps."""
    max_setpoint_lead_m: float = 0.01
    """Largest allowed distance between the integrated TCP setpoint and the actual TCP (m);
    bounds the push force when the tool is blocked by contact (no wind-up)."""
    velocity_feedforward_s: float = 0.1
    """The servo target leads the setpoint by velocity times this (s): the FR3 position
    servos' kv/kp, so they track a moving setpoint without steady-state lag."""
    workspace_low_m: tuple[float, float, float] = (0.25, -0.35, 0.02)
    """Lower corner of the TCP workspace box in the base frame (m); the setpoint is clipped."""
    workspace_high_m: tuple[float, float, float] = (0.75, 0.35, 0.60)
    """Upper corner of the TCP workspace box in the base frame (m)."""


class EEVelocityController:
    """Turns a base-frame TCP twist into joint position targets for the position actuators.

    The TCP setpoint integrates the commanded velocity (so the commanded speed is tracked
    without drift), is clipped to the workspace box and kept within ``max_setpoint_lead_m``
    of the actual TCP. Orientation integrates the commanded angular velocity (zero for
    translation-only tasks: the hand keeps its pose).
    """

    def __init__(self, handles: FR3Handles, config: ControllerConfig | None = None) -> None:
        self.h = handles
        self.cfg = config or ControllerConfig()
        self._p_sp = np.zeros(3)
        self._R_sp = R_BASE_EE_DOWN.copy()
        self._q_posture = np.zeros(7)
        self._lo = np.asarray(self.cfg.workspace_low_m)
        self._hi = np.asarray(self.cfg.workspace_high_m)

    def reset(self, data: mujoco.MjData) -> None:
        """Take the current pose as setpoint (call after the task's reset)."""
        self._p_sp = self.h.tcp_pos(data).copy()
        self._R_sp = self.h.R_base_ee(data)
        self._q_posture = self.h.q(data)

    def step(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        lin_m_s: np.ndarray,
        ang_rad_s: np.ndarray,
        duration_s: float,
        gripper_ctrl: float | None = None,
    ) -> None:
        """Advance physics by ``duration_s`` while tracking the twist."""
        n_sub = max(1, int(round(duration_s / model.opt.timestep)))
        dt = model.opt.timestep
        if gripper_ctrl is not None and self.h.hand_act >= 0:
            data.ctrl[self.h.hand_act] = gripper_ctrl
        k = self.cfg.ik_every_substeps
        for i in range(0, n_sub, k):
            chunk = min(k, n_sub - i)
            self._p_sp = np.clip(self._p_sp + lin_m_s * dt * chunk, self._lo, self._hi)
            p = self.h.tcp_pos(data)
            lead = self._p_sp - p
            n = np.linalg.norm(lead)
            if n > self.cfg.max_setpoint_lead_m:
                self._p_sp = p + lead * (self.cfg.max_setpoint_lead_m / n)
            if np.any(ang_rad_s):
                w = np.asarray(ang_rad_s) * dt * chunk
                dR = np.empty(9)
                quat = np.empty(4)
                mujoco.mju_axisAngle2Quat(quat, w / (np.linalg.norm(w) + 1e-12), np.linalg.norm(w))
                mujoco.mju_quat2Mat(dR, quat)
                self._R_sp = dR.reshape(3, 3) @ self._R_sp
            p_cmd = self._p_sp + lin_m_s * self.cfg.velocity_feedforward_s
            dq = self.h.ik_step(data, p_cmd, self._R_sp, self._q_posture)
            q_cmd = np.clip(self.h.q(data) + dq, self.h.jnt_range[:, 0], self.h.jnt_range[:, 1])
            data.ctrl[self.h.arm_act] = q_cmd
            mujoco.mj_step(model, data, nstep=chunk)
