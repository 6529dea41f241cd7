"""Session recording on a whole sim session: completeness, the recorder's CPU, MB per minute.

Runs ``robot-stack sim --duration-s <seconds>`` (launch/sim.launch.yaml with its defaults:
recording on, raw images, zstd chunks) and, in this process, a probe that subscribes to every
topic the recorder records by default (raw subscriptions, the same QoS profiles, so it sees what
any live subscriber of those topics sees) and keeps a SHA-1 of every message. Afterwards:

* **completeness**: for every topic, each message the probe received must be in the bag (same
  CDR bytes); ``missing`` counts those that are not, split by where they were in the probe's
  sequence: before the bag's first message of the topic (start-up), after its last (shutdown),
  or in between. The probe runs from before the launch to after it, so it sees more than any
  node of the session could: ``missing_after_recorder_up`` counts only what the probe received
  after the recorder logged that it was recording (its subscriptions exist then; what a node
  published before that no recorder started with the session can hold). The recorder's own
  closing log lines (its summary of the finished bag, on /rosout) are counted apart: they
  cannot be in the bag. The consumers' own counts too: the step records in the live learner's
  replay log against the bag's, the monitor's progress.csv rows against the bag's episode
  summaries;
* **replay**: the bag's step records replayed into a fresh learner (``robot-stack bag replay
  --no-train``); its replay logs must start with the live learner's, byte for byte (the live
  learner, stopped together with the actor, may not have taken the last records in flight:
  the replay then holds those few transitions more, reported as ``replay_extra_bytes``);
* **recorder CPU**: CPU seconds of the recorder process (from /proc) between 30 s after the
  start and the stop, divided by the wall time (1.0 = one core), the same per thread name
  (``recorder_thread_cpu_share``), what it logged itself, and its warnings;
* **size**: the bag's size per minute of session, per topic too; and the size with
  ``record_images:=jpeg`` computed from the recorded camera frames (JPEG quality 90).

Run (about seconds + 1 min; on a quiet machine):
  bash tools/in_env.sh python benchmarks/recording.py [--seconds 600] [--physics franky]
Writes benchmarks/results/recording.json (--out) and prints a summary.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import pathlib
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOMAIN = os.environ.get("ROS_DOMAIN_ID", "96")
ADDRESS = "127.0.0.96"
NAMESPACE = "/robot_stack"  # the sim launch file's default namespace


def _cpu_s(pid: int) -> float | None:
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    try:
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(_cpu_s(int(c)) or 0.0 for c in children)


def _threads_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds per thread of a process, keyed '<name>/<tid>' (e.g. 'dds.ev.0/1234')."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            text = pathlib.Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1:text.rfind(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _by_name(before: dict[str, float], after: dict[str, float], window_s: float | None) -> dict[str, float]:
    if not window_s:
        return {}
    shares: dict[str, float] = collections.defaultdict(float)
    for key, cpu in after.items():
        shares[key.rsplit("/", 1)[0]] += (cpu - before.get(key, 0.0)) / window_s
    return {name: round(v, 4) for name, v in sorted(shares.items(), key=lambda kv: -kv[1]) if v >= 1e-4}


class Probe:
    """Raw subscriptions to the recorder's default topics; a SHA-1 per received message."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from robot_stack.nodes.raw_topics import RawTopics, default_selection, table_specs

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, domain_id=int(DOMAIN))
        self.node = rclpy.create_node("recording_probe", context=self.ctx)
        self.digests: dict[str, list[bytes]] = collections.defaultdict(list)
        self.times: dict[str, list[int]] = collections.defaultdict(list)  # receive time, ns (system clock)
        self.logs: dict[bytes, bytes] = {}  # /rosout digest -> message (to name a missing line's node)
        self.topics = RawTopics(self.node, default_selection("", "", NAMESPACE), self._on_message,
                                table_specs(NAMESPACE), history_depth=1000)
        for t in self.topics.topics.values():
            self.topics.subscribe(t)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _on_message(self, topic, data: bytes, t_ns: int) -> None:
        digest = hashlib.sha1(data).digest()
        self.digests[topic.name].append(digest)
        self.times[topic.name].append(t_ns)
        if topic.name == "/rosout":
            self.logs[digest] = data

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.1)

    def close(self) -> dict[str, list[bytes]]:
        import rclpy

        self._stop.set()
        self.thread.join(timeout=10)
        rclpy.try_shutdown(context=self.ctx)
        return dict(self.digests)

    def _log_lines(self, digests) -> list:
        """These /rosout messages, deserialised (rcl_interfaces/Log)."""
        from robot_stack.recording.schemas import MessageTypes

        types = MessageTypes()
        return [types.deserialize(self.logs[d], "rcl_interfaces/msg/Log") for d in digests if d in self.logs]

    @staticmethod
    def _is_recorders(line) -> bool:
        return line.name.split(".")[-1] == "recorder"  # the logger is "<namespace>.recorder"

    def describe_lines(self, digests) -> list[str]:
        """``<logger>: <text>`` of these /rosout messages but the recorder's own (to name a loss)."""
        return [f"{m.name}: {m.msg[:160]}" for m in self._log_lines(digests) if not self._is_recorders(m)]

    def own_lines(self, digests) -> int:
        """How many of these /rosout messages the recorder itself logged (its closing summary,
        written after the bag is finished: never in the bag, by construction)."""
        return sum(1 for m in self._log_lines(digests) if self._is_recorders(m))


