"""Session progress a person can follow: one line per episode, a CSV, and a plot (ROS-free).

:class:`ProgressLog` takes episode summaries (the fields of ``msg/EpisodeSummary.msg``) and
learner stats, prints one line per episode, appends to ``progress.csv`` and redraws
``progress.png`` (success rate and intervention rate over episodes) on request. It continues an
existing ``progress.csv``: an episode already in it is not written again, so a restarted
monitor (which gets the recent summaries again from the topic's history) adds no duplicate rows.
"""
from __future__ import annotations

import collections
import csv
import logging
import pathlib
from dataclasses import asdict, dataclass

from robot_stack.types.records import EpisodeSummary

logger = logging.getLogger(__name__)

CSV_FIELDS = ("episode_id", "wall_time_s", "steps", "success", "truncated", "interventions",
              "intervention_steps", "intervention_rate", "success_rate_window", "intervention_rate_window",
              "policy_version", "learner_updates", "evaluation")


class EpisodeStats:
    """Rolling success rate and intervention rate over the last ``window`` episodes."""

    def __init__(self, window: int):
        self.window = window
        self._episodes: collections.deque = collections.deque(maxlen=window)
        self.total_episodes = 0

    def add(self, success: bool, steps: int, intervention_steps: int) -> None:
        self._episodes.append((bool(success), int(steps), int(intervention_steps)))
        self.total_episodes += 1

    @property
    def success_rate(self) -> float:
        if not self._episodes:
            return 0.0
        return sum(e[0] for e in self._episodes) / len(self._episodes)

    @property
    def intervention_rate(self) -> float:
        """Intervention steps / steps over the window (step-weighted)."""
        steps = sum(e[1] for e in self._episodes)
        return sum(e[2] for e in self._episodes) / steps if steps else 0.0

    def __len__(self) -> int:
        return len(self._episodes)


@dataclass
class EpisodeRow:
    """One finished episode, as logged."""

    episode_id: int
    wall_time_s: float
    steps: int
    success: bool
    truncated: bool
    interventions: int
    intervention_steps: int
    intervention_rate: float
    success_rate_window: float
    intervention_rate_window: float
    policy_version: int
    learner_updates: int
    evaluation: bool

    @classmethod
    def from_summary(cls, s: EpisodeSummary, wall_time_s: float, learner_updates: int) -> "EpisodeRow":
        return cls(s.episode_id, wall_time_s, s.steps, s.success, s.truncated, s.interventions,
                   s.intervention_steps, s.intervention_rate, s.success_rate, s.intervention_rate_window,
                   s.policy_version, learner_updates, s.evaluation)


class ProgressLog:
    """Collects episode rows; see the module docstring."""

    def __init__(self, out_dir: str | pathlib.Path | None, window: int = 20):
        self.out_dir = pathlib.Path(out_dir) if out_dir else None
        self.window = int(window)
        if self.out_dir is not None:
            # Imported here, not at the first plot: an import cut short by Ctrl-C leaves
            # matplotlib half-initialised, and the final plot at exit would then fail.
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
        self.rows: list[EpisodeRow] = []
        self.learner_updates = 0
        self._logged: set[tuple[int, bool]] = set()  # (episode id, evaluation) already in progress.csv
        if self.out_dir is not None and (self.out_dir / "progress.csv").exists():
            self._load(self.out_dir / "progress.csv")

    def _load(self, path: pathlib.Path) -> None:
        """Rows of an existing progress.csv (unreadable rows are skipped, with a warning)."""
        types = {f: t for f, t in EpisodeRow.__annotations__.items()}
        bad = 0
        with path.open(newline="") as f:
            for rec in csv.DictReader(f):
                try:
                    row = EpisodeRow(**{k: (rec[k] == "True") if types[k] == "bool" else
                                        (int(rec[k]) if types[k] == "int" else float(rec[k])) for k in CSV_FIELDS})
                except (KeyError, TypeError, ValueError):
                    bad += 1
                    continue
                self.rows.append(row)
                self._logged.add((row.episode_id, row.evaluation))
        if bad:
            logger.warning("%s: %d unreadable row(s) skipped", path, bad)

    def seen(self, episode_id: int, evaluation: bool = False) -> bool:
        """Whether this episode is logged already."""
        return (int(episode_id), bool(evaluation)) in self._logged

    def on_learner_stats(self, stats: dict) -> None:
        """Learner statistics (an object); ValueError when ``updates`` is not a count."""
        if not isinstance(stats, dict):
            raise ValueError(f"learner stats must be an object, got {type(stats).__name__}")
        updates = stats.get("updates", self.learner_updates)
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise ValueError(f"learner stats: 'updates' must be a count, got {updates!r:.40}")
        self.learner_updates = updates

    def on_episode(self, row: EpisodeRow) -> str | None:
        """Record an episode; returns the console line for it (None when it is logged already)."""
        if self.seen(row.episode_id, row.evaluation):
            return None
        self._logged.add((row.episode_id, row.evaluation))
        self.rows.append(row)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / "progress.csv"
            new = not path.exists()
            with path.open("a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
                if new:
                    w.writeheader()
                w.writerow(asdict(row))
        return self.format(row)

    def format(self, r: EpisodeRow) -> str:
        kind = "eval " if r.evaluation else ""
        return (f"{kind}episode {r.episode_id:4d} | {'SUCCESS' if r.success else ('timeout' if r.truncated else 'failure'):7s}"
                f" | {r.steps:3d} steps, {r.interventions} takeovers ({100 * r.intervention_rate:4.0f}% operator)"
                f" | last {self.window}: success {100 * r.success_rate_window:3.0f}%,"
                f" intervention {100 * r.intervention_rate_window:3.0f}% | policy v{r.policy_version},"
                f" {r.learner_updates} updates")

    def summary(self) -> str:
        if not self.rows:
            return "no episode finished"
        n = len(self.rows)
        half = max(1, n // 2)
        first, last = self.rows[:half], self.rows[half:] or self.rows[-1:]

        def rates(rows):
            steps = sum(r.steps for r in rows) or 1
            return (sum(r.success for r in rows) / len(rows), sum(r.intervention_steps for r in rows) / steps)

        s1, i1 = rates(first)
        s2, i2 = rates(last)
        return (f"{n} episodes: first half success {100 * s1:.0f}%, intervention {100 * i1:.0f}%; "
                f"second half success {100 * s2:.0f}%, intervention {100 * i2:.0f}%")

    def plot(self) -> pathlib.Path | None:
        """Write progress.png (success and intervention rate over episodes); None without rows."""
        if self.out_dir is None or not self.rows:
            return None
        import matplotlib.pyplot as plt

        ep = [r.episode_id for r in self.rows]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(ep, [r.success_rate_window for r in self.rows], label=f"success rate (last {self.window})")
        ax.plot(ep, [r.intervention_rate_window for r in self.rows], label=f"intervention rate (last {self.window})")
        ax.scatter(ep, [r.intervention_rate for r in self.rows], s=8, alpha=0.4, label="intervention rate (episode)")
        ax.set_xlabel("episode")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path = self.out_dir / "progress.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
