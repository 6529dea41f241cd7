"""MuJoCo FR3 tasks with cameras, Gymnasium registration, and the simulated operator."""
import gymnasium as _gym

for _env_id, _task in (("robot_stack/Reach-v0", "reach"), ("robot_stack/PegInsertion-v0", "peg_insertion")):
    if _env_id not in _gym.registry:
        _gym.register(id=_env_id, entry_point="robot_stack.sim.env:FrankaTaskEnv", kwargs={"task": _task})
