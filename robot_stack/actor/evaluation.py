"""Evaluation mode: collect episode summaries and report the success rate (JSON)."""
from __future__ import annotations

import json
import pathlib

import numpy as np

from robot_stack.types.records import EpisodeSummary


class EvaluationRun:
    """Counts ``episodes`` evaluation episodes of ``policy_file``; see :meth:`report`."""

    def __init__(self, policy_file: str, episodes: int, report_file: str = "") -> None:
        self.policy_file = policy_file
        self.episodes = episodes
        self.report_file = report_file
        self.results: list[EpisodeSummary] = []

    def add(self, summary: EpisodeSummary) -> bool:
        """Record one episode; True when the run is complete."""
        self.results.append(summary)
        return len(self.results) >= self.episodes

    def report(self) -> dict:
        res = self.results
        return {
            "policy_file": self.policy_file,
            "episodes": len(res),
            "successes": sum(r.success for r in res),
            "success_rate": sum(r.success for r in res) / len(res),
            "mean_steps": float(np.mean([r.steps for r in res])),
            "intervention_rate": (sum(r.intervention_steps for r in res) / max(1, sum(r.steps for r in res))),
            "episode_success": [bool(r.success) for r in res],
        }

    def write(self, report: dict) -> None:
        """Write the report to ``report_file`` (if set) as indented JSON."""
        if self.report_file:
            path = pathlib.Path(self.report_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2) + "\n")
