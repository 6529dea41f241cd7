"""Draw what a Foxglove client receives from the live view, for a machine without a browser.

Connects to the live view node (``ws://HOST:PORT``, Foxglove's WebSocket protocol, subprotocol
``foxglove.sdk.v1``) as a client, subscribes to the channels the layout's Robot and Learning tabs
use (in the graph's ``--namespace``), decodes each message with the schema the server advertised
(ros2msg through mcap-ros2-support, JSON), and after ``--seconds`` draws them with matplotlib: the front camera's
latest frame, the EE position, who is in control, policy vs executed action, operator command
vs EE velocity, episode rates and learner stats. It is a stand-in for the Foxglove app, which
needs a browser and network access; the data are the same the app would get.

Run:  bash tools/in_env.sh python tools/live_view_snapshot.py --url ws://127.0.0.1:8765 --seconds 30 --out live.png
"""
from __future__ import annotations

import argparse
import json
import struct
import time

import numpy as np

from robot_stack.recording.live import LEARNER_METRICS, channel_name

CHANNELS = ("cameras/front/image_raw/compressed", "ee_pose", "operator", "steps", "franka/ee_twist", "episodes",
            "learner/stats", LEARNER_METRICS)
"""The channels drawn, relative to the namespace."""


def collect(url: str, seconds: float, namespace: str = "/robot_stack") -> dict[str, list[tuple[float, object]]]:
    """{channel (relative name): [(receive time s, decoded message)]} over ``seconds``."""
    from mcap.records import Schema
    from mcap_ros2.decoder import DecoderFactory
    from websockets.sync.client import connect

    factory = DecoderFactory()
    channels: dict[str, dict] = {}
    subs: dict[int, tuple[str, object]] = {}
    wanted = {channel_name(c, namespace): c for c in CHANNELS}
    got: dict[str, list] = {c: [] for c in CHANNELS}
    with connect(url, subprotocols=["foxglove.sdk.v1"], open_timeout=10, max_size=None) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                frame = ws.recv(timeout=max(0.05, end - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg["op"] != "advertise":
                    continue
                new = []
                for c in msg["channels"]:
                    if c["topic"] in wanted and c["topic"] not in channels:
                        channels[c["topic"]] = c
                        sub_id = len(subs)
                        if c["encoding"] == "cdr":
                            decode = factory.decoder_for("cdr", Schema(id=c["id"], name=c["schemaName"],
                                                                       encoding=c["schemaEncoding"],
                                                                       data=c["schema"].encode()))
                        else:
                            decode = json.loads
                        subs[sub_id] = (wanted[c["topic"]], decode)
                        new.append({"id": sub_id, "channelId": c["id"]})
                if new:
                    ws.send(json.dumps({"op": "subscribe", "subscriptions": new}))
            elif frame[0] == 1:
                sub_id, t_ns = struct.unpack_from("<IQ", frame, 1)
                topic, decode = subs[sub_id]
                got[topic].append((t_ns * 1e-9, decode(frame[13:])))
    return got


def draw(got: dict[str, list], out: str, url: str) -> None:
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min((v[0][0] for v in got.values() if v), default=0.0)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    fig.suptitle(f"robot_stack live view ({url}): the data a Foxglove client receives, drawn with matplotlib",
                 fontsize=11)

    ax = axes[0, 0]
    images = got["cameras/front/image_raw/compressed"]
    if images:
        bgr = cv2.imdecode(np.frombuffer(bytes(images[-1][1].data), np.uint8), cv2.IMREAD_COLOR)
        ax.imshow(bgr[:, :, ::-1], interpolation="nearest")
        ax.set_title(f"front camera (JPEG, {len(images)} frames received)", fontsize=9)
    ax.axis("off")

    ax = axes[0, 1]
    poses = got["ee_pose"]
    if poses:
        t = [p[0] - t0 for p in poses]
        for k, name in enumerate("xyz"):
            ax.plot(t, [getattr(p[1].pose.position, name) for p in poses], label=f"EE {name} (m)")
    ax.set_title("EE position (ee_pose, base frame)", fontsize=9)
    ax.set_xlabel("s")
    ax.legend(fontsize=7)

    ax = axes[0, 2]
    ops = got["operator"]
    steps = [s for s in got["steps"] if not s[1].is_last]
    if ops:
        ax.step([o[0] - t0 for o in ops], [1.0 if o[1].intervening else 0.0 for o in ops], where="post",
                label="operator intervening (SpaceMouse)")
    if steps:
        ax.plot([s[0] - t0 for s in steps], [0.5 * s[1].intervention + 0.02 for s in steps], ".", ms=3,
                label="step labelled intervention (x 0.5)")
    ax.set_yticks([0, 0.5, 1])
    ax.set_yticklabels(["policy", "", "operator"])
    ax.set_title("who is in control", fontsize=9)
    ax.set_xlabel("s")
    ax.legend(fontsize=7, loc="center right")

    ax = axes[1, 0]
    if steps:
        t = np.array([s[0] - t0 for s in steps])
        held = np.array([s[1].intervention for s in steps])
        for k, c in ((0, "C0"), (1, "C1")):
            ax.step(t, [float(s[1].policy_action[k]) for s in steps], "--", where="post", color=c, lw=1,
                    label=f"policy a{k}")
            ax.step(t, [float(s[1].action[k]) for s in steps], "-", where="post", color=c, lw=1.2,
                    label=f"executed a{k}")
        ax.fill_between(t, -1.05, 1.05, where=held, step="post", color="0.85", zorder=0, label="operator in control")
    ax.set_ylim(-1.05, 1.05)
    ax.set_title("policy (dashed) vs executed action, normalised (steps)", fontsize=9)
    ax.set_xlabel("s")
    ax.legend(fontsize=6, ncol=3, loc="lower left")

    ax = axes[1, 1]
    twists = got["franka/ee_twist"]
    if twists:
        ax.plot([w[0] - t0 for w in twists], [w[1].twist.linear.x for w in twists], lw=1, label="EE vx (m/s)")
    if ops:
        ax.plot([o[0] - t0 for o in ops], [o[1].twist.linear.x if o[1].intervening else np.nan for o in ops], lw=1.5,
                label="operator vx while intervening")
    ax.set_title("EE twist vs operator command", fontsize=9)
    ax.set_xlabel("s")
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    episodes = got["episodes"]
    if episodes:
        ids = [e[1].episode_id for e in episodes]
        ax.plot(ids, [e[1].success_rate for e in episodes], "o-", ms=3, label="success rate (window)")
        ax.plot(ids, [e[1].intervention_rate_window for e in episodes], "o-", ms=3, label="intervention rate (window)")
        ax.set_xlabel("episode")
        ax.set_ylim(-0.05, 1.05)
    stats = got["learner/stats"]
    if stats:
        s = stats[-1][1]
        metrics = got[LEARNER_METRICS][-1][1] if got[LEARNER_METRICS] else {}
        critic = metrics.get("critic_loss")
        ax.text(0.02, 0.98, f"learner: {s.updates} updates, {s.updates_per_s:.1f}/s, policy v{s.policy_version}\n"
                f"critic loss {'-' if critic is None else f'{critic:.4f}'}", transform=ax.transAxes, va="top", fontsize=8)
    ax.set_title("episodes (episodes) and learner (learner/stats, live/learner_metrics)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8765")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", default="live_view.png")
    parser.add_argument("--namespace", default="/robot_stack", help="the graph's namespace")
    args = parser.parse_args()
    got = collect(args.url, args.seconds, args.namespace)
    print({t: len(v) for t, v in got.items()})
    draw(got, args.out, args.url)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
