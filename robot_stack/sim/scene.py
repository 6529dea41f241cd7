"""FR3 MJCF scene building, compatible with ``franky_sim.MujocoSimulator``'s scene layout.

The FR3 model is read from the installed ``franky-sim`` wheel (``franky_sim/assets``); nothing
is copied into this repository. :func:`build_scene` lays the scene out the way
``MujocoSimulator`` does (robot body names prefixed ``robot0_``, ground plane at z = 0, robot
base at the origin), so a task's :meth:`~robot_stack.sim.tasks.TaskDefinition.add_to_scene`
works unchanged on ``sim.worldbody`` and on the worldbody built here.

``fast=True`` builds the variant used by the fast Gymnasium driver: visual meshes replaced by
primitives MuJoCo fits to the collision meshes, no shadows, no multisampling, a flat floor,
gravity compensation on the arm bodies and the arm's position actuators left active (the
franky-sim world zeroes them and drives torques instead).
"""
from __future__ import annotations

import copy
import functools
import logging
import os
import pathlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ROBOT_PREFIX = "robot0_"
"""Name prefix franky_sim gives the first robot's bodies, joints and actuators."""

HOME_Q = (0.0, -0.2, 0.0, -2.2, 0.0, 2.0, 0.785)
"""Joint configuration the fast driver starts IK from (rad); EE pointing down, in front."""

FAST_PHYSICS_TIMESTEP_S = 0.004
"""Physics step of the fast driver (franky-sim uses 0.001 s); 25 substeps per 10 Hz step."""


@dataclass(frozen=True)
class CameraMount:
    """Where a camera sits; ``parent_body`` None means the world frame."""

    name: str
    """Camera name (observation key)."""
    pos: tuple[float, float, float]
    """Position in the parent frame, m."""
    xyaxes: tuple[float, ...]
    """MJCF ``xyaxes``: camera x and y axes in the parent frame (camera looks along -z)."""
    fovy_deg: float = 60.0
    """Vertical field of view, degrees."""
    parent_body: str | None = None
    """Unprefixed body name to attach to (e.g. ``hand``), or None for the world."""


def look_at_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> tuple[float, ...]:
    """MJCF ``xyaxes`` for a camera at ``pos`` looking at ``target`` (world frame)."""
    import numpy as np  # noqa: PLC0415

    fwd = np.asarray(target, float) - np.asarray(pos, float)
    fwd /= np.linalg.norm(fwd)
    x = np.cross(fwd, np.asarray(up, float))
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    return tuple(float(round(v, 4)) for v in (*x, *y))


def fr3_assets_dir() -> pathlib.Path:
    """Directory of the FR3 MJCF and meshes inside the installed franky-sim wheel."""
    try:
        import franky_sim  # noqa: PLC0415  (optional heavy import, only when building scenes)
    except ImportError as e:  # pragma: no cover - environment problem
        raise RuntimeError(
            "franky-sim is not installed; the FR3 model is loaded from its wheel "
            "(pip install franky-sim==1.0.4)"
        ) from e
    path = pathlib.Path(os.path.dirname(franky_sim.__file__)) / "assets"
    if not (path / "fr3.xml").is_file():
        raise RuntimeError(f"franky-sim wheel has no assets/fr3.xml under {path}")
    return path


@functools.lru_cache(maxsize=1)
def _fr3_template() -> ET.Element:
    return ET.parse(fr3_assets_dir() / "fr3.xml").getroot()


def _prefix_names(elem: ET.Element, prefix: str) -> None:
    # Same rule as franky_sim: names only, never mesh/material/class references.
    if "name" in elem.attrib:
        elem.attrib["name"] = prefix + elem.attrib["name"]
    for child in elem:
        _prefix_names(child, prefix)


def find_body(root: ET.Element, name: str) -> ET.Element:
    """The ``<body>`` named ``name`` below ``root``; KeyError naming it if absent."""
    for b in root.iter("body"):
        if b.get("name") == name:
            return b
    raise KeyError(f"no body named '{name}' in the scene (robot prefix wrong?)")


def add_camera(worldbody: ET.Element, mount: CameraMount, robot_prefix: str = ROBOT_PREFIX) -> None:
    """Append ``mount`` as an MJCF ``<camera>`` to the world or to a robot body."""
    parent = worldbody if mount.parent_body is None else find_body(worldbody, robot_prefix + mount.parent_body)
    ET.SubElement(
        parent,
        "camera",
        name=mount.name,
        pos=" ".join(f"{v:g}" for v in mount.pos),
        xyaxes=" ".join(f"{v:g}" for v in mount.xyaxes),
        fovy=f"{mount.fovy_deg:g}",
    )


