"""The Foxglove layout for a robot_stack session, built with foxglove-sdk's layout types.

``foxglove/robot_stack_layout.json`` is :func:`session_layout` written out for the default
namespace (``python -m robot_stack.recording.layout foxglove/robot_stack_layout.json``; a test
keeps the file and this function in step, and checks its topic names against the topic table);
``--namespace arm1`` writes the layout of a graph in ``/arm1``. Two tabs:

* **Robot**: the front and wrist cameras (``image_raw/compressed``, what the live view serves and
  the real-robot bag records; pick ``image_raw`` in the panel for a raw sim bag), the EE frame in
  3D, who is in control (operator or policy) over time, the policy's proposed action against the
  executed one (which is the operator's while intervening), and the EE twist;
* **Learning**: success and intervention rates per episode, the learner's update rate, backlog
  and losses, the latest episode summary and learner stats, node health and every node's log.

The layout works on the live view and on a recorded bag opened in Foxglove (same topic names),
but for the losses: they come from the live view's ``live/learner_metrics`` channel (a bag
holds them in LearnerStats' ``metric_names``/``metric_values`` arrays, see its raw-messages panel).
"""
from __future__ import annotations

import argparse

import foxglove.layouts as fl

from robot_stack.recording.live import LEARNER_METRICS, TRANSFORMS, channel_name

DEFAULT_NAMESPACE = "/robot_stack"
SHOWN = ("steps", "operator", "episodes", "learner/stats", "ee_pose", "franka/ee_twist", "cameras/{camera}/image_raw",
         "/diagnostics")
"""The ROS topics the layout shows, relative to the namespace but for the ROS-wide ones
(tests/test_live_view.py checks them against the topic table)."""
_AXES = ("x", "y", "z")


def _split(direction: str, *items: tuple[float, object]) -> fl.SplitContainer:
    return fl.SplitContainer(direction=direction, items=[fl.SplitItem(proportion=p, content=c) for p, c in items])


def _plot(title: str, series: list[tuple[str, str]], **config) -> fl.PlotPanel:
    return fl.PlotPanel(title=title, config=fl.PlotConfig(
        paths=[fl.PlotSeries(value=v, label=label) for v, label in series], show_legend=True,
        legend_display="top", **config))


def _camera(ns: str, name: str) -> fl.ImagePanel:
    return fl.ImagePanel(title=f"{name} camera", config=fl.ImageConfig(image_mode=fl.ImageModeConfig(
        image_topic=channel_name(f"cameras/{name}/image_raw/compressed", ns))))


def session_layout(namespace: str = DEFAULT_NAMESPACE) -> fl.Layout:
    """The layout described in the module docstring, for a graph in ``namespace``."""
    ns = namespace
    STEPS, OPERATOR, EPISODES, STATS = (channel_name(t, ns) for t in ("steps", "operator", "episodes", "learner/stats"))
    METRICS = channel_name(LEARNER_METRICS, ns)
    control = fl.IndicatorPanel(title="in control", config=fl.IndicatorConfig(
        path=f"{OPERATOR}.intervening", style="background", fallback_color="#2e7d32", fallback_label="policy",
        rules=[fl.IndicatorRule(raw_value="true", operator="=", color="#c62828", label="operator")]))
    transitions = fl.StateTransitionsPanel(title="interventions", config=fl.StateTransitionsConfig(paths=[
        fl.StateTransitionsSeries(value=f"{OPERATOR}.intervening", label="operator intervening (SpaceMouse)"),
        fl.StateTransitionsSeries(value=f"{STEPS}.intervention", label="step labelled intervention (actor)"),
    ]))
    three_d = fl.ThreeDeePanel(title="EE pose", config=fl.ThreeDeeConfig(
        follow_tf="base",
        topics={channel_name("ee_pose", ns): fl.BaseRendererPoseTopicSettings(visible=True, type="axis",
                                                                              axis_scale=0.1),
                channel_name(TRANSFORMS, ns): fl.BaseRendererBaseSettings(visible=True)}))
    actions = _plot("policy (dashed) vs executed action, normalised", [
        *((f"{STEPS}.policy_action[{i}]", f"policy {a}") for i, a in enumerate(_AXES)),
        *((f"{STEPS}.action[{i}]", f"executed {a}") for i, a in enumerate(_AXES))], min_y_value=-1.0, max_y_value=1.0)
    for s in actions.config.paths[:3]:
        s.line_style = "dashed"
    twist = _plot("EE twist (m/s) and operator command", [
        *((f"{channel_name('franka/ee_twist', ns)}.twist.linear.{a}", f"EE v{a}") for a in _AXES),
        *((f"{OPERATOR}.twist.linear.{a}", f"operator v{a}") for a in _AXES)])
    robot = _split("column",
                   (1.0, _split("row", (1.0, _camera(ns, "front")), (1.0, _camera(ns, "wrist")), (1.0, three_d))),
                   (0.35, _split("row", (0.25, control), (1.0, transitions))),
                   (1.0, _split("row", (1.0, actions), (1.0, twist))))

    rates = _plot("episodes", [(f"{EPISODES}.success_rate", "success rate (window)"),
                               (f"{EPISODES}.intervention_rate_window", "intervention rate (window)"),
                               (f"{EPISODES}.intervention_rate", "intervention rate (episode)")],
                  min_y_value=0.0, max_y_value=1.0)
    learner = _plot("learner", [(f"{STATS}.updates_per_s", "updates/s"), (f"{STATS}.update_backlog", "backlog"),
                                (f"{METRICS}.critic_loss", "critic loss (live)"),
                                (f"{METRICS}.actor_loss", "actor loss (live)"),
                                (f"{EPISODES}.policy_version", "policy version (episodes)")])
    learning = _split("column",
                      (1.0, _split("row", (1.0, rates), (1.0, learner))),
                      (1.0, _split("row",
                                   (1.0, fl.RawMessagesPanel(title="last episode", config=fl.RawMessagesConfig(
                                       topic_path=EPISODES))),
                                   (1.0, fl.RawMessagesPanel(title="learner stats", config=fl.RawMessagesConfig(
                                       topic_path=STATS))),
                                   (1.0, fl.DiagnosticsSummaryPanel(title="node health", config=fl.DiagnosticsSummaryConfig(
                                       topic_to_render="/diagnostics", sort_by_level=True))),
                                   (1.5, fl.LogPanel(title="node logs", config=fl.LogConfig(
                                       topic_to_render="/rosout"))))))
    return fl.Layout(content=fl.TabContainer(tabs=[fl.TabItem(title="Robot", content=robot),
                                                  fl.TabItem(title="Learning", content=learning)]))


def layout_json(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The layout as the JSON the repository ships (indented, one trailing newline)."""
    import json

    return json.dumps(json.loads(session_layout(namespace).to_json()), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m robot_stack.recording.layout",
                                 description="Write the Foxglove layout of a robot_stack session.")
    ap.add_argument("file", nargs="?", default="foxglove/robot_stack_layout.json")
    ap.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="the graph's namespace (default /robot_stack)")
    a = ap.parse_args(argv)
    with open(a.file, "w") as f:
        f.write(layout_json(a.namespace))
    print(a.file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
