"""Training and evaluation on the simulation, built from the cores the robot runs.

* :mod:`~robot_stack.training.session`: the simulated robot and SpaceMouse operator around the
  actor core, one control period at a time on a simulated clock.
* :mod:`~robot_stack.training.train`: the single-process training script (actor core + learner
  core in synchronous mode), also the benchmark's training loop.
* :mod:`~robot_stack.training.evaluate`: evaluate an exported policy on a task.
"""
