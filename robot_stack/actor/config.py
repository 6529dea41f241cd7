"""The actor node's parameters (ROS-free): the ActorCore fields plus the node's own."""
from __future__ import annotations

import math
from dataclasses import dataclass

from robot_stack.actor.core import ActorConfig
from robot_stack.actor.resets import RESET_MODES


@dataclass
class ActorNodeConfig(ActorConfig):
    """Actor node parameters: the ActorCore fields plus the node's own."""

    policy_file: str = ""
    """Exported policy file (policies/...) to start from (warm start) or to evaluate; '' for none."""
    spec_json: str = ""
    """Policy spec JSON for a random-init policy when no policy_file: a PolicySpec, or an
    export's spec_json (policy_spec + network). '' with spec_file '' waits for the learner."""
    spec_file: str = ""
    """File holding the spec JSON (same content as spec_json)."""
    seed: int = 0
    """Seed of the policy's sampling noise and of a random-init policy."""
    evaluation: bool = False
    """Evaluation mode: run policy_file deterministically, no learning, report the success rate."""
    eval_episodes: int = 20
    """Episodes to run in evaluation mode."""
    eval_report_file: str = ""
    """Where evaluation mode writes its JSON report ('' = log only)."""
    reset_mode: str = "world"
    """How episodes are reset: 'world' (the sim world's episode/reset service), 'franka_home'
    (the Franka node's franka/home service), 'none' (no reset); see robot_stack.actor.resets."""
    base_frame: str = "base"
    """frame_id of the commanded twist (the robot base frame)."""
    gripper_open_width_m: float = 0.08
    """Gripper width sent for an 'open' gripper action, in m (close sends 0)."""
    episode_id_file: str = ""
    """File keeping the last episode id, so a restarted actor continues counting ('' = start at 1)."""
    log_every_s: float = 10.0
    """Period of the status log line (steps, refusals, policy version), in s."""
    wait_for_learner_s: float = 10.0
    """At start-up, take no step until a learner subscribes to the step records (DDS discovery
    can take seconds on a busy machine; steps published before it are lost to the learner), but
    at most this long, s; then run without one (logged). 0: do not wait. Not in evaluation."""
    spool_dir: str = ""
    """Folder of the step spool: every step record is written there before it is published and
    deleted once the learner acknowledges it, so none is lost while no learner runs or after a
    crash ('' = kept in memory only: survives a learner restart, not an actor crash)."""
    spool_max_records: int = 18000
    """Most step records the spool holds (30 min at 10 Hz; on disk about 12 KB per record and
    64x64 camera); beyond it the oldest are dropped, counted and logged."""
    spool_window: int = 200
    """Step records sent ahead of the learner's acknowledgement (kept below the step topic's
    queue depth of 1000, so DDS never overwrites an unacknowledged one)."""
    spool_resend_after_s: float = 3.0
    """Step records out without any acknowledgement for this long are sent again, s."""
    close_ack_timeout_s: float = 2.0
    """On a clean stop, wait this long at most for the learner to acknowledge every step record
    (no collected step lost in flight), s."""
    executor: str = "events"
    """ROS executor of the actor process (main()): 'events' (rclpy's C++ EventsExecutor: far
    less per-callback overhead, measured 2-3x lower takeover latency and jitter on a loaded
    2-core machine, benchmarks/latency.py; one thread, so a weights update delays operator
    commands by its deserialization; the control loop keeps its own thread) or
    'multi_threaded' (rclpy MultiThreadedExecutor: the callback groups run in parallel, but it
    busy-waits on the ready entities of busy groups and can take a core; see README, Latency)."""
    control_thread: bool = True
    """Run the control loop in a dedicated thread paced to absolute monotonic deadlines
    (lower period jitter than an executor timer); false, or use_sim_time: an rclpy timer in
    its own callback group."""
    control_thread_priority: int = 0
    """SCHED_FIFO priority (1..98) of the control thread, so a busy machine cannot delay a
    tick; 0: normal scheduling. Needs root, CAP_SYS_NICE or an rtprio limit (as libfranka
    does); refused, the node says how to allow it and runs at normal priority. With it the
    policy runs on one torch thread (worker threads would inherit the priority) and the GIL
    is handed over every 0.5 ms instead of 5 ms."""

    def validate(self) -> None:
        super().validate()
        if self.reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode must be one of {RESET_MODES}, got '{self.reset_mode}'")
        if self.evaluation and not self.policy_file:
            raise ValueError("evaluation: true needs policy_file (the exported policy to evaluate)")
        if self.eval_episodes < 1:
            raise ValueError(f"eval_episodes={self.eval_episodes} must be >= 1")
        if not 0 <= self.control_thread_priority <= 98:
            raise ValueError(f"control_thread_priority must be in 0..98 (0: normal scheduling), got {self.control_thread_priority}")
        if self.executor not in ("multi_threaded", "events"):
            raise ValueError(f"executor must be 'multi_threaded' or 'events', got '{self.executor}'")
        if self.spec_json and self.spec_file:
            raise ValueError("give spec_json or spec_file, not both")
        if not (math.isfinite(self.wait_for_learner_s) and self.wait_for_learner_s >= 0):
            raise ValueError(f"wait_for_learner_s must be a finite number >= 0, got {self.wait_for_learner_s}")
        for name in ("spool_max_records", "spool_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not self.spool_window < 1000:
            raise ValueError(f"spool_window={self.spool_window} must stay below the step topic's queue depth (1000)")
        if not (math.isfinite(self.spool_resend_after_s) and self.spool_resend_after_s > 0):
            raise ValueError(f"spool_resend_after_s must be a finite number > 0, got {self.spool_resend_after_s}")
        if not (math.isfinite(self.close_ack_timeout_s) and self.close_ack_timeout_s >= 0):
            raise ValueError(f"close_ack_timeout_s must be a finite number >= 0, got {self.close_ack_timeout_s}")
