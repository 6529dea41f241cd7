"""The actor without ROS: ``core`` (ActorCore: observations, arbitration, episodes, step
records) and the actor node's helpers (episode ids, resets, policy construction, evaluation)."""
