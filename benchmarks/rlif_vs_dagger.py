"""RLIF vs HG-DAgger vs BC across simulated-operator skill levels (the paper's comparison).

Every run uses the same networks (policies/<task>_<obs>.yaml), the same simulated operator
(robot_stack.sim.operator, value-based intervention rule unless --strategy says otherwise:
it acts with a systematic goal bias plus per-episode noise, tremor and hesitation, and judges
the policy with the task's true reference value) and the same env-step budget; evaluation is the deterministic policy acting alone on fixed
seeds. Writes (merging with rows already there, keyed by task/obs/method/level/seed):

* benchmarks/results/rlif_vs_dagger.csv: one row per evaluation point, columns
  task, obs, method, expert_level, expert_success, seed, env_steps, success_rate, intervention_rate
* benchmarks/results/rlif_vs_dagger.png: success and intervention rate vs env steps,
  one panel per skill level (a pair of rows per task/obs)
* benchmarks/results/rlif_vs_dagger.md: final success per method and level (like Table 1)

Runs behind the committed results (each under ``nice -n 19``, one torch thread per job; separate
``--out`` files per invocation, merged afterwards with ``--merge``):

    # reach, state: BC and HG-DAgger rows from the 4000-step run, RLIF re-run at UTD 4
    python benchmarks/rlif_vs_dagger.py --obs state --tasks reach --env-steps 4000 --seeds 0 1 --workers 1 \
        --expert-episodes 100
    python benchmarks/rlif_vs_dagger.py --obs state --tasks reach --methods rlif --env-steps 4000 \
        --seeds 0 1 --expert-episodes 100 --workers 2 --out /tmp/reach_rlif.csv
    python benchmarks/rlif_vs_dagger.py --obs state --tasks reach --env-steps 4000 --seeds 2 3 --workers 2 \
        --expert-episodes 100 --out /tmp/reach_s23.csv
    # peg insertion, state (two invocations side by side)
    python benchmarks/rlif_vs_dagger.py --obs state --tasks peg_insertion --env-steps 10000 --eval-every 1000 \
        --seeds 0 --workers 1 --out /tmp/peg_s0.csv          # and --seeds 1 --out /tmp/peg_s1.csv
    # pixels on this 2-core CPU, with the pixel presets at UTD 4 / batch 64 (run as
    # --preset-variant utd4 from files identical to today's policies/*_pixels.yaml; before, the
    # pixel presets had UTD 1, with which RLIF did not learn from images: 0.00 at every level)
    python benchmarks/rlif_vs_dagger.py --obs pixels --tasks peg_insertion --env-steps 5000 --eval-every 1000 \
        --seeds 0 --workers 2 --out /tmp/peg_pixels.csv            # and --seeds 1 --out /tmp/peg_pixels_s1.csv
    python benchmarks/rlif_vs_dagger.py --obs pixels --tasks reach --env-steps 5000 --eval-every 1000 \
        --seeds 0 --expert-episodes 100 --workers 2 --out /tmp/reach_pixels.csv
    python benchmarks/rlif_vs_dagger.py --merge /tmp/peg_s0.csv /tmp/peg_s1.csv /tmp/reach_rlif.csv \
        /tmp/reach_s23.csv /tmp/peg_pixels.csv /tmp/peg_pixels_s1.csv /tmp/reach_pixels.csv
    # reach, pixels, on a GPU machine (one H200, 16 cores; stopped after 370 s, RLIF's rows
    # taken from its runs' metrics.csv): benchmarks/results/rlif_vs_dagger_pixels_gpu.csv
    python benchmarks/rlif_vs_dagger.py --obs pixels --tasks reach --env-steps 20000 --eval-every 1000 \
        --seeds 0 --expert-episodes 100 --workers 12 --device cuda --preset-variant gpu \
        --out benchmarks/results/rlif_vs_dagger_pixels_gpu.csv
    # two more seeds at the 50% level (stopped after 190 s), merged into the same file
    python benchmarks/rlif_vs_dagger.py ... --levels 50 --methods rlif hg_dagger --seeds 1 2

``--expert-episodes`` sets how precisely the operator's own success is measured (50 episodes:
reach 0.96/0.60/0.26; 100: 0.96/0.55/0.20); use one value per task so all rows agree.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import logging
import multiprocessing as mp
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ["task", "obs", "method", "expert_level", "expert_success", "seed", "env_steps", "success_rate",
           "intervention_rate"]
KEY = ("task", "obs", "method", "expert_level", "seed")
METHOD_ORDER = ("bc", "hg_dagger", "rlif")


def run_job(job: dict) -> tuple[dict, list[dict], float]:
    import torch

    from robot_stack.training.train import TrainConfig, train

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    tmp = RESULTS / "tmp" / f"{job['method']}_{job['task']}_{job['obs']}_e{job['expert_level']}_s{job['seed']}"
    cfg = TrainConfig(method=job["method"], task=job["task"], obs=job["obs"], expert_level=job["expert_level"],
                      seed=job["seed"], env_steps=job["env_steps"], eval_every=job["eval_every"],
                      eval_episodes=job["eval_episodes"], strategy=job["strategy"], image_size=job["image_size"],
                      run_dir=str(tmp), policies_dir=str(tmp / "policies"), progress=False, tensorboard=False,
                      persist_buffers=False, checkpoint_every=10**9, device=job.get("device", ""),
                      preset=str(ROOT / "policies" / f"{job['task']}_{job['obs']}_{job['preset_variant']}.yaml")
                      if job.get("preset_variant") else "")
    rows = train(cfg)
    return job, rows, time.perf_counter() - t0


def expert_job(args: tuple) -> tuple[tuple, float]:
    from robot_stack.training.train import operator_success

    task, level, episodes = args
    return (task, level), operator_success(task, "state", level, episodes)


def read_csv(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("expert_level", "seed", "env_steps"):
            r[k] = int(r[k])
        for k in ("expert_success", "success_rate", "intervention_rate"):
            r[k] = float(r[k])
    return rows


def write_csv(path: pathlib.Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["task"], r["obs"], -r["expert_level"], r["method"], r["seed"], r["env_steps"]))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})


def final_rows(rows: list[dict]) -> dict:
    """Each run's evaluation point at the equal budget of its (task, obs, level) group, keyed by
    KEY: the group's budget is the fewest env steps any of its runs reached (all of them, when
    every run finished; less when one was stopped early), and a run's point is its last one
    within that budget."""
    last: dict = {}
    for r in rows:
        k = tuple(r[c] for c in KEY)
        if k not in last or r["env_steps"] > last[k]["env_steps"]:
            last[k] = r
    budget: dict = {}
    for k, r in last.items():
        g = (k[0], k[1], k[3])
        budget[g] = min(budget.get(g, r["env_steps"]), r["env_steps"])
    out: dict = {}
    for r in rows:
        k = tuple(r[c] for c in KEY)
        if r["env_steps"] <= budget[(k[0], k[1], k[3])] and (k not in out or r["env_steps"] > out[k]["env_steps"]):
            out[k] = r
    return out


def write_table(path: pathlib.Path, rows: list[dict]) -> None:
    last = final_rows(rows)
    groups = sorted({(k[0], k[1], k[3]) for k in last}, key=lambda g: (g[0], g[1], -g[2]))
    lines = ["# RLIF vs HG-DAgger vs BC: final success rate (deterministic policy alone)", "",
             "Mean ± std over seeds at an equal env-step budget per row (the fewest steps any run of the "
             "row reached); `RLIF interv.` is RLIF's intervention rate "
             "(fraction of steps under operator control) in its first → last training window. Operator: "
             "robot_stack/sim/operator.py (systematic goal bias, judges with the true reference value). "
             "Budget and seeds: see the env_steps column of rlif_vs_dagger.csv.", "",
             "| task | obs | expert (success alone) | env steps | BC | HG-DAgger | RLIF | RLIF interv. | seeds BC/HG/RLIF |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task, obs, level in groups:
        cells, counts, steps, exp = [], [], 0, 0.0
        for m in METHOD_ORDER:
            vals = [r for k, r in last.items() if k[:4] == (task, obs, m, level)]
            counts.append(str(len(vals)))
            if vals:
                steps = max(steps, max(r["env_steps"] for r in vals))
                exp = vals[0]["expert_success"]
            s = [r["success_rate"] for r in vals]
            cells.append(f"{np.mean(s):.2f} ± {np.std(s):.2f}" if s else "–")
        iv = [r["intervention_rate"] for k, r in last.items() if k[:4] == (task, obs, "rlif", level)]
        rl = [r for r in rows if (r["task"], r["obs"], r["method"], r["expert_level"]) == (task, obs, "rlif", level)]
        iv0 = [r["intervention_rate"] for r in rl if r["env_steps"] == min(x["env_steps"] for x in rl)] if rl else []
        lines.append(f"| {task} | {obs} | {level}% ({exp:.2f}) | {steps} | {' | '.join(cells)} | "
                     f"{f'{np.mean(iv0):.2f} → {np.mean(iv):.2f}' if iv else '–'} | {'/'.join(counts)} |")
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: pathlib.Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = sorted({(r["task"], r["obs"]) for r in rows})
    levels = sorted({r["expert_level"] for r in rows}, reverse=True)
    if not combos:
        return
    fig, axes = plt.subplots(2 * len(combos), len(levels), figsize=(4 * len(levels), 3 * 2 * len(combos)),
                             squeeze=False)
    colors = {"rlif": "tab:red", "hg_dagger": "tab:blue", "bc": "tab:gray"}
    for ci, (task, obs) in enumerate(combos):
        for li, level in enumerate(levels):
            for mi, metric in enumerate(("success_rate", "intervention_rate")):
                ax = axes[2 * ci + mi, li]
                for m in METHOD_ORDER:
                    sel = [r for r in rows if (r["task"], r["obs"], r["method"], r["expert_level"]) == (task, obs, m, level)]
                    if not sel:
                        continue
                    steps = sorted({r["env_steps"] for r in sel})
                    mean = [np.mean([r[metric] for r in sel if r["env_steps"] == s]) for s in steps]
                    ax.plot(steps, mean, marker="o", ms=3, color=colors[m], label=m)
                    if metric == "success_rate":
                        ax.axhline(sel[0]["expert_success"], color="k", ls=":", lw=1)
                ax.set_ylim(-0.05, 1.05)
                ax.set_title(f"{task}/{obs}, expert {level}%", fontsize=9)
                ax.set_ylabel(metric.replace("_", " "), fontsize=8)
                ax.set_xlabel("env steps", fontsize=8)
                if ci == 0 and li == 0 and mi == 0:
                    ax.legend(fontsize=7)
    fig.suptitle("RLIF vs HG-DAgger vs BC (dotted: operator alone)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["reach", "peg_insertion"])
    p.add_argument("--obs", nargs="+", default=["state"])
    p.add_argument("--levels", nargs="+", type=int, default=[90, 50, 20])
    p.add_argument("--methods", nargs="+", default=["rlif", "hg_dagger", "bc"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--env-steps", type=int, default=3000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--expert-episodes", type=int, default=50, help="episodes to measure the operator alone")
    p.add_argument("--strategy", default="value")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--preset-variant", default="",
                   help="use policies/<task>_<obs>_<variant>.yaml (e.g. gpu: UTD 4, batch 128) instead of the default presets")
    p.add_argument("--device", default="", help="cpu, cuda or auto for every job (default: the presets', cpu)")
    p.add_argument("--out", default=str(RESULTS / "rlif_vs_dagger.csv"))
    p.add_argument("--merge", nargs="*", default=None,
                   help="only merge these CSVs (written by earlier runs) into --out and redraw plot and table "
                        "(no files: just redraw from --out)")
    args = p.parse_args()
    if args.merge is not None:
        out = pathlib.Path(args.out)
        rows = read_csv(out)
        for extra in args.merge:
            new = read_csv(pathlib.Path(extra))
            keys = {tuple(r[c] for c in KEY) for r in new}
            rows = [r for r in rows if tuple(r[c] for c in KEY) not in keys] + new
        write_csv(out, rows)
        write_plot(out.with_suffix(".png"), rows)
        write_table(out.with_suffix(".md"), rows)
        print(f"merged {len(args.merge)} file(s) into {out}")
        return
    logging.basicConfig(level=logging.WARNING)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = read_csv(out)
    ctx = mp.get_context("spawn")
    t_start = time.perf_counter()
    with cf.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        expert = dict(pool.map(expert_job, [(t, l, args.expert_episodes) for t in args.tasks for l in args.levels]))
        print("operator alone:", {f"{k[0]}/{k[1]}": v for k, v in expert.items()}, flush=True)
        jobs = [dict(task=t, obs=o, method=m, expert_level=l, seed=s, env_steps=args.env_steps,
                     eval_every=args.eval_every, eval_episodes=args.eval_episodes, strategy=args.strategy,
                     image_size=args.image_size, device=args.device, preset_variant=args.preset_variant)
                for o in args.obs for s in args.seeds for t in args.tasks for l in args.levels for m in args.methods]
        futures = [pool.submit(run_job, j) for j in jobs]
        for fut in cf.as_completed(futures):
            job, run_rows, secs = fut.result()
            key = tuple(job[c] for c in KEY)
            rows = [r for r in rows if tuple(r[c] for c in KEY) != key]
            for r in run_rows:
                rows.append({**{c: job[c] for c in KEY}, "expert_success": expert[(job["task"], job["expert_level"])],
                             "env_steps": r["env_steps"], "success_rate": r["success_rate"],
                             "intervention_rate": r["intervention_rate"]})
            write_csv(out, rows)
            last = run_rows[-1]
            print(f"{'/'.join(str(x) for x in key)}: success {last['success_rate']:.2f} "
                  f"interv {last['intervention_rate']:.2f} ({secs:.0f} s)", flush=True)
    write_plot(out.with_suffix(".png"), rows)
    write_table(out.with_suffix(".md"), rows)
    print(f"done in {time.perf_counter() - t_start:.0f} s; wrote {out}, .png, .md")


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
