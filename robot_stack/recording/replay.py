"""A recorded session's step records fed into a fresh learner (ROS-free).

:func:`replay_bag` reads the step records of a bag (decoded with rosbags, no ROS install
needed), turns each into a :class:`~robot_stack.types.records.StepRecord` with the reader the
learner node uses (:func:`robot_stack.types.fields.step_from_fields`: same checks, a bad record
dropped as the node drops it) and hands them, in recorded order, to a new
:class:`~robot_stack.rl.learner.LearnerCore`: the same labelling (RLIF rewards from the
intervention flags, ``labelling.*``), the same replay buffers and logs. With ``train`` it also
runs the update-to-data schedule synchronously after each record (``sac.utd_ratio`` critic
updates per transition once ``min_transitions`` are stored) and exports policies and a
checkpoint like a live learner. So a session can be relearnt with another penalty, network or
UTD ratio; fed the same records, the replay logs hold exactly the transitions the live learner
stored.

The learner parameters come from a params file (``config/learner.yaml`` by default; keys of the
learner node alone, such as ``stats_every_s``, are left out) with overrides, see
:func:`learner_config`. ``robot-stack bag replay <bag> --run-dir DIR`` is the command line.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import yaml

from robot_stack.recording.bag import bag_info, find_bag, read_messages
from robot_stack.recording.schemas import MessageTypes
from robot_stack.rl.learner import LearnerConfig, LearnerCore
from robot_stack.types.config import from_dict
from robot_stack.types.fields import step_from_fields
from robot_stack.types.records import MAX_ID
from robot_stack.types.spec import PolicySpec, parse_spec_json

log = logging.getLogger(__name__)

STEP_RECORD = "robot_stack/msg/StepRecord"
POLICY_WEIGHTS = "robot_stack/msg/PolicyWeights"


def topic_of_type(bag: str | pathlib.Path, msgtype: str) -> str:
    """The one topic of ``msgtype`` in a bag (``<namespace>/steps`` for step records, whatever
    namespace the session ran in); LookupError when there is none or several."""
    found = sorted(name for name, t in bag_info(bag).topics.items() if t.msgtype == msgtype)
    if len(found) != 1:
        raise LookupError(f"{find_bag(bag)} holds {len(found)} topics of type {msgtype}"
                          + (f" ({', '.join(found)}): name one" if found else ""))
    return found[0]


@dataclass
class ReplayResult:
    """What a replay did."""

    run_dir: pathlib.Path
    steps: int = 0
    """Records handed to the learner."""
    rejected: list[str] = field(default_factory=list)
    """Why each dropped record was dropped."""
    transitions: int = 0
    updates: int = 0
    episodes: int = 0
    seconds: float = 0.0


def fresh_run_dir(path: str | pathlib.Path) -> pathlib.Path:
    """``path`` if it holds no learner state yet (ValueError otherwise: a replay starts fresh)."""
    p = pathlib.Path(path).expanduser()
    taken = [n for n in (LearnerCore.CHECKPOINT, LearnerCore.ONLINE_LOG, LearnerCore.INTERVENTION_LOG)
             if (p / n).exists()]
    if taken:
        raise ValueError(f"{p} already holds a learner ({', '.join(taken)}); replay into a new run dir")
    return p


def learner_config(params_file: str | pathlib.Path, overrides: Iterable[str] = (), *, run_dir: str,
                   spec_file: str = "") -> tuple[LearnerConfig, list[str]]:
    """The learner's parameters for a replay: ``params_file`` (a ROS 2 params file or plain
    YAML), then ``overrides`` (``"name=value"``, dotted names, YAML values, e.g.
    ``"labelling.intervention_penalty=-2.0"``), then ``run_dir`` and ``spec_file``. Returns the
    config and the params file's top-level keys that are not learner-core parameters (left out:
    node settings such as ``stats_every_s``). An unknown override name is an error."""
    data = yaml.safe_load(pathlib.Path(params_file).read_text()) or {}
    if len(data) == 1 and isinstance(next(iter(data.values())), dict) and "ros__parameters" in next(iter(data.values())):
        data = next(iter(data.values()))["ros__parameters"]
    known = {f.name for f in dataclasses.fields(LearnerConfig)}
    left_out = sorted(k for k in data if k not in known)
    data = {k: v for k, v in data.items() if k in known}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"-p {item!r}: expected name=value, e.g. labelling.intervention_penalty=-2.0")
        *parents, leaf = key.split(".")
        d = data
        for part in parents:
            d = d.setdefault(part, {})
            if not isinstance(d, dict):
                raise ValueError(f"-p {item!r}: '{part}' is not a group of parameters")
        d[leaf] = yaml.safe_load(text)
    data["run_dir"] = str(run_dir)
    if spec_file:
        data["spec_file"], data["spec_json"] = str(spec_file), ""
    return from_dict(LearnerConfig, data, where="learner parameters"), left_out


def bag_spec(bag: str | pathlib.Path, types: MessageTypes | None = None) -> PolicySpec:
    """The policy spec a session ran with, from the first policy version in its bag (the network
    part is left to the learner parameters). LookupError when the bag has no policy message."""
    types = types or MessageTypes()
    topic = topic_of_type(bag, POLICY_WEIGHTS)
    first = next(read_messages(bag, [topic]), None)
    if first is None:
        raise LookupError(f"{find_bag(bag)} holds no {topic} message to take the policy spec from")
    spec, _network = parse_spec_json(types.deserialize(first.data, first.msgtype).spec_json)
    return spec


@dataclass(frozen=True)
class Skipped:
    """A recorded step record that failed the learner node's checks, by its (episode, step)."""

    key: tuple[int, int]


