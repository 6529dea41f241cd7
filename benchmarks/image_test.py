"""The sim graph split across two containers, as docker/compose.yaml describes it (`make image-test`).

Runs the compose file's ``sim-robot`` service (sim world, franka, SpaceMouse, actor and monitor:
``sim.launch.yaml run_learner:=false``) and its ``sim-learner`` service (``learner.launch.yaml``)
as two containers of the built image, with podman or docker, each with the settings the compose
file gives it (host network, host IPC, environment, sessions volume, stop signal). A probe node
on this machine watches their topics over DDS. It passes when

* step records reach the learner: its stats (``/robot_stack/learner/stats``, LearnerStats) count received
  env steps and gradient updates;
* trained weights reach the actor: step records carry a policy version >= 2 (version 1 is the
  untrained policy a fresh learner exports at start);
* episodes go by: at least ``--episodes`` episode summaries from the actor;
* both containers stop cleanly on the compose file's stop signal (robot side first): exit status
  0, every node reports exit status 0, the learner wrote its checkpoint and the robot side's
  recorder its bag into the sessions folder mounted from this machine.

Before the session it checks that the robot PC's libraries (pyspacemouse with hidapi,
pyrealsense2 with libusb, franky, franky-sim with pinocchio) load in the image. A pass is recorded in
``benchmarks/results/image_test.json`` (date, commit, engine, image size, durations); a failure
exits 1 and leaves the last pass there. It takes 2-3 minutes on a 2-core machine, which is why
CI (``make test``) does not run it.

Usage (after ``make image``; ``make image-test`` does both)::

    bash tools/in_env.sh python benchmarks/image_test.py [--learner-image robot_stack:cuda]

The containers share this machine's loopback: ``ROS_DOMAIN_ID`` (default 0) and
``--sim-address`` keep the session apart from others on the same host.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
RESULT = ROOT / "benchmarks" / "results" / "image_test.json"
ROBOT_NODES = ("recorder", "sim_world", "franka", "spacemouse", "actor", "monitor")
LEARNER_NODES = ("learner", "monitor")
# Compose keys this script turns into `run` options; any other key in a service it runs is an
# error, so the compose file and this test cannot drift apart silently.
RUN_KEYS = {"image", "profiles", "network_mode", "ipc", "stop_signal", "stop_grace_period", "environment",
            "volumes", "command"}


# --------------------------------------------------------------------------------------------
# docker/compose.yaml -> `podman run` / `docker run`
# --------------------------------------------------------------------------------------------


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}`` and ``${VAR:-default}`` (default when unset or empty)."""

    def sub(m: re.Match) -> str:
        name, default = m.group(1), m.group(3)
        value = env.get(name, "")
        return value if value else (default or "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, text)


def _seconds(duration: str) -> int:
    m = re.fullmatch(r"(\d+)s", str(duration))
    if not m:
        raise ValueError(f"stop_grace_period {duration!r}: only whole seconds ('60s') are supported here")
    return int(m.group(1))


def load_compose(path: pathlib.Path = COMPOSE) -> dict:
    return yaml.safe_load(path.read_text())


def run_args(service: dict, env: dict[str, str], compose_dir: pathlib.Path = COMPOSE.parent) -> tuple[list[str], str, list[str]]:
    """(`run` options, image, command words) of one compose service, with ``env`` for ``${...}``."""
    unknown = set(service) - RUN_KEYS
    if unknown:
        raise ValueError(f"compose keys this test does not translate: {sorted(unknown)}")
    opts: list[str] = []
    if "network_mode" in service:
        opts.append(f"--network={service['network_mode']}")
    if "ipc" in service:
        opts.append(f"--ipc={service['ipc']}")
    if "stop_signal" in service:
        opts += ["--stop-signal", service["stop_signal"]]
    if "stop_grace_period" in service:
        opts += ["--stop-timeout", str(_seconds(service["stop_grace_period"]))]
    for key, value in (service.get("environment") or {}).items():
        opts += ["-e", f"{key}={interpolate(str(value), env)}"]
    for volume in service.get("volumes") or []:
        source, _, rest = interpolate(volume, env).partition(":")
        if source.startswith("."):  # compose resolves relative sources against the file's folder
            source = str((compose_dir / source).resolve())
        opts += ["-v", f"{source}:{rest}"]
    return opts, interpolate(service["image"], env), shlex.split(interpolate(service["command"], env))


# --------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------


def container_engine() -> tuple[str, dict[str, str]]:
    """ENGINE and the environment to run it with (CONTAINERS_CONF for podman), from tools/container_env.sh."""
    out = subprocess.run(["bash", "-c", 'source tools/container_env.sh >&2 && printf "%s\\n%s\\n" "$ENGINE" "${CONTAINERS_CONF:-}"'],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.splitlines()
    env = dict(os.environ)
    if out[1]:
        env["CONTAINERS_CONF"] = out[1]
    return out[0], env


class Probe:
    """Step records, episode summaries and learner stats, seen from this machine over DDS."""

    def __init__(self, domain: int):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from robot_stack.nodes import convert, topics

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node("image_test_probe", context=self.ctx)
        self.lock = threading.Lock()
        self.steps: list = []
        self.episodes: list = []
        self.stats: list[dict] = []
        for entry, target, conv in ((topics.STEPS, self.steps, None), (topics.EPISODES, self.episodes, None),
                                    (topics.LEARNER_STATS, self.stats, lambda m: convert.learner_stats_from_msg(m).as_dict())):
            add = self._add(target)
            self.node.create_subscription(entry.msg_type, entry.resolve(), add if conv is None else
                                          (lambda m, add=add, conv=conv: add(conv(m))), entry.profile)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _add(self, target: list):
        def add(item) -> None:
            with self.lock:
                target.append(item)
        return add

    def summary(self) -> dict:
        with self.lock:
            steps, episodes, stats = list(self.steps), list(self.episodes), list(self.stats)
        return {
            "steps_seen": len(steps),
            "actor_policy_version_max": max((s.policy_version for s in steps), default=0),
            "episodes": len(episodes),
            "learner_env_steps": max((s.get("env_steps", 0) for s in stats), default=0),
            "learner_updates": max((s.get("updates", 0) for s in stats), default=0),
            "learner_policy_version": max((s.get("policy_version", 0) for s in stats), default=0),
        }

    def close(self) -> None:
        import rclpy

        rclpy.try_shutdown(context=self.ctx)
        self.thread.join(timeout=5)


class Container:
    """One `run` of a compose service, its output collected (and the monitor's lines shown)."""

    def __init__(self, engine: str, env: dict[str, str], role: str, opts: list[str], image: str, command: list[str],
                 log_path: pathlib.Path):
        self.engine, self.env, self.role = engine, env, role
        self.name = f"robot_stack_image_test_{role.replace('-', '_')}_{os.getpid()}"
        self.cmd = [engine, "run", "--rm", "--name", self.name, *opts, image, *command]
        self.lines: list[str] = []
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(self.cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()
            if line.startswith("[monitor]") and "episode" in line:
                print(f"  {self.role}: {line.rstrip()}", flush=True)

    def stop(self, timeout_s: int) -> int:
        """The compose file's stop: `stop` sends its stop signal, then waits up to its grace period."""
        subprocess.run([self.engine, "stop", "--time", str(timeout_s), self.name], env=self.env,
                       capture_output=True, text=True)
        rc = self.proc.wait(timeout=timeout_s + 30)
        self.reader.join(timeout=10)
        return rc

    def remove(self) -> None:
        """Never leave a container behind, whatever happened."""
        if self.proc.poll() is None:
            subprocess.run([self.engine, "kill", self.name], env=self.env, capture_output=True)
            subprocess.run([self.engine, "rm", "-f", self.name], env=self.env, capture_output=True)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def tail(self, n: int = 40) -> str:
        return "".join(self.lines[-n:])


def check_clean_exit(c: Container, rc: int, nodes: tuple[str, ...]) -> list[str]:
    out = "".join(c.lines)
    problems = [] if rc == 0 else [f"{c.name}: exit status {rc}"]
    problems += [f"{c.name}: '{n}' did not report exit status 0" for n in nodes if f"'{n}' exited with status 0" not in out]
    return problems


def git_commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return head + ("+changes" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", default="robot_stack:latest", help="image of the robot side")
    p.add_argument("--learner-image", default="", help="image of the learner (default: --image)")
    p.add_argument("--episodes", type=int, default=3, help="episode summaries to wait for")
    p.add_argument("--timeout-s", type=float, default=360.0, help="give up on the checks after this long")
    p.add_argument("--sim-address", default="", help="loopback address of the sim world (default 127.0.0.2xx from the domain)")
    p.add_argument("--result", type=pathlib.Path, default=RESULT, help="where a pass is recorded")
    args = p.parse_args(argv)

    domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # the probe; the containers get it below
    engine, engine_env = container_engine()
    learner_image = args.learner_image or args.image
    for image in {args.image, learner_image}:
        if subprocess.run([engine, "image", "inspect", image], env=engine_env, capture_output=True).returncode != 0:
            print(f"image_test: no image {image}: run `make image` first", file=sys.stderr)
            return 1

    print(f"image_test: robot PC libraries in {args.image}", flush=True)
    check = subprocess.run([engine, "run", "--rm", args.image, "python", "-c",
                            "import pyspacemouse, pyrealsense2, franky, franky_sim, cv2, torch, mujoco, rclpy"],
                           env=engine_env, capture_output=True, text=True)
    if check.returncode != 0:
        print(f"image_test: FAILED: the device libraries do not load:\n{check.stdout}{check.stderr}", file=sys.stderr)
        return 1

    compose = load_compose()
    sessions = pathlib.Path(tempfile.mkdtemp(prefix="robot_stack_image_test_"))
    compose_env = {
        "ROS_DOMAIN_ID": str(domain),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"],
        "ROBOT_STACK_SESSIONS": str(sessions),
        "SIM_ADDRESS": args.sim_address or f"127.0.0.{200 + domain % 50}",
        "LEARNER_TAG": learner_image.rpartition(":")[2],
    }
    services = {}
    for role in ("sim-learner", "sim-robot"):
        opts, image, command = run_args(compose["services"][role], compose_env)
        services[role] = (opts, args.image if role == "sim-robot" else learner_image, command)
    grace_s = _seconds(compose["services"]["sim-robot"].get("stop_grace_period", "10s"))

    probe = Probe(domain)
    containers: dict[str, Container] = {}
    started = time.monotonic()
    problems: list[str] = []
    summary: dict = {}
    try:
        for role, (opts, image, command) in services.items():
            print(f"image_test: {role}: {engine} run {' '.join(opts)} {image} {' '.join(command)}", flush=True)
            containers[role] = Container(engine, engine_env, role, opts, image, command, sessions / f"{role}.log")

        def done(s: dict) -> bool:
            return (s["learner_env_steps"] > 0 and s["learner_updates"] > 0 and s["actor_policy_version_max"] >= 2
                    and s["episodes"] >= args.episodes)

        milestones: dict[str, float] = {}
        while time.monotonic() - started < args.timeout_s:
            s = probe.summary()
            for key, reached in (("first_step_s", s["steps_seen"] > 0), ("trained_policy_at_actor_s", s["actor_policy_version_max"] >= 2)):
                if reached and key not in milestones:
                    milestones[key] = round(time.monotonic() - started, 1)
            if done(s):
                break
            for role, c in containers.items():
                if c.proc.poll() is not None:
                    raise RuntimeError(f"{role} ended early (status {c.proc.returncode}):\n{c.tail()}")
            time.sleep(0.5)
        summary = probe.summary()
        if not done(summary):
            problems.append(f"not reached in {args.timeout_s:.0f} s: {summary}")
        session_s = time.monotonic() - started

        # Stop the robot side first: the actor waits until the learner acknowledged its records.
        stop_started = time.monotonic()
        stops = {}
        for role, nodes in (("sim-robot", ROBOT_NODES), ("sim-learner", LEARNER_NODES)):
            t0 = time.monotonic()
            rc = containers[role].stop(grace_s)
            stops[role] = round(time.monotonic() - t0, 1)
            problems += check_clean_exit(containers[role], rc, nodes)
        if not (sessions / "sim" / "learner" / "checkpoint.pt").is_file():
            problems.append("the learner wrote no checkpoint into the mounted sessions folder")
        bags = sorted((sessions / "sim" / "robot" / "bags").glob("*/*.mcap"))
        if not bags or bags[0].stat().st_size < 100_000:
            problems.append(f"the robot side recorded no bag into the mounted sessions folder ({bags})")
        else:
            summary["robot_bag_mb"] = round(sum(b.stat().st_size for b in bags) / 1e6, 1)
    except RuntimeError as e:
        problems.append(str(e))
    finally:
        for c in containers.values():
            c.remove()
        probe.close()

    total_s = time.monotonic() - started
    if problems:
        print("image_test: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        for role, c in containers.items():
            print(f"--- {role} (last lines; all in {sessions / (role + '.log')}) ---\n{c.tail()}", file=sys.stderr)
        return 1

    def inspect(image: str, fmt: str) -> str:
        return subprocess.run([engine, "image", "inspect", "-f", fmt, image], env=engine_env,
                              capture_output=True, text=True).stdout.strip()

    record = {
        "passed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "engine": subprocess.run([engine, "--version"], env=engine_env, capture_output=True, text=True).stdout.strip(),
        "robot_image": args.image,
        "learner_image": learner_image,
        "image_size_mb": round(int(inspect(args.image, "{{.Size}}")) / 1e6),
        "duration_s": round(total_s, 1),
        "session_s": round(session_s, 1),
        "stop_s": stops,
        **milestones,
        **summary,
        "command": "bash tools/in_env.sh python benchmarks/image_test.py" + "".join(f" {a}" for a in (argv or sys.argv[1:])),
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(record, indent=2) + "\n")
    print(f"image_test: passed in {total_s:.0f} s: {summary}; recorded in {args.result}")
    shutil.rmtree(sessions, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