def _make_fast_visuals(robot_body: ET.Element) -> None:
    """Replace each link's visual meshes by one primitive fitted to its collision mesh."""
    for body in robot_body.iter("body"):
        geoms = [g for g in body.findall("geom")]
        visuals = [g for g in geoms if g.get("class") == "visual"]
        if not visuals:
            continue
        colls = [g for g in geoms if g.get("class") == "collision" and g.get("mesh")]
        for g in visuals:
            body.remove(g)
        mesh = colls[0].get("mesh") if colls else visuals[0].get("mesh")
        name = body.get("name", "")
        # Fingers and hand are box-like; links are capsule-like.
        gtype = "box" if ("finger" in name or name.endswith("hand")) else "capsule"
        rgba = "0.25 0.25 0.25 1" if "finger" in name else "0.92 0.92 0.92 1"
        ET.SubElement(
            body,
            "geom",
            type=gtype,
            mesh=mesh,
            rgba=rgba,
            contype="0",
            conaffinity="0",
            group="2",
            mass="0",
        )


def build_scene(
    robot_prefix: str = ROBOT_PREFIX,
    fast: bool = True,
) -> tuple[ET.Element, ET.Element]:
    """Build the FR3 scene as an MJCF tree; returns ``(root, worldbody)``.

    Tasks add their elements to ``worldbody`` afterwards (see ``TaskDefinition.add_to_scene``).
    """
    tpl = _fr3_template()
    root = ET.Element("mujoco", model="robot_stack_fr3_task")
    ET.SubElement(root, "compiler", angle="radian", meshdir=str(fr3_assets_dir() / "meshes"))
    opt = copy.deepcopy(tpl.find("option"))
    if fast:
        opt.set("timestep", str(FAST_PHYSICS_TIMESTEP_S))
        # Fewer solver iterations suffice for slow (<= 0.1 m/s) motions; measured to be stable.
        opt.set("iterations", "20")
        opt.set("ls_iterations", "10")
    root.append(opt)
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "headlight", diffuse="0.6 0.6 0.6", ambient="0.3 0.3 0.3", specular="0 0 0")
    if fast:
        # Coarse tessellation of primitives: software rasterization cost follows triangles.
        ET.SubElement(visual, "quality", shadowsize="0", offsamples="0", numslices="12", numstacks="6", numquads="1")
    else:
        ET.SubElement(visual, "quality", shadowsize="4096", offsamples="8")
    ET.SubElement(visual, "global", offwidth="640", offheight="480")
    root.append(copy.deepcopy(tpl.find("default")))
    asset = copy.deepcopy(tpl.find("asset"))
    root.append(asset)

    worldbody = ET.SubElement(root, "worldbody")
    if fast:
        # Untextured floor with a coarse grid: software rendering cost scales with triangles.
        ET.SubElement(worldbody, "geom", name="ground", type="plane", size="2 2 0.5", rgba="0.35 0.45 0.55 1")
        ET.SubElement(worldbody, "light", name="key_light", pos="0.5 0 2", dir="0 0 -1",
                      directional="true", diffuse="0.5 0.5 0.5", castshadow="false")
    else:
        ET.SubElement(worldbody, "geom", name="ground", type="plane", size="10 10 0.1", rgba="0.3 0.4 0.5 1")
        ET.SubElement(worldbody, "light", name="key_light", pos="2 -1.5 3", dir="-0.5 0.4 -1",
                      directional="true", diffuse="0.6 0.56 0.45", castshadow="true")

    robot = copy.deepcopy(tpl.find("worldbody")[0])
    if fast:
        _make_fast_visuals(robot)
        for body in robot.iter("body"):
            # Arm links float under gravity compensation so the position servos track exactly.
            if body.get("name", "").startswith("fr3_link") and body.get("name") != "fr3_link0":
                body.set("gravcomp", "1")
    _prefix_names(robot, robot_prefix)
    robot.set("pos", "0 0 0")
    worldbody.append(robot)

    for section in ("actuator", "tendon", "equality", "contact"):
        src = tpl.find(section)
        dst = ET.SubElement(root, section)
        if src is None:
            continue
        for child in src:
            c = copy.deepcopy(child)
            for attr in ("name", "joint", "joint1", "joint2", "tendon", "body1", "body2"):
                if attr in c.attrib:
                    c.attrib[attr] = robot_prefix + c.attrib[attr]
            for sub in c:
                if "joint" in sub.attrib:
                    sub.attrib["joint"] = robot_prefix + sub.attrib["joint"]
            dst.append(c)
    return root, worldbody
