"""The Foxglove layout for a robot_stack session, built with foxglove-sdk's layout types.

``foxglove/robot_stack_layout.json`` is :func:`session_layout` written out
(``python -m robot_stack.recording.layout foxglove/robot_stack_layout.json``; a test keeps the
file and this function in step). Two tabs:

* **Robot**: the front and wrist cameras (``image_raw/compressed``, what the live view serves and
  the real-robot bag records; pick ``image_raw`` in the panel for a raw sim bag), the EE frame in
  3D, who is in control (operator or policy) over time, the policy's proposed action against the
  executed one (which is the operator's while intervening), and the EE twist;
* **Learning**: success and intervention rates per episode, the learner's update rate, backlog
  and losses, the latest episode summary and learner stats, and every node's log.

The layout works on the live view and on a recorded bag opened in Foxglove (same topic names);
the learner-stats fields only live (the bag keeps them as JSON text in std_msgs/String).
"""
from __future__ import annotations

import sys

import foxglove.layouts as fl

from robot_stack.recording.live import TRANSFORMS_TOPIC

STEPS = "/robot_stack/steps"
OPERATOR = "/robot_stack/operator"
EPISODES = "/robot_stack/episodes"
STATS = "/robot_stack/learner/stats"
_AXES = ("x", "y", "z")


def _split(direction: str, *items: tuple[float, object]) -> fl.SplitContainer:
    return fl.SplitContainer(direction=direction, items=[fl.SplitItem(proportion=p, content=c) for p, c in items])


def _plot(title: str, series: list[tuple[str, str]], **config) -> fl.PlotPanel:
    return fl.PlotPanel(title=title, config=fl.PlotConfig(
        paths=[fl.PlotSeries(value=v, label=label) for v, label in series], show_legend=True,
        legend_display="top", **config))


def _camera(name: str) -> fl.ImagePanel:
    return fl.ImagePanel(title=f"{name} camera", config=fl.ImageConfig(image_mode=fl.ImageModeConfig(
        image_topic=f"/robot_stack/cameras/{name}/image_raw/compressed")))


def session_layout() -> fl.Layout:
    """The layout described in the module docstring."""
    control = fl.IndicatorPanel(title="in control", config=fl.IndicatorConfig(
        path=f"{OPERATOR}.intervening", style="background", fallback_color="#2e7d32", fallback_label="policy",
        rules=[fl.IndicatorRule(raw_value="true", operator="=", color="#c62828", label="operator")]))
    transitions = fl.StateTransitionsPanel(title="interventions", config=fl.StateTransitionsConfig(paths=[
        fl.StateTransitionsSeries(value=f"{OPERATOR}.intervening", label="operator intervening (SpaceMouse)"),
        fl.StateTransitionsSeries(value=f"{STEPS}.intervention", label="step labelled intervention (actor)"),
    ]))
    three_d = fl.ThreeDeePanel(title="EE pose", config=fl.ThreeDeeConfig(
        follow_tf="base",
        topics={"/robot_stack/ee_pose": fl.BaseRendererPoseTopicSettings(visible=True, type="axis", axis_scale=0.1),
                TRANSFORMS_TOPIC: fl.BaseRendererBaseSettings(visible=True)}))
    actions = _plot("policy (dashed) vs executed action, normalised", [
        *((f"{STEPS}.policy_action[{i}]", f"policy {a}") for i, a in enumerate(_AXES)),
        *((f"{STEPS}.action[{i}]", f"executed {a}") for i, a in enumerate(_AXES))], min_y_value=-1.0, max_y_value=1.0)
    for s in actions.config.paths[:3]:
        s.line_style = "dashed"
    twist = _plot("EE twist (m/s) and operator command", [
        *((f"/robot_stack/franka/ee_twist.twist.linear.{a}", f"EE v{a}") for a in _AXES),
        *((f"{OPERATOR}.twist.linear.{a}", f"operator v{a}") for a in _AXES)])
    robot = _split("column",
                   (1.0, _split("row", (1.0, _camera("front")), (1.0, _camera("wrist")), (1.0, three_d))),
                   (0.35, _split("row", (0.25, control), (1.0, transitions))),
                   (1.0, _split("row", (1.0, actions), (1.0, twist))))

    rates = _plot("episodes", [(f"{EPISODES}.success_rate", "success rate (window)"),
                               (f"{EPISODES}.intervention_rate_window", "intervention rate (window)"),
                               (f"{EPISODES}.intervention_rate", "intervention rate (episode)")],
                  min_y_value=0.0, max_y_value=1.0)
    learner = _plot("learner", [(f"{STATS}.updates_per_s", "updates/s"), (f"{STATS}.update_backlog", "backlog"),
                                (f"{STATS}.critic_loss", "critic loss"), (f"{STATS}.actor_loss", "actor loss"),
                                (f"{EPISODES}.policy_version", "policy version (episodes)")])
    learning = _split("column",
                      (1.0, _split("row", (1.0, rates), (1.0, learner))),
                      (1.0, _split("row",
                                   (1.0, fl.RawMessagesPanel(title="last episode", config=fl.RawMessagesConfig(
                                       topic_path=EPISODES))),
                                   (1.0, fl.RawMessagesPanel(title="learner stats", config=fl.RawMessagesConfig(
                                       topic_path=STATS))),
                                   (1.5, fl.LogPanel(title="node logs", config=fl.LogConfig(
                                       topic_to_render="/rosout"))))))
    return fl.Layout(content=fl.TabContainer(tabs=[fl.TabItem(title="Robot", content=robot),
                                                  fl.TabItem(title="Learning", content=learning)]))


def layout_json() -> str:
    """The layout as the JSON the repository ships (indented, one trailing newline)."""
    import json

    return json.dumps(json.loads(session_layout().to_json()), indent=2) + "\n"


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "foxglove/robot_stack_layout.json"
    with open(target, "w") as f:
        f.write(layout_json())
    print(target)
