"""Monitor: progress.csv is continued, never duplicated, across monitor restarts."""
from __future__ import annotations

import time

import pytest

from robot_stack.rl.progress import EpisodeRow, ProgressLog


def _row(i: int) -> EpisodeRow:
    return EpisodeRow(episode_id=i, wall_time_s=float(i), steps=40, success=i % 2 == 0, truncated=i % 2 == 1,
                      interventions=1, intervention_steps=4, intervention_rate=0.1, success_rate_window=0.5,
                      intervention_rate_window=0.1, policy_version=i, learner_updates=5 * i, evaluation=False)


def test_a_restarted_progress_log_continues_the_csv_without_duplicates(tmp_path):
    log = ProgressLog(tmp_path)
    for i in range(5):
        assert log.on_episode(_row(i)) is not None
    again = ProgressLog(tmp_path)  # restarted: the topic's history brings episodes 2..4 again
    assert len(again.rows) == 5 and again.seen(3)
    assert [again.on_episode(_row(i)) for i in range(2, 7)][:3] == [None, None, None]
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    assert len(lines) == 1 + 7 and [ln.split(",")[0] for ln in lines[1:]] == [str(i) for i in range(7)]
    assert again.summary().startswith("7 episodes")


@pytest.mark.ros
@pytest.mark.timing  # nodes over DDS on loopback: the transient-local history must arrive within the waits
def test_a_restarted_monitor_node_adds_no_duplicate_rows(ros_context, spin, tmp_path):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from robot_stack.nodes import convert, topics
    from robot_stack.nodes.monitor_node import MonitorNode
    from robot_stack.types.records import EpisodeSummary as Summary

    actor = Node("fake_actor", namespace=topics.DEFAULT_NAMESPACE, context=ros_context)
    pub = topics.publisher(actor, topics.EPISODES)  # transient local, depth 100
    for i in range(1, 6):
        pub.publish(convert.summary_to_msg(Summary(
            stamp_s=float(i), episode_id=i, steps=30, intervention_steps=3, interventions=1, intervention_rate=0.1,
            success=True, truncated=False, window=20, success_rate=1.0, intervention_rate_window=0.1,
            policy_version=i, evaluation=False)))
    executor = spin(actor)
    csv = tmp_path / "progress.csv"

    def rows_after_a_monitor_run() -> int:
        mon = MonitorNode(context=ros_context, parameter_overrides=[Parameter("out_dir", value=str(tmp_path))])
        executor.add_node(mon)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and len(mon.progress.rows) < 5:
            time.sleep(0.05)
        time.sleep(0.5)  # anything arriving late would be a duplicate
        executor.remove_node(mon)
        mon.destroy_node()
        return len(csv.read_text().splitlines()) - 1

    assert rows_after_a_monitor_run() == 5
    assert rows_after_a_monitor_run() == 5, "the restarted monitor appended the history again"
    actor.destroy_node()
