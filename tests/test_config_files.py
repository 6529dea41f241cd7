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
    from robot_stack.nodes.sim_world_node import SimWorldNodeConfig
    from robot_stack.nodes.spacemouse_node import SpaceMouseNodeConfig

    return [("actor", ActorNodeConfig), ("camera", CameraNodeConfig), ("franka", FrankaNodeConfig),
            ("learner", LearnerNodeConfig), ("sim_world", SimWorldNodeConfig), ("spacemouse", SpaceMouseNodeConfig)]


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


def test_docker_compose_passes_only_declared_launch_arguments():
    """`ros2 launch` ignores an argument the file does not declare: a misspelt one (it was
    `session_dir`) silently leaves the default, e.g. a run_dir inside the container that is lost
    with it. Every `name:=value` in docker/compose.yaml must be declared by its launch file."""
    import re
    import shlex

    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    checked = 0
    for name, service in compose["services"].items():
        words = shlex.split(service["command"])
        assert words[:3] == ["ros2", "launch", "robot_stack"], (name, words)
        launch = yaml.safe_load((ROOT / "launch" / words[3]).read_text())["launch"]
        declared = {item["arg"]["name"] for item in launch if "arg" in item}
        for word in words[4:]:
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*):=(.*)", word)
            assert m, f"service {name}: unexpected word {word!r} in its command"
            assert m.group(1) in declared, f"service {name}: {words[3]} declares no argument '{m.group(1)}'"
            checked += 1
    assert checked >= 4
