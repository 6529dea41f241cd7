"""The simulated robot and operator around the actor core, on a simulated clock (ROS-free).

The training script and the benchmark drive a Gymnasium task with the objects the robot runs:
:class:`~robot_stack.actor.core.ActorCore` assembles observations, arbitrates between the policy
and the operator, cuts episodes and writes step records;
:class:`~robot_stack.rl.learner.LearnerCore` labels them, stores and trains. This module is
the part that stands in for the hardware:

* :class:`SimRobot`: the task env as the actor's sensors (EE pose and twist, gripper width,
  camera images, and in state mode the sim's privileged task state) and as the robot that
  executes the actor's :class:`~robot_stack.actor.core.RobotCommand` for one control period.
* :class:`SimSpaceMouse`: the simulated operator's SpaceMouse readings through the device's
  :class:`~robot_stack.devices.spacemouse.intervention.InterventionDetector` (deadzone, hysteresis, hold),
  giving the :class:`~robot_stack.types.teleop.OperatorCommand` the actor gets from the
  SpaceMouse node.
* :func:`run_control_step`: one control period at time ``t``.

Timeline of one control period ``[t, t + T)`` (the order below is the order of the calls):

1. the robot's state at ``t`` reaches the actor (stamped ``t``);
2. an operator whose hold ended lets go of the puck (a zero reading at ``t``): the step before
   was the operator's whole step, and this one can be the policy's;
3. ``actor.tick(t)`` closes the previous step's record and proposes the policy's action;
4. the operator judges that proposal on the sim state (as RLIF's simulated experts judge the
   policy's action) and, taking over or holding on, deflects the puck at ``t``: the actor
   switches to the operator's command at once;
5. the robot executes the last command for the whole period.

So an operator who takes over at ``t`` holds the whole step (the actor's at-least-half rule
marks it an intervention), and the step's recorded action is exactly what the env executed.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from robot_stack.actor.core import ActorCore, RobotCommand, TickResult
from robot_stack.devices.spacemouse.intervention import InterventionConfig, InterventionDetector
from robot_stack.types.spec import PolicySpec
from robot_stack.types.teleop import OperatorCommand, SpaceMouseReading, TeleopMapping

log = logging.getLogger(__name__)

TASK_IDS = {"reach": "robot_stack/Reach-v0", "peg_insertion": "robot_stack/PegInsertion-v0"}
STATE_NAMES = ("goal_x_m", "goal_y_m", "goal_z_m", "goal_minus_tool_x_m", "goal_minus_tool_y_m", "goal_minus_tool_z_m")
"""Proprio names of the sim's privileged task state (the actor's 'task' source), state mode."""

SIM_INTERVENTION = InterventionConfig(hold_s=0.05)
"""Intervention detection for the simulated operator, as in the sim graph (launch/sim.launch.yaml):
it decides every control step, so a short hold keeps its takeovers as long as it means them."""


def episode_seed(seed: int, episode_id: int, stream: int = 0) -> int:
    """Seed of episode ``episode_id`` of a run (the env reset, and the operator with stream 1):
    a function of the ids alone, so a resumed run needs no saved RNG state."""
    return int(np.random.default_rng([int(seed), int(episode_id), int(stream)]).integers(0, 2**31 - 1))


class SimRobot:
    """A Gymnasium task as the actor's sensors and robot (the one place that knows the env)."""

    def __init__(self, task: str, obs: str, image_size: int = 64, cameras: tuple[str, ...] | None = None):
        import gymnasium as gym

        import robot_stack.sim  # noqa: F401  (registers the gym ids)

        kwargs = {"obs_mode": obs}
        if obs == "pixels":
            kwargs["image_size"] = image_size
            if cameras:
                kwargs["cameras"] = tuple(cameras)
        self.env = gym.make(TASK_IDS[task], **kwargs)
        u = self.env.unwrapped
        self.task = u.task
        self.state_mode = obs == "state"
        sim_spec: PolicySpec = u.policy_spec
        names = sim_spec.proprio_names + (STATE_NAMES if self.state_mode else ())
        self.spec = dataclasses.replace(sim_spec, proprio_names=names)
        """The policy's spec: the sim's, plus the privileged task state in state mode."""
        self.horizon_steps = int(u.max_episode_steps)
        self.period_s = 1.0 / float(sim_spec.control_rate_hz)
        self._obs: dict | None = None
        self.success = False

    @property
    def model(self):
        return self.env.unwrapped.model

    @property
    def data(self):
        return self.env.unwrapped.data

    def reset(self, seed: int) -> None:
        self._obs, info = self.env.reset(seed=seed)
        self.success = bool(info["is_success"])

    def sense(self, actor: ActorCore, t: float) -> None:
        """Hand the current state to the actor, stamped ``t`` (what the sensor topics carry)."""
        o = self._obs
        if o is None:  # before the first reset there is nothing to sense
            return
        p = np.asarray(o["proprio"], np.float64)  # [x y z, qw qx qy qz, vx vy vz, width]
        actor.on_ee_pose(p[0:3], p[[4, 5, 6, 3]], t)
        actor.on_ee_twist(p[7:10], np.zeros(3), t)
        actor.on_gripper_width(p[10], t)
        for cam in self.spec.cameras:
            actor.on_camera_frame(cam.name, o[cam.name], t)
        if self.state_mode:
            actor.on_task_state(o["state"], t)
        actor.on_sim_success(self.success, t)

    def execute(self, cmd: RobotCommand | None) -> None:
        """Execute ``cmd`` for one control period (None: hold still)."""
        cmd = cmd or RobotCommand.hold()
        action = self.spec.action.from_twist(cmd.lin_m_s, cmd.ang_rad_s, cmd.gripper)
        self._obs, _, _, _, info = self.env.step(action.astype(np.float32))
        self.success = bool(info["is_success"])

    def close(self) -> None:
        self.env.close()


