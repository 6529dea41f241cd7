"""Fast sim driver: registration, spaces, seeding, rendering, controller, franky-sim compatibility."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import robot_stack.sim  # noqa: F401  (registers the ids)
from robot_stack.sim.env import FrankaTaskEnv
from robot_stack.sim.tasks import PROPRIO_NAMES, make_task
from robot_stack.types.spec import PolicySpec

IDS = ("robot_stack/Reach-v0", "robot_stack/PegInsertion-v0")


def _check_obs(space: gym.spaces.Dict, obs: dict) -> None:
    assert set(obs) == set(space.spaces)
    for k, sub in space.spaces.items():
        assert obs[k].shape == sub.shape, k
        assert obs[k].dtype == sub.dtype, k
    assert space.contains(obs)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_gym_make_obs_match_spaces(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, image_size=64)
    try:
        obs, info = env.reset(seed=0)
        _check_obs(env.observation_space, obs)
        assert "is_success" in info
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        _check_obs(env.observation_space, obs)
        assert isinstance(info["is_success"], bool)
        spec = env.unwrapped.policy_spec
        assert isinstance(spec, PolicySpec)
        assert spec.proprio_names == PROPRIO_NAMES
        assert env.action_space.shape == (spec.action.dim,) == (3,)
        spec.check_observation(obs)
        # The spec survives JSON (a learner elsewhere builds networks from it alone).
        assert PolicySpec.from_json(spec.to_json()) == spec
        if obs_mode == "pixels":
            assert spec.cameras and all(c.name in obs for c in spec.cameras)
            assert "state" not in obs
        else:
            assert spec.cameras == () and obs["state"].shape == (6,)
    finally:
        env.close()


def test_pixels_128_two_cameras_uint8():
    env = gym.make(IDS[1], obs_mode="pixels", image_size=128, cameras=("front", "wrist"))
    try:
        obs, _ = env.reset(seed=1)
        for cam in ("front", "wrist"):
            assert obs[cam].shape == (128, 128, 3) and obs[cam].dtype == np.uint8
        assert [c.name for c in env.unwrapped.policy_spec.cameras] == ["front", "wrist"]
    finally:
        env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_seeded_reset_reproducible_and_seed_dependent(env_id):
    env = gym.make(env_id)
    try:
        a, _ = env.reset(seed=123)
        acts = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
        traj_a = [env.step(x)[0]["proprio"] for x in acts]
        b, _ = env.reset(seed=123)
        traj_b = [env.step(x)[0]["proprio"] for x in acts]
        c, _ = env.reset(seed=124)
    finally:
        env.close()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(np.array(traj_a), np.array(traj_b))
    assert not np.allclose(a["state"], c["state"]), "different seeds must give different tasks"


def test_render_not_blank_and_changes_when_robot_moves():
    env = FrankaTaskEnv("reach", obs_mode="pixels", cameras=("front",), image_size=64)
    try:
        obs0, _ = env.reset(seed=0)
        img0 = obs0["front"].astype(int)
        assert img0.std() > 5.0, "image is blank"
        for _ in range(10):
            obs, *_ = env.step(np.array([0.0, 1.0, 1.0], np.float32))
        diff = np.abs(obs["front"].astype(int) - img0)
        assert (diff.sum(axis=2) > 30).sum() > 20, "image did not change although the arm moved 10 cm"
    finally:
        env.close()


def test_controller_tracks_commanded_velocity_and_holds_orientation():
    env = FrankaTaskEnv("reach")
    try:
        obs, _ = env.reset(seed=3)
        p0, q0 = obs["proprio"][:3].copy(), obs["proprio"][3:7].copy()
        for _ in range(10):  # 1 s at 0.1 m/s along +x
            obs, *_ = env.step(np.array([1.0, 0.0, 0.0], np.float32))
        d = obs["proprio"][:3] - p0
        assert d[0] == pytest.approx(0.1, abs=0.012)
        assert np.linalg.norm(d[1:]) < 0.01
        assert obs["proprio"][7] == pytest.approx(0.1, abs=0.02)  # vx in the proprio
        assert abs(float(np.dot(q0, obs["proprio"][3:7]))) > 0.999  # orientation held
    finally:
        env.close()


def test_peg_blocked_by_board_when_misaligned_and_inserts_when_aligned():
    env = FrankaTaskEnv("peg_insertion")
    try:
        env.reset(seed=5)
        t, m, d = env.task, env.model, env.data
        off = np.array([0.012, 0.0, 0.0])  # beyond the 5 mm clearance
        for _ in range(60):
            env.step(t.expert_action(m, d, off).astype(np.float32))
        assert not t.is_success(m, d)
        assert t.tool_pos(m, d)[2] > t.board_top_z_m - 0.003, "peg went through the board"
        env.reset(seed=5)
        for _ in range(60):
            _, _, term, _, info = env.step(t.expert_action(m, d).astype(np.float32))
            if term:
                break
        assert info["is_success"] and term
    finally:
        env.close()


def test_bad_kwargs_fail_with_clear_errors():
    with pytest.raises(ValueError, match="obs_mode"):
        FrankaTaskEnv("reach", obs_mode="rgb")
    with pytest.raises(ValueError, match="unknown camera"):
        FrankaTaskEnv("reach", obs_mode="pixels", cameras=("top",))
    with pytest.raises(ValueError, match="unknown task"):
        FrankaTaskEnv("stack")
    with pytest.raises(ValueError, match="gripper"):
        FrankaTaskEnv("peg_insertion", gripper=True)
    env = FrankaTaskEnv("reach")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4, np.float32))


def test_optional_rotation_and_gripper_actions():
    env = FrankaTaskEnv("reach", rotation=True, gripper=True)
    try:
        assert env.action_space.shape == (7,)
        assert env.unwrapped.policy_spec.action.names == ("vx", "vy", "vz", "wx", "wy", "wz", "gripper")
        obs, _ = env.reset(seed=0)
        q0 = obs["proprio"][3:7].copy()
        for _ in range(10):
            obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 1.0, -1.0], np.float32))  # yaw, close
        # 0.5 rad about z: quaternion dot product cos(0.25) = 0.969
        assert abs(float(np.dot(q0, obs["proprio"][3:7]))) == pytest.approx(0.969, abs=0.01)
        assert obs["proprio"][10] < 0.035  # gripper closing from 0.04 m
    finally:
        env.close()


@pytest.mark.parametrize("task_name", ["reach", "peg_insertion"])
def test_task_definition_works_in_franky_sim_scene(task_name):
    """The same TaskDefinition compiles into franky_sim.MujocoSimulator's scene and runs there."""
    mujoco_simulator = pytest.importorskip("franky_sim.mujoco_simulator")
    sim = mujoco_simulator.MujocoSimulator()
    sim.add_robot()
    task = make_task(task_name)
    task.add_to_scene(sim.worldbody)
    model = mujoco.MjModel.from_xml_string(ET.tostring(sim.scene, encoding="unicode"))
    data = mujoco.MjData(model)
    task.reset(model, data, np.random.default_rng(0))
    for cam in task.camera_mounts():
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, cam.name) >= 0
    assert not task.is_success(model, data)
    d0 = task.progress_distance(model, data, task.tool_pos(model, data))
    assert d0 > 0.02
    assert 0.0 < task.reference_value(model, data, task.expert_velocity(model, data)) <= 1.0
    # Teleporting the arm onto the goal makes the success test pass in that scene too.
    r = task.robot(model)
    # 5 mm past the goal: the goal itself is the success boundary (IK has 0.1 mm residual).
    goal_tcp = task.goal_position(model, data) + (r.tcp_pos(data) - task.tool_pos(model, data)) - [0, 0, 0.005]
    r.set_tcp_pose(model, data, goal_tcp)
    assert task.is_success(model, data)


@pytest.mark.filterwarnings("ignore:.*Box observation space.*infinity")
@pytest.mark.parametrize("task_name", ["reach", "peg_insertion"])
def test_gymnasium_env_checker_passes(task_name):
    from gymnasium.utils.env_checker import check_env

    env = FrankaTaskEnv(task_name, obs_mode="pixels")
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()
