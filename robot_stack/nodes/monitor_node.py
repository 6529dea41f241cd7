"""Monitor node: shows a session's progress (one line per episode) and plots it.

Subscribes (names relative to the namespace, see robot_stack.nodes.topics)
  ``episodes`` (robot_stack/EpisodeSummary, ``qos.EPISODES``): one line per
      episode on stdout, a row in ``<out_dir>/progress.csv`` (an existing file is continued;
      an episode already in it is skipped, so a restarted monitor adds no duplicate rows).
  ``learner/stats`` (robot_stack/LearnerStats, ``qos.EPISODES``): learner updates.
  ``franka/status`` (robot_stack/FrankaStatus, ``qos.EPISODES``): failures the operator must
      act on (``recovery_gave_up``, ``error``, ``home_failed``) are printed.
Writes ``<out_dir>/progress.png`` (success and intervention rate over episodes) every
``plot_every_s`` and at exit. A message that fails validation (counts out of range, rates
outside [0, 1], arrays of unequal length) is dropped and counted per topic
(``robot_stack.nodes.inbox``).

Fleet (``robots`` or ``discover_robots``): it reads ``/<robot_id>/episodes`` of every robot
instead (discovered as they appear), prints each line with its robot id, keeps
``<out_dir>/<robot_id>/progress.csv|png`` per robot, and every ``plot_every_s`` prints one
fleet line from the learner's per-robot stats (steps, episodes, success and intervention rate
per robot, and the fleet's totals). Runs anywhere on the DDS network (robot PC, learner machine,
a laptop). Parameters: every field of :class:`MonitorNodeConfig`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rclpy.node import Node

from robot_stack.nodes import convert, topics
from robot_stack.nodes.inbox import Inbox
from robot_stack.nodes.params import declare_config, run_node
from robot_stack.nodes.robot_topics import RobotTopics
from robot_stack.rl.progress import EpisodeRow, ProgressLog


@dataclass(frozen=True)
class MonitorNodeConfig:
    """Monitor parameters."""

    out_dir: str = "runs/monitor"
    """Folder for progress.csv and progress.png ("" = print only)."""
    window: int = 20
    """Episodes in the rolling rates shown (the actor's stats_window)."""
    plot_every_s: float = 30.0
    """Redraw progress.png this often, s."""
    robots: tuple[str, ...] | None = None
    """Fleet: robot ids whose /<id>/episodes are shown (see discover_robots)."""
    discover_robots: bool = False
    """Fleet: also show every robot whose /<id>/episodes topic appears."""

    def validate(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.plot_every_s <= 0:
            raise ValueError(f"plot_every_s must be > 0, got {self.plot_every_s}")


FRANKA_ALERTS = ("recovery_gave_up", "error", "home_failed")
"""Franka status events the monitor prints (the operator must act on them)."""


class MonitorNode(Node):
    """Thin node over ProgressLog."""

    def __init__(self, **node_kwargs):
        node_kwargs.setdefault("namespace", topics.DEFAULT_NAMESPACE)
        super().__init__("monitor", **node_kwargs)
        self.cfg: MonitorNodeConfig = declare_config(self, MonitorNodeConfig)
        self.progress = ProgressLog(self.cfg.out_dir or None, self.cfg.window)
        self._t0 = time.monotonic()
        self._dirty = False
        self.robot_progress: dict[str, ProgressLog] = {}
        self.fleet_stats: dict[str, dict] = {}
        self.inbox = Inbox(self.get_logger())
        """Malformed messages are dropped and counted here, per topic."""
        if self.cfg.robots or self.cfg.discover_robots:
            self.robot_topics = RobotTopics(self, topics.EPISODES, self._on_robot_episode,
                                            robots=self.cfg.robots or (), discover=self.cfg.discover_robots, inbox=self.inbox)
        else:
            self.inbox.subscribe(self, topics.EPISODES, self._on_episode)
        self.inbox.subscribe(self, topics.LEARNER_STATS, self._on_stats)
        self.inbox.subscribe(self, topics.FRANKA_STATUS, self._on_franka_status)
        self.create_timer(self.cfg.plot_every_s, self._plot)

    def _on_episode(self, m) -> None:
        summary = convert.summary_from_msg(m)
        if self.progress.seen(summary.episode_id, summary.evaluation):
            return  # a restarted monitor gets the recent history again: logged already
        row = EpisodeRow.from_summary(summary, round(time.monotonic() - self._t0, 2), self.progress.learner_updates)
        print(self.progress.on_episode(row), flush=True)
        self._dirty = True

    def _on_robot_episode(self, robot_id: str, m) -> None:
        log = self.robot_progress.get(robot_id)
        if log is None:
            out = f"{self.cfg.out_dir}/{robot_id}" if self.cfg.out_dir else None
            log = self.robot_progress[robot_id] = ProgressLog(out, self.cfg.window)
        log.learner_updates = self.progress.learner_updates
        summary = convert.summary_from_msg(m)
        if log.seen(summary.episode_id, summary.evaluation):
            return  # a restarted monitor gets the recent history again: logged already
        row = EpisodeRow.from_summary(summary, round(time.monotonic() - self._t0, 2), self.progress.learner_updates)
        print(f"[{robot_id}] {log.on_episode(row)}", flush=True)
        self._dirty = True

    def _on_stats(self, m) -> None:
        stats = convert.learner_stats_from_msg(m)  # ValueError: the inbox drops and counts it
        self.progress.on_learner_stats(stats.as_dict())
        self.fleet_stats = stats.robots_dict()

    def fleet_line(self) -> str:
        """Per robot and fleet totals from the learner's latest stats ('' before any)."""
        robots = self.fleet_stats
        if not robots:
            return ""
        steps = sum(r["env_steps"] for r in robots.values())
        episodes = sum(r["episodes"] for r in robots.values())
        parts = [f"{rid}: {r['env_steps']} steps, {r['episodes']} ep, success {100 * r['success_rate']:.0f}%, "
                 f"intervention {100 * r['intervention_rate']:.0f}%{'' if r.get('active', True) else ' (idle)'}"
                 for rid, r in robots.items()]
        active = sum(bool(r.get("active", True)) for r in robots.values())
        return (f"fleet: {active}/{len(robots)} robots active, {steps} steps, {episodes} episodes, "
                f"{self.progress.learner_updates} updates | " + " | ".join(parts))

    def _on_franka_status(self, m) -> None:
        status = convert.franka_status_from_msg(m)
        if status.event in FRANKA_ALERTS:
            print(f"franka: {status.event}: {status.detail}", flush=True)

    def _plot(self) -> None:
        if self.robot_progress:
            line = self.fleet_line()
            if line:
                print(line, flush=True)
        if self._dirty:
            self.progress.plot()
            for log in self.robot_progress.values():
                log.plot()
            self._dirty = False

    def close(self) -> None:
        self.progress.plot()
        for rid, log in sorted(self.robot_progress.items()):
            log.plot()
            print(f"[{rid}] session: {log.summary()}", flush=True)
        if self.robot_progress:
            print(self.fleet_line() or "fleet: no learner stats", flush=True)
        else:
            print(f"session: {self.progress.summary()}", flush=True)


def main(args: list[str] | None = None) -> int:
    return run_node(MonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