def _jpeg_bytes(bag, topics, quality: int = 90) -> dict[str, int]:
    """Bytes the camera topics would take as CompressedImage (JPEG) in the bag."""
    from robot_stack.recording.bag import read_messages
    from robot_stack.recording.images import ImageCompressor
    from robot_stack.recording.schemas import MessageTypes

    comp = ImageCompressor(MessageTypes(), quality)
    out = collections.Counter()
    for m in read_messages(bag, topics):
        out[m.topic] += len(comp.compress(m.data))
    return dict(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="session length, s")
    parser.add_argument("--physics", default="franky", choices=["franky", "direct"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recording.json"))
    parser.add_argument("--keep", help="keep the run dir here (default: a temporary one)")
    args = parser.parse_args()

    os.environ.update(ROS_DOMAIN_ID=DOMAIN, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    tmp = None
    if args.keep:
        run_dir = pathlib.Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="recording_bench_")
        run_dir = pathlib.Path(tmp.name)
    load_before = os.getloadavg()
    probe = Probe()
    cmd = [sys.executable, str(ROOT / "scripts" / "robot-stack"), "sim", "--duration-s", str(args.seconds),
           f"run_dir:={run_dir}", f"physics:={args.physics}", f"sim_address:={ADDRESS}"]
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    pid = None
    while pid is None and proc.poll() is None and time.monotonic() - t_start < 60:
        m = next((re.search(r"\[launch\] started 'recorder' \(pid (\d+)\)", ln) for ln in list(lines)
                  if "started 'recorder'" in ln), None)
        pid = int(m.group(1)) if m else None
        time.sleep(0.2)  # waiting for the launch to report the recorder's pid
    assert pid is not None, "".join(lines[-40:])
    time.sleep(30.0)  # start-up (imports, discovery) is not the steady state being measured
    cpu0, t0 = _cpu_s(pid), time.monotonic()
    threads0 = _threads_cpu_s(pid)
    threads1: dict[str, float] = {}
    cpu1 = t1 = None
    while proc.poll() is None:
        c = _cpu_s(pid)
        if c is not None:
            cpu1, t1 = c, time.monotonic()  # the last sample before the recorder stops
            threads1 = _threads_cpu_s(pid) or threads1
        if any("shutting down" in ln for ln in list(lines)):
            break
        time.sleep(1.0)  # sampling /proc once a second
    load_end = os.getloadavg()
    rc = proc.wait(timeout=180)
    reader.join(timeout=10)
    wall_s = time.monotonic() - t_start
    digests = probe.close()
    out_text = "".join(lines)
    (run_dir / "launch_output.log").write_text(out_text)

    from robot_stack.recording.bag import bag_info, find_bag, read_messages

    bag = find_bag(run_dir / "bags")
    info = bag_info(bag)
    in_bag: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    first_in_bag: dict[str, int] = {}  # log time (the recorder's receive time, system clock), ns
    for m in read_messages(bag):
        in_bag[m.topic][hashlib.sha1(m.data).digest()] += 1
        first_in_bag.setdefault(m.topic, m.t_ns)
    # When the recorder was up: its "recording N topics" line, logged once its subscriptions
    # exist. What the probe got before that was published before the recorder could take it.
    up_line = next((ln for ln in lines if "[recorder]" in ln and "recording " in ln and " topics of " in ln), "")
    m = re.search(r"\[(\d+)\.(\d{9})\]", up_line)
    t_up_ns = int(m.group(1)) * 10**9 + int(m.group(2)) if m else None
    per_topic = {}
    for topic in sorted(set(digests) | set(in_bag)):
        seen = collections.Counter(digests.get(topic, []))
        missing = sum((seen - in_bag[topic]).values())
        # Where the missing ones were in the probe's sequence: before the bag's first message of
        # the topic (start-up), after its last (shutdown), or in between (a real loss).
        left = collections.Counter(in_bag[topic])
        found = []
        for i, d in enumerate(digests.get(topic, [])):
            if left[d] > 0:
                left[d] -= 1
                found.append(i)
        n = len(digests.get(topic, []))
        at_start = found[0] if found else n
        at_end = (n - 1 - found[-1]) if found else 0
        own = probe.own_lines((seen - in_bag[topic]).elements()) if topic == "/rosout" else 0
        per_topic[topic] = {"probe": sum(seen.values()), "bag": sum(in_bag[topic].values()), "missing": missing - own,
                            "missing_at_start": at_start, "missing_at_end": at_end - own,
                            "missing_between": missing - at_start - at_end, "bytes": 0}
        if own:
            per_topic[topic]["recorder_closing_lines"] = own
        if t_up_ns is not None:
            # The probe's messages from the recorder's start on, less the bag (as multisets; a
            # payload the topic repeats byte for byte counts once per copy).
            later = collections.Counter(d for d, t in zip(digests.get(topic, []), probe.times.get(topic, []))
                                        if t >= t_up_ns)
            lost_later = later - in_bag[topic]
            own_later = probe.own_lines(lost_later.elements()) if topic == "/rosout" else 0
            per_topic[topic]["missing_after_recorder_up"] = sum(lost_later.values()) - own_later
            # First message of the topic at the probe and in the bag, s after the recorder was up.
            first_probe = min(probe.times.get(topic, []), default=None)
            per_topic[topic]["first_at_probe_s"] = (round((first_probe - t_up_ns) / 1e9, 3)
                                                    if first_probe is not None else None)
            per_topic[topic]["first_in_bag_s"] = (round((first_in_bag[topic] - t_up_ns) / 1e9, 3)
                                                  if topic in first_in_bag else None)
        if topic == "/rosout" and missing - own:
            per_topic[topic]["missing_lines"] = probe.describe_lines((seen - in_bag[topic]).elements())
    sizes = collections.Counter()
    for m in read_messages(bag):
        sizes[m.topic] += len(m.data)
    for topic, n in sizes.items():
        per_topic.setdefault(topic, {})["bytes"] = n
    minutes = info.duration_s / 60.0
    cameras = [t for t in info.topics if t.startswith(f"{NAMESPACE}/cameras/") and t.endswith("/image_raw")]
    jpeg = _jpeg_bytes(bag, cameras)
    raw_camera = sum(sizes[t] for t in cameras)

    # The live consumers' own counts.
    from rclpy.serialization import deserialize_message

    from robot_stack.msg import StepRecord
    from robot_stack.nodes import topics

    bag_steps = [deserialize_message(m.data, StepRecord) for m in read_messages(bag, [topics.STEPS.resolve(NAMESPACE)])]
    progress_rows = max(0, len((run_dir / "progress.csv").read_text().splitlines()) - 1) \
        if (run_dir / "progress.csv").exists() else 0
    replay_dir = run_dir / "replayed"
    replay = subprocess.run([sys.executable, str(ROOT / "scripts" / "robot-stack"), "bag", "replay", str(bag),
                             "--run-dir", str(replay_dir), "--no-train", "-p", "tensorboard=false"],
                            capture_output=True, text=True)
    replay_logs = {}
    for log in ("replay_online.log", "replay_intervention.log"):
        live = (run_dir / "learner" / log).read_bytes()
        again = (replay_dir / log).read_bytes() if (replay_dir / log).exists() else b""
        replay_logs[log] = {"live_bytes": len(live), "replay_bytes": len(again),
                            "live_is_prefix_of_replay": again[:len(live)] == live,
                            "replay_extra_bytes": len(again) - len(live)}
    learner_log = re.findall(r"\[learner\].*steps (\d+) \|", out_text)
    recorder_line = next((ln.strip() for ln in lines if "[recorder]" in ln and "MB/min" in ln), "")

    result = {
        "command": "bash tools/in_env.sh python benchmarks/recording.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs",
        "load_average_before_and_at_stop": [round(x, 2) for x in (*load_before, *load_end)],
        "physics": args.physics, "session_s": args.seconds, "launch_rc": rc, "wall_s": round(wall_s, 1),
        "bag": {"duration_s": round(info.duration_s, 1), "messages": info.messages,
                "size_mb": round(info.size_bytes / 1e6, 2), "mb_per_min": round(info.size_bytes / 1e6 / minutes, 2),
                "message_mb_per_min": round(sum(sizes.values()) / 1e6 / minutes, 2)},
        "jpeg_images": {"camera_topics": cameras, "raw_mb_per_min": round(raw_camera / 1e6 / minutes, 2),
                        "jpeg_q90_mb_per_min": round(sum(jpeg.values()) / 1e6 / minutes, 2)},
        "recorder_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 4) if cpu1 is not None else None,
        "recorder_cpu_window_s": round(t1 - t0, 1) if t1 is not None else None,
        # Per thread over the same window, by thread name (threads of one name summed), share of a core.
        "recorder_thread_cpu_share": _by_name(threads0, threads1, (t1 - t0) if t1 is not None else None),
        "recorder_log": recorder_line,
        "recorder_warnings": [ln.strip() for ln in lines if "[recorder]" in ln and "[WARN" in ln],
        "missing_total": sum(t.get("missing", 0) for t in per_topic.values()),
        "recorder_up_unix_s": t_up_ns / 1e9 if t_up_ns is not None else None,
        "missing_after_recorder_up": sum(t.get("missing_after_recorder_up", 0) for t in per_topic.values()),
        "topics": per_topic,
        "consumers": {"bag_step_records": len(bag_steps),
                      "bag_steps_with_action": sum(1 for s in bag_steps if not s.is_last),
                      "learner_last_logged_env_steps": int(learner_log[-1]) if learner_log else None,
                      "bag_episode_summaries": per_topic.get(topics.EPISODES.resolve(NAMESPACE), {}).get("bag"),
                      "monitor_progress_rows": progress_rows},
        "replay": {"rc": replay.returncode, "summary": replay.stdout.strip().splitlines()[-1:] or replay.stderr[-500:],
                   "logs": replay_logs},
    }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    b = result["bag"]
    print(f"session {args.seconds:.0f} s ({args.physics}): bag {b['size_mb']} MB, {b['mb_per_min']} MB/min, "
          f"{b['messages']} messages; missing {result['missing_total']} of the probe's "
          f"{sum(t.get('probe', 0) for t in per_topic.values())} "
          f"({result['missing_after_recorder_up']} published after the recorder was up); recorder CPU "
          f"{100 * (result['recorder_cpu_share'] or 0):.2f}% of a core; camera images raw "
          f"{result['jpeg_images']['raw_mb_per_min']} MB/min, JPEG q90 {result['jpeg_images']['jpeg_q90_mb_per_min']} MB/min; "
          f"replay prefix-equal {all(v['live_is_prefix_of_replay'] for v in replay_logs.values())} "
          f"(extra bytes {[v['replay_extra_bytes'] for v in replay_logs.values()]})", flush=True)
    for topic, t in per_topic.items():
        print(f"  {topic:45s} probe {t.get('probe', 0):7d}  bag {t.get('bag', 0):7d}  missing {t.get('missing', 0):4d}"
              f" (start {t.get('missing_at_start', 0)}, end {t.get('missing_at_end', 0)}, between {t.get('missing_between', 0)};"
              f" after the recorder was up {t.get('missing_after_recorder_up', '?')})"
              f"  {t.get('bytes', 0) / 1e6 / minutes:7.3f} MB/min", flush=True)
    if tmp is not None:
        tmp.cleanup()
    return 0 if rc == 0 and result["missing_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
