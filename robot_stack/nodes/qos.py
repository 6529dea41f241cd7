"""Named QoS profiles: the one place that says how each kind of stream is delivered.

Every publisher and subscriber in robot_stack takes its profile from here, so the two ends
of a topic always match (a RELIABLE subscriber on a BEST_EFFORT publisher receives nothing).

===========  ===========  ===============  =====  ==================================================
name         reliability  durability       depth  use
===========  ===========  ===============  =====  ==================================================
SENSOR       best effort  volatile         5      camera images, CameraInfo, raw device streams
                                                  (Joy/Twist): a late frame is worth less than the
                                                  next one, so nothing is retransmitted.
STEPS        reliable     volatile         1000   actor -> learner transitions (StepRecord): every
                                                  step is training data; the deep queue absorbs
                                                  learner stalls (about 100 s at 10 Hz).
POLICY       reliable     transient local  1      "latest policy" announcements (PolicyWeights): a
                                                  learner or actor that joins late gets the newest
                                                  weights at once, and only the newest.
ACK          reliable     transient local  1      the learner's acknowledgement of step records
                                                  (StepAck): a (re)started actor gets the newest
                                                  watermark at once.
COMMAND      reliable     volatile         10     commands (OperatorCommand, robot velocity
                                                  commands): small queue, so a stalled reader sees
                                                  fresh commands instead of a backlog.
EPISODES     reliable     transient local  100    episode summaries: a late joiner (logger, UI)
                                                  gets the recent history.
STATE        best effort  volatile         10     robot state at control rate: the newest sample
                                                  matters, a lost one is replaced within a period.
DIAGNOSTICS  reliable     volatile         10     /diagnostics: the ROS default profile, which the
                                                  standard diagnostics tools (aggregator,
                                                  rqt_robot_monitor) use.
===========  ===========  ===============  =====  ==================================================

All profiles keep the last ``depth`` samples (KEEP_LAST).

What publishers offer (:func:`offered`) is the profile above, except for the streams that start
publishing the moment their node is up, SENSOR, STATE and DIAGNOSTICS: their publishers offer
**reliable, transient local** and keep their last samples (SENSOR 30, STATE 100: one to two
seconds; DIAGNOSTICS 10 s). A subscriber asking for the table's profile gets what it always got
(a stronger offer matches a weaker request, and nothing old is replayed to a volatile one); the
recorder asks for the offer, so a recorder that discovers a publisher late, as happens while a
whole graph starts on a busy machine, still gets its first seconds. (Fast DDS replays history
to late joiners only from reliable writers, hence reliable.) A publish never waits on a slow
reliable reader: a full KEEP_LAST history drops its oldest sample. The price: once a reliable
writer's KEEP_LAST history is full, Fast DDS sends a heartbeat with every sample, and the
recorder answers them (after 100 ms, all of an interval at once: ``nodes/recorder_fastdds.xml``;
with Fast DDS's default 5 ms, one answer per sample, about a point of a core on the sim graph).
Commands keep their volatile offer: Fast DDS removes acknowledged samples from a volatile
writer's history, so it does not fill, and commands keep the protocol cost they had.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def _profile(reliability: ReliabilityPolicy, durability: DurabilityPolicy, depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability, durability=durability)


SENSOR = _profile(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 5)
"""Camera images and raw device streams: best effort, keep last 5."""

STEPS = _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 1000)
"""Transitions actor -> learner: reliable, keep last 1000."""

POLICY = _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1)
"""Latest policy weights: reliable, transient local, depth 1 (late joiners get the newest)."""

ACK = _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1)
"""Step acknowledgements learner -> actor: reliable, transient local, depth 1 (the newest counts)."""

COMMAND = _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10)
"""Operator and robot commands: reliable, keep last 10."""

EPISODES = _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 100)
"""Episode summaries: reliable, transient local, keep last 100."""

STATE = _profile(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 10)
"""Robot state at control rate: best effort, keep last 10."""

DIAGNOSTICS = _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10)
"""/diagnostics (DiagnosticArray): the ROS default profile, reliable, keep last 10."""

KEPT_FOR_LATE_JOINERS: dict[str, QoSProfile] = {
    "SENSOR": _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 30),
    "STATE": _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 100),
    "DIAGNOSTICS": _profile(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 10),
}
"""What publishers of SENSOR, STATE and DIAGNOSTICS streams offer: reliable, transient local, last
30 / 100 / 10."""

PROFILES: dict[str, QoSProfile] = {
    "SENSOR": SENSOR,
    "STEPS": STEPS,
    "POLICY": POLICY,
    "ACK": ACK,
    "COMMAND": COMMAND,
    "EPISODES": EPISODES,
    "STATE": STATE,
    "DIAGNOSTICS": DIAGNOSTICS,
}
"""All named profiles by name (for tools and tests)."""


def by_name(name: str) -> QoSProfile:
    """Profile for a name such as ``"SENSOR"`` (case-insensitive); ValueError names the choices."""
    try:
        return PROFILES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown QoS profile '{name}'; known: {', '.join(PROFILES)}") from None


def offered(name: str) -> QoSProfile:
    """What a publisher of the named profile offers: :data:`KEPT_FOR_LATE_JOINERS` for SENSOR,
    STATE and DIAGNOSTICS, else the profile itself (see the module docstring)."""
    profile = by_name(name)
    return KEPT_FOR_LATE_JOINERS.get(name.upper(), profile)
