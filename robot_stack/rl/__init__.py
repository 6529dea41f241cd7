"""RLIF learning core: reward labelling, vision replay buffer, RLPD-style SAC, baselines.

Modules (ROS-free; the learner/actor nodes are thin wrappers around them):

* :mod:`~robot_stack.rl.labelling`: :class:`Step` (mirror of StepRecord.msg), RLIF reward
  labelling (:func:`label_steps`, :class:`StreamingLabeller`).
* :mod:`~robot_stack.rl.replay_buffer`: :class:`VisionReplayBuffer` (frames stored once,
  crash-safe append-only log), :func:`sample_mixed` (RLPD symmetric sampling).
* :mod:`~robot_stack.rl.networks` / :mod:`~robot_stack.rl.agent`: encoders, critic ensemble,
  :class:`SACAgent`.
* :mod:`~robot_stack.rl.baselines`: :class:`BCAgent` (BC and HG-DAgger).
* :mod:`~robot_stack.rl.policy_io`: actor-only export/load (PolicyWeights.msg payload, policy files).
* :mod:`~robot_stack.rl.learner`: :class:`LearnerCore` (the learner node's ROS-free core).
* :mod:`~robot_stack.rl.progress`: episode statistics and the progress log.
"""
