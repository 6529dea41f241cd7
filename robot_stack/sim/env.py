"""Fast Gymnasium driver: MuJoCo stepped directly, one task definition, cameras rendered offscreen.

Registered ids (on ``import robot_stack.sim``): ``robot_stack/Reach-v0`` (task ``reach``,
horizon 50) and ``robot_stack/PegInsertion-v0`` (task ``peg_insertion``, horizon 100).

Keyword arguments (``gym.make(id, **kwargs)``):

* ``obs_mode``: ``"state"`` (default) or ``"pixels"``.
* ``image_size``: int or (height, width) of every camera image (default 64).
* ``cameras``: camera names for pixel mode (default: the task's, ``("front",)`` for reach,
  ``("wrist",)`` for the peg); ``front`` and ``wrist`` exist in both tasks.
* ``rotation``: add ``wx, wy, wz`` to the action (default False: translation only).
* ``gripper``: add a ``gripper`` action (reach only; the peg is held; default False).
* ``reward_type``: ``"sparse"`` (1.0 on success, else 0.0; default) or ``"dense"``
  (the task's reference value of the state, in (0, 1], plus 1 on success).
* ``terminate_on_success``: end the episode at the first success (default True).
* ``max_episode_steps``: overrides the task's horizon (truncation).
* ``task_kwargs``: dict passed to the task constructor (ranges, tolerances).
* ``render_mode``: None or ``"rgb_array"`` (front camera, ``render_size`` pixels).

Observations are a ``Dict``:

* state mode: ``{"proprio": float32 (11,), "state": float32 (6,)}``; ``state`` is the goal
  position and goal minus tool point (privileged, sim only).
* pixel mode: ``{<camera>: uint8 (H, W, 3) per camera, "proprio": float32 (11,)}``.

``proprio`` = TCP position (m, base frame), TCP quaternion (w, x, y, z), TCP linear velocity
(m/s), gripper width (m): see :data:`robot_stack.sim.tasks.PROPRIO_NAMES`. ``info`` carries
``is_success``, ``distance_m`` (progress distance) and ``tool_pos_m``.
``env.unwrapped.policy_spec`` is the :class:`~robot_stack.types.spec.PolicySpec` (cameras
empty in state mode). Actions are normalized EE velocities (``ActionSpec``: 0.1 m/s and
0.5 rad/s at magnitude 1), held for one 10 Hz control period.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import gymnasium as gym
import mujoco
import numpy as np

from robot_stack.sim.robot import ControllerConfig, EEVelocityController
from robot_stack.sim.scene import build_scene
from robot_stack.sim.tasks import PROPRIO_NAMES, TaskDefinition, make_task
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec

logger = logging.getLogger(__name__)

OBS_MODES = ("state", "pixels")


class FrankaTaskEnv(gym.Env):
    """FR3 task with EE-velocity actions at 10 Hz; see the module docstring for kwargs."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str | TaskDefinition = "reach",
        obs_mode: str = "state",
        image_size: int | tuple[int, int] = 64,
        cameras: tuple[str, ...] | list[str] | None = None,
        rotation: bool = False,
        gripper: bool = False,
        reward_type: str = "sparse",
        terminate_on_success: bool = True,
        max_episode_steps: int | None = None,
        task_kwargs: dict | None = None,
        render_mode: str | None = None,
        render_size: int = 256,
        controller: ControllerConfig | None = None,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got '{obs_mode}'")
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got '{reward_type}'")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got '{render_mode}'")
        names = ["vx", "vy", "vz"] + (["wx", "wy", "wz"] if rotation else []) + (["gripper"] if gripper else [])
        action_spec = ActionSpec(names=tuple(names))
        if isinstance(task, str):
            task = make_task(task, action_spec=action_spec, **(task_kwargs or {}))
        elif task_kwargs:
            raise ValueError("task_kwargs only apply when task is given by name")
        else:
            task.action_spec = action_spec
        if gripper and task.name == "peg_insertion":
            raise ValueError("peg_insertion holds the peg: the gripper action is not available (gripper=False)")
        self.task = task
        self.obs_mode = obs_mode
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        cams = tuple(cameras) if cameras is not None else task.default_cameras
        known = {c.name for c in task.camera_mounts()}
        for c in cams:
            if c not in known:
                raise ValueError(f"unknown camera '{c}' for task {task.name}; available: {sorted(known)}")
        self.camera_specs = tuple(CameraSpec(c, int(h), int(w)) for c in cams) if obs_mode == "pixels" else ()
        self.policy_spec = PolicySpec(
            cameras=self.camera_specs,
            proprio_names=PROPRIO_NAMES,
            action=action_spec,
            control_rate_hz=task.control_rate_hz,
        )
        self.reward_type = reward_type
        self.terminate_on_success = terminate_on_success
        self.max_episode_steps = int(max_episode_steps or task.horizon_steps)
        self.render_mode = render_mode
        self.render_size = int(render_size)

        root, worldbody = build_scene(task.robot_prefix, fast=True)
        task.add_to_scene(worldbody)
        self.model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
        self.data = mujoco.MjData(self.model)
        self.controller = EEVelocityController(task.robot(self.model), controller)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._steps = 0

        spaces = {"proprio": gym.spaces.Box(-np.inf, np.inf, (len(PROPRIO_NAMES),), np.float32)}
        if obs_mode == "state":
            spaces["state"] = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        for c in self.camera_specs:
            spaces[c.name] = gym.spaces.Box(0, 255, c.shape, np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_spec.dim,), np.float32)

    # -- rendering ---------------------------------------------------------------------------
    def _renderer(self, height: int, width: int) -> mujoco.Renderer:
        r = self._renderers.get((height, width))
        if r is None:
            r = mujoco.Renderer(self.model, height, width)
            self._renderers[(height, width)] = r
        return r

    def render_camera(self, name: str, height: int, width: int) -> np.ndarray:
        """RGB uint8 (height, width, 3) image of camera ``name`` in the current state."""
        r = self._renderer(height, width)
        r.update_scene(self.data, camera=name)
        return r.render()

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_camera("front", self.render_size, self.render_size)
        return None

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    # -- gym API -----------------------------------------------------------------------------
    def _obs(self) -> dict:
        obs = {"proprio": self.task.proprio(self.model, self.data)}
        if self.obs_mode == "state":
            obs["state"] = self.task.task_state(self.model, self.data)
        for c in self.camera_specs:
            obs[c.name] = self.render_camera(c.name, c.height, c.width)
        return obs

    def _info(self, success: bool) -> dict:
        tool = self.task.tool_pos(self.model, self.data)
        return {
            "is_success": bool(success),
            "distance_m": self.task.progress_distance(self.model, self.data, tool),
            "tool_pos_m": tool,
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.task.reset(self.model, self.data, self.np_random)
        r = self.task.robot(self.model)
        if r.hand_act >= 0:
            # ctrl 0..255 maps to finger width 0..0.08 m (franky_sim's FR3 hand actuator).
            self.data.ctrl[r.hand_act] = self.task.gripper_width_m / 0.08 * 255.0
        self.controller.reset(self.data)
        mujoco.mj_forward(self.model, self.data)
        self._steps = 0
        return self._obs(), self._info(self.task.is_success(self.model, self.data))

    def step(self, action):
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.policy_spec.action.dim,):
            raise ValueError(f"action must have shape ({self.policy_spec.action.dim},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action has non-finite entries: {a}")
        lin, ang, grip = self.policy_spec.action.to_twist(a)
        grip_ctrl = None
        if grip is not None:
            grip_ctrl = 255.0 if grip > 0 else 0.0
        self.controller.step(self.model, self.data, lin, ang, self.task.control_period_s, grip_ctrl)
        mujoco.mj_forward(self.model, self.data)  # refresh derived quantities for the obs
        self._steps += 1
        success = self.task.is_success(self.model, self.data)
        reward = 1.0 if success else 0.0
        if self.reward_type == "dense":
            tool = self.task.tool_pos(self.model, self.data)
            d = self.task.progress_distance(self.model, self.data, tool)
            reward += float(np.exp(-d / self.task.value_length_scale_m))
        terminated = bool(success and self.terminate_on_success)
        truncated = bool(self._steps >= self.max_episode_steps and not terminated)
        return self._obs(), reward, terminated, truncated, self._info(success)
