"""Every node parameter is listed in its shipped params file (config/*.yaml), so a person
reading the file sees every knob; and every key there is a real parameter."""
from __future__ import annotations

import dataclasses
import pathlib
import typing

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _fields(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.update(_fields(t, f"{prefix}{f.name}."))
        else:
            default = f.default if f.default is not dataclasses.MISSING else None
            out[prefix + f.name] = default
    return out


def _keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        out |= _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def _configs():
    from robot_stack.actor.config import ActorNodeConfig
    from robot_stack.nodes.camera_node import CameraNodeConfig
    from robot_stack.nodes.franka_node import FrankaNodeConfig
    from robot_stack.nodes.learner_node import LearnerNodeConfig
    from robot_stack.nodes.live_view_node import LiveViewNodeConfig
    from robot_stack.nodes.recorder_node import RecorderNodeConfig
    from robot_stack.nodes.sim_world_node import SimWorldNodeConfig
    from robot_stack.nodes.spacemouse_node import SpaceMouseNodeConfig

    return [("actor", ActorNodeConfig), ("camera", CameraNodeConfig), ("franka", FrankaNodeConfig),
            ("learner", LearnerNodeConfig), ("live_view", LiveViewNodeConfig), ("recorder", RecorderNodeConfig),
            ("sim_world", SimWorldNodeConfig), ("spacemouse", SpaceMouseNodeConfig)]


@pytest.mark.parametrize("name, cls", _configs())
def test_params_file_lists_every_parameter_and_nothing_else(name, cls):
    data = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    (section,) = data.values()
    keys = _keys(section["ros__parameters"])
    fields = _fields(cls)
    unknown = keys - set(fields)
    assert not unknown, f"config/{name}.yaml has keys that are not parameters: {sorted(unknown)}"
    # Fields whose default is None (optional, no ROS parameter value) may be left out.
    missing = {k for k, default in fields.items() if default is not None} - keys
    assert not missing, f"config/{name}.yaml does not list: {sorted(missing)}"



@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_params_file_sections_reach_their_node_in_any_namespace(path):
    """A bare ``node:`` section names a node outside any namespace; ROS ignores it for the
    graph's nodes (``/robot_stack/<node>``, ``/arm1/<node>``), so every shipped section is a
    wildcard (``/**`` or ``/**/<node>``)."""
    from robot_stack.nodes.params import _section_matches

    data = yaml.safe_load(path.read_text())
    for key in data:
        if key in ("/**",):
            continue
        node = str(key).rsplit("/", 1)[-1]
        for ns in ("/robot_stack", "/arm1"):
            assert _section_matches(str(key), f"{ns}/{node}"), (
                f"{path.name}: section '{key}' does not reach node '{ns}/{node}'; name it '/**/{node}'")