class SimSpaceMouse:
    """The simulated operator's hand on a SpaceMouse, read through the device's detector."""

    def __init__(self, operator, detection: InterventionConfig = SIM_INTERVENTION):
        self.operator = operator
        mapping: TeleopMapping = operator.mapping
        self.detector = InterventionDetector(detection, mapping)
        # A hand in control must deflect past the detector's engage threshold.
        if operator.config.min_axis <= detection.engage_threshold:
            raise ValueError(f"operator min_axis {operator.config.min_axis} must exceed the detector's "
                             f"engage_threshold {detection.engage_threshold}")
        self.intervention_steps = 0

    def start_episode(self, seed: int, t: float) -> OperatorCommand:
        """New episode: a fresh operator belief, hands off the puck (the command to send)."""
        self.operator.reset(seed=seed)
        self.detector.reset()
        return OperatorCommand(t=t, intervening=False)

    def let_go_if_done(self, t: float) -> OperatorCommand | None:
        """Step 2 of the timeline: the operator's hold is over, hands off at ``t``."""
        if self.detector.intervening and not self.operator.intervening:
            return self.detector.update(SpaceMouseReading(t=t, axes=np.zeros(6), buttons=(0, 0))).command
        return None

    def react(self, robot: SimRobot, policy_action: np.ndarray, t: float) -> OperatorCommand | None:
        """Step 4: judge the policy's proposal; a command when the operator is (now) in control."""
        out = self.operator.step(robot.model, robot.data, policy_action, t)
        if not out.intervening:
            return None
        self.intervention_steps += 1
        return self.detector.update(out.reading).command


def run_control_step(actor: ActorCore, robot: SimRobot, t: float, operator: SimSpaceMouse | None,
                     on_reset) -> TickResult:
    """One control period at time ``t`` (see the module docstring); ``on_reset(episode_id, t)``
    resets the world (and operator) for a new episode, the reset responder. Returns the tick's result, with
    the records of both ticks when an episode ended and the next one started at ``t``."""
    robot.sense(actor, t)
    if operator is not None:
        cmd = operator.let_go_if_done(t)
        if cmd is not None:
            actor.on_operator_command(cmd, t)
    res = actor.tick(t)
    if res.reset_request is not None:
        on_reset(res.reset_request, t)
        robot.sense(actor, t)
        actor.on_reset_done(res.reset_request, t)
        nxt = actor.tick(t)
        nxt.steps[:0] = res.steps
        nxt.summary = res.summary
        res = nxt
    command = res.command
    if operator is not None and res.policy_action is not None:
        cmd = operator.react(robot, res.policy_action, t)
        if cmd is not None:
            override = actor.on_operator_command(cmd, t)
            if override is not None:
                command = override
    if res.policy_action is not None:  # a step started: the robot moves for one period
        robot.execute(command)
    return res


__all__ = ["SIM_INTERVENTION", "STATE_NAMES", "SimRobot", "SimSpaceMouse", "TASK_IDS", "episode_seed",
           "run_control_step"]
