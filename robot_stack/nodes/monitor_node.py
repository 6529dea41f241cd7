"""Monitor node: shows a session's progress (one line per episode) and plots it.

Subscribes
  ``/robot_stack/episodes`` (robot_stack/EpisodeSummary, ``qos.EPISODES``): one line per
      episode on stdout, a row in ``<out_dir>/progress.csv``.
  ``/robot_stack/learner/stats`` (std_msgs/String JSON, ``qos.EPISODES``): learner updates.
Writes ``<out_dir>/progress.png`` (success and intervention rate over episodes) every
``plot_every_s`` and at exit. Runs anywhere on the DDS network (robot PC, learner machine,
a laptop). Parameters: every field of :class:`MonitorNodeConfig`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from rclpy.node import Node
from std_msgs.msg import String

from robot_stack.msg import EpisodeSummary
from robot_stack.nodes import convert, qos
from robot_stack.nodes.params import declare_config, run_node
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

    def validate(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.plot_every_s <= 0:
            raise ValueError(f"plot_every_s must be > 0, got {self.plot_every_s}")


class MonitorNode(Node):
    """Thin node over ProgressLog."""

    def __init__(self, **node_kwargs):
        super().__init__("monitor", **node_kwargs)
        self.cfg: MonitorNodeConfig = declare_config(self, MonitorNodeConfig)
        self.progress = ProgressLog(self.cfg.out_dir or None, self.cfg.window)
        self._t0 = time.monotonic()
        self._dirty = False
        self.create_subscription(EpisodeSummary, "/robot_stack/episodes", self._on_episode, qos.EPISODES)
        self.create_subscription(String, "/robot_stack/learner/stats", self._on_stats, qos.EPISODES)
        self.create_timer(self.cfg.plot_every_s, self._plot)

    def _on_episode(self, m: EpisodeSummary) -> None:
        row = EpisodeRow.from_summary(convert.summary_from_msg(m), round(time.monotonic() - self._t0, 2),
                                      self.progress.learner_updates)
        print(self.progress.on_episode(row), flush=True)
        self._dirty = True

    def _on_stats(self, m: String) -> None:
        try:
            self.progress.on_learner_stats(convert.json_from_msg(m))
        except ValueError:
            self.get_logger().warning("learner stats message is not JSON; ignored")

    def _plot(self) -> None:
        if self._dirty:
            self.progress.plot()
            self._dirty = False

    def close(self) -> None:
        self.progress.plot()
        print(f"session: {self.progress.summary()}", flush=True)


def main(args: list[str] | None = None) -> int:
    return run_node(MonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