def bag_steps(bag: str | pathlib.Path, spec: PolicySpec | None, topic: str = "",
              types: MessageTypes | None = None, rejected: list[str] | None = None) -> Iterator:
    """The bag's step records (on ``topic``; "": the bag's one StepRecord topic) as
    :class:`~robot_stack.types.records.StepRecord`, in recorded order. A record that fails the
    learner node's checks comes as :class:`Skipped` (its reason appended to ``rejected``): the
    learner moves past it as the node does with one it drops."""
    types = types or MessageTypes()
    for m in read_messages(bag, [topic or topic_of_type(bag, STEP_RECORD)]):
        msg = types.deserialize(m.data, m.msgtype)
        try:
            yield step_from_fields(msg, spec)
        except ValueError as e:
            if rejected is not None:
                rejected.append(str(e))
            if msg.episode_id <= MAX_ID:  # the learner node's rule
                yield Skipped((int(msg.episode_id), int(msg.step_index)))


def replay_steps(steps: Iterable, config: LearnerConfig, *, train: bool = True,
                 progress: Callable[[ReplayResult], None] | None = None, progress_every: int = 500,
                 result: ReplayResult | None = None) -> ReplayResult:
    """Feed ``steps`` (recorded order) to a fresh learner on ``config.run_dir``; see the module
    docstring."""
    result = result or ReplayResult(fresh_run_dir(config.run_dir))
    fresh_run_dir(config.run_dir)
    t0 = time.monotonic()
    core = LearnerCore(config).open()
    try:
        if train:
            core.start(thread=False)  # synchronous: the updates run here, after each record
        for step in steps:
            if isinstance(step, Skipped):
                core.skip_step(step.key)  # as the learner node does with a record it drops
                continue
            result.transitions += core.add_step(step)
            result.steps += 1
            if train:
                core.train_available()
            if progress is not None and result.steps % progress_every == 0:
                result.updates, result.seconds = core.updates, time.monotonic() - t0
                progress(result)
    finally:
        core.close()
    result.updates = core.updates
    result.episodes = int(core.counters["episodes"])
    result.seconds = time.monotonic() - t0
    return result


def replay_bag(bag: str | pathlib.Path, config: LearnerConfig, *, train: bool = True, topic: str = "",
               progress: Callable[[ReplayResult], None] | None = None) -> ReplayResult:
    """A bag's step records (``topic``; "": its one StepRecord topic) into a fresh learner.
    Without a spec in ``config`` the bag's own (:func:`bag_spec`) is used. LookupError when the
    bag has no step record topic, or several and ``topic`` is not given."""
    types = MessageTypes()
    topic = topic or topic_of_type(bag, STEP_RECORD)
    if not (config.spec_json or config.spec_file):
        config = dataclasses.replace(config, spec_json=bag_spec(bag, types).to_json())
    spec, _ = parse_spec_json(config.spec_json or pathlib.Path(config.spec_file).read_text())
    result = ReplayResult(fresh_run_dir(config.run_dir))
    return replay_steps(bag_steps(bag, spec, topic, types, result.rejected), config, train=train,
                        progress=progress, result=result)


__all__ = ["POLICY_WEIGHTS", "STEP_RECORD", "ReplayResult", "Skipped", "bag_spec", "bag_steps", "fresh_run_dir", "learner_config",
           "replay_bag", "replay_steps", "topic_of_type"]
