"""RLIF vs HG-DAgger vs BC across simulated-operator skill levels (the paper's comparison).

Every run is :func:`robot_stack.training.train.train`: the actor and learner cores the robot
runs, on a simulated clock, with the simulated operator's SpaceMouse readings through the
device's intervention detector. Same networks (policies/<task>_<obs>.yaml), same operator
(robot_stack.sim.operator, value rule unless --strategy says otherwise), same env-step budget;
evaluation is the deterministic policy acting alone on fixed seeds (--eval-episodes at
intermediate points, --final-eval-episodes at the budget).

Resumable: each run lives in ``--runs-dir/<task>_<obs>_<method>_e<level>_s<seed>`` (a learner
run directory, checkpointed at every evaluation point); an invocation continues every run
where it stopped and skips finished ones, so a long comparison can be built up over several
invocations (Ctrl-C or a kill loses at most the work since the last evaluation point).
Results accumulate (merged by task/obs/method/level/seed/env_steps) in

* benchmarks/results/rlif_vs_dagger.csv: one row per evaluation point, columns ``COLUMNS``;
* benchmarks/results/operator_alone.csv: the operator's own success per task and level
  (driving alone through the same detector and actor), measured once;
* benchmarks/results/rlif_vs_dagger.png: success and intervention rate against env steps,
  mean and 95% confidence band over seeds, one column per operator level;
* benchmarks/results/rlif_vs_dagger.md: the final point per method and level in the form of
  the paper's Table 1 (mean and 95% confidence interval over seeds), with the operator's
  total intervention steps per method.

    python benchmarks/rlif_vs_dagger.py --tasks reach --obs state --seeds 0 1 2 3 4 --env-steps 4000
    python benchmarks/rlif_vs_dagger.py --report       # redraw plot and table from the CSVs
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import logging
import multiprocessing as mp
import os
import pathlib
import re
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
COLUMNS = ["task", "obs", "method", "expert_level", "seed", "env_steps", "success_rate", "eval_episodes",
           "intervention_rate", "operator_steps"]
KEY = ("task", "obs", "method", "expert_level", "seed")
_CAMERAS = r"(?:_(?:front|wrist))*"
OBS_RE = re.compile(rf"^(state|pixels)({_CAMERAS})$")
"""An observation label: state, pixels (the task's own camera) or pixels_<camera>_<camera>..."""
RUN_RE = re.compile(rf"^(reach|peg_insertion)_(pixels{_CAMERAS}|state)_(rlif|hg_dagger|bc)_e(\d+)_s(\d+)$")
METHOD_ORDER = ("bc", "hg_dagger", "rlif")
METHOD_NAMES = {"bc": "BC", "hg_dagger": "HG-DAgger", "rlif": "RLIF"}
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the 95% confidence interval (Student t over seeds; 0 for one seed)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()) if v.size else float("nan"), 0.0
    return float(v.mean()), float(T_975.get(v.size - 1, 1.96) * v.std(ddof=1) / np.sqrt(v.size))


def run_name(job: dict) -> str:
    return f"{job['task']}_{job['obs']}_{job['method']}_e{job['expert_level']}_s{job['seed']}"


def run_job(job: dict) -> tuple[dict, list[dict], float]:
    """Train (or continue) one run to its budget; returns its evaluation rows."""
    import torch

    from robot_stack.training.train import TrainConfig, train

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run_dir = pathlib.Path(job["runs_dir"]) / run_name(job)
    obs, cameras = OBS_RE.match(job["obs"]).groups()
    preset = (str(ROOT / "policies" / f"{job['task']}_{obs}_{job['preset_variant']}.yaml")
              if job.get("preset_variant") else "")
    cfg = TrainConfig(method=job["method"], task=job["task"], obs=obs, cameras=cameras.replace("_", " ").strip(),
                      expert_level=job["expert_level"],
                      seed=job["seed"], env_steps=job["env_steps"], eval_every=job["eval_every"],
                      eval_episodes=job["eval_episodes"], final_eval_episodes=job["final_eval_episodes"],
                      strategy=job["strategy"], image_size=job["image_size"], run_dir=str(run_dir),
                      policies_dir=str(run_dir / "policies"), progress=False, tensorboard=False,
                      resume=True, device=job.get("device", ""), preset=preset)
    rows = train(cfg)
    return job, rows, time.perf_counter() - t0


def expert_job(args: tuple) -> tuple[tuple, float]:
    from robot_stack.training.train import operator_success

    task, level, episodes = args
    return (task, level), operator_success(task, level, episodes)


# ----------------------------------------------------------------------------- files
def read_csv(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("expert_level", "seed", "env_steps", "eval_episodes", "operator_steps", "episodes"):
            if k in r:
                r[k] = int(r[k])
        for k in ("success_rate", "intervention_rate", "success"):
            if k in r:
                r[k] = float(r[k])
    return rows


def write_rows(path: pathlib.Path, rows: list[dict], columns: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in columns})
    os.replace(tmp, path)


def merge(rows: list[dict], job: dict, run_rows: list[dict]) -> list[dict]:
    """Replace the job's rows by its run's metrics (what its checkpointed evaluations measured)."""
    key = tuple(job[c] for c in KEY)
    rows = [r for r in rows if tuple(r[c] for c in KEY) != key]
    for r in run_rows:
        rows.append({**{c: job[c] for c in KEY}, "env_steps": int(r["env_steps"]),
                     "success_rate": float(r["success_rate"]), "eval_episodes": int(r["eval_episodes"]),
                     "intervention_rate": float(r["intervention_rate"]), "operator_steps": int(r["operator_steps"])})
    return sorted(rows, key=lambda r: (r["task"], r["obs"], -r["expert_level"], r["method"], r["seed"], r["env_steps"]))


def collect(rows: list[dict], jobs: list[dict]) -> list[dict]:
    """Merge the evaluation rows each job's run directory holds (its metrics.csv)."""
    from robot_stack.training.train import read_metrics_csv

    for job in jobs:
        run_rows = read_metrics_csv(pathlib.Path(job["runs_dir"]) / run_name(job) / "metrics.csv")
        if run_rows:
            rows = merge(rows, job, run_rows)
    return rows


# ----------------------------------------------------------------------------- report
def final_points(rows: list[dict]) -> dict:
    """Each finished run's evaluation at its (task, obs, level) group's budget: the most env steps
    any run of the group reached. Runs still short of it (stopped early) are left out of the
    table; their rows stay in the CSV (the plot leaves them out too)."""
    last: dict = {}
    for r in rows:
        k = tuple(r[c] for c in KEY)
        last[k] = max(last.get(k, 0), r["env_steps"])
    budget: dict = {}
    for k, steps in last.items():
        g = (k[0], k[1], k[3])
        budget[g] = max(budget.get(g, steps), steps)
    return {tuple(r[c] for c in KEY): r for r in rows if r["env_steps"] == budget[(r["task"], r["obs"], r["expert_level"])]}


def cell(values) -> str:
    if not values:
        return "–"
    m, h = mean_ci(values)
    return f"{m:.2f} ± {h:.2f}" if len(values) > 1 else f"{m:.2f}"


def steps_cell(values) -> str:
    m, h = mean_ci(values)
    return f"{m:.0f} ± {h:.0f}" if len(values) > 1 else f"{m:.0f}"


def write_table(path: pathlib.Path, rows: list[dict], expert: dict) -> None:
    last = final_points(rows)
    combos = sorted({(k[0], k[1]) for k in last})
    levels = sorted({k[3] for k in last}, reverse=True)
    lines = ["# RLIF vs HG-DAgger vs BC (the paper's Table 1, our tasks)", "",
             "Final success rate of the deterministic policy acting alone: mean ± 95% confidence interval "
             "(Student t) over the seeds that finished the budget of their task and level (runs stopped "
             "earlier are in the CSV only; bold: the best mean). Operator: robot_stack/sim/operator.py through the SpaceMouse "
             "intervention detector; its own success driving alone in brackets (operator_alone.csv). Written by benchmarks/rlif_vs_dagger.py from rlif_vs_dagger.csv.",
             "", "| task (obs) | operator level (alone) | env steps | BC | HG-DAgger | RLIF | seeds BC/HG/RLIF | eval episodes |",
             "|---|---|---|---|---|---|---|---|"]
    for t, o in combos:
        for level in levels:
            sels = {m: [r for k, r in last.items() if k[:4] == (t, o, m, level)] for m in METHOD_ORDER}
            if not any(sels.values()):
                continue
            best = max((mean_ci([r["success_rate"] for r in v])[0], m) for m, v in sels.items() if v)[1]
            cells = []
            for m in METHOD_ORDER:
                c = cell([r["success_rate"] for r in sels[m]])
                cells.append(f"**{c}**" if m == best and c != "–" else c)
            steps = max(r["env_steps"] for v in sels.values() for r in v)
            evals = sorted({r["eval_episodes"] for v in sels.values() for r in v})
            exp = f"{expert[(t, level)]:.2f}" if (t, level) in expert else "–"
            lines.append(f"| {t} ({o}) | {level}% ({exp}) | {steps} | {' | '.join(cells)} | "
                         f"{'/'.join(str(len(sels[m])) for m in METHOD_ORDER)} | {'/'.join(map(str, evals))} |")
    lines += ["", "## Operator burden at the same points", "",
              "Intervention rate = share of steps under operator control in the last training window "
              "(since the previous evaluation); operator steps = all steps the operator held during the run "
              "(BC: every step).", "",
              "| task (obs) | operator level | method | intervention rate, first → last window | operator steps |",
              "|---|---|---|---|---|"]
    for t, o in combos:
        for level in levels:
            for m in METHOD_ORDER:
                sel = [r for k, r in last.items() if k[:4] == (t, o, m, level)]
                if not sel:
                    continue
                keys = {tuple(r[c] for c in KEY) for r in sel}
                first = [min((x for x in rows if tuple(x[c] for c in KEY) == k), key=lambda x: x["env_steps"])
                         for k in keys]
                lines.append(f"| {t} ({o}) | {level}% | {METHOD_NAMES[m]} | "
                             f"{cell([r['intervention_rate'] for r in first])} → {cell([r['intervention_rate'] for r in sel])} | "
                             f"{steps_cell([r['operator_steps'] for r in sel])} |")
    path.write_text("\n".join(lines) + "\n")


def write_plot(path: pathlib.Path, rows: list[dict], expert: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = {k for k in final_points(rows)}
    rows = [r for r in rows if tuple(r[c] for c in KEY) in finished]  # the runs the table shows
    combos = sorted({(r["task"], r["obs"]) for r in rows})
    levels = sorted({r["expert_level"] for r in rows}, reverse=True)
    if not combos:
        return
    fig, axes = plt.subplots(2 * len(combos), len(levels), figsize=(4 * len(levels), 2.8 * 2 * len(combos)),
                             squeeze=False)
    colors = {"rlif": "tab:red", "hg_dagger": "tab:blue", "bc": "tab:gray"}
    for ci, (task, obs) in enumerate(combos):
        for li, level in enumerate(levels):
            for mi, metric in enumerate(("success_rate", "intervention_rate")):
                ax = axes[2 * ci + mi, li]
                if not any((r["task"], r["obs"], r["expert_level"]) == (task, obs, level) for r in rows):
                    ax.axis("off")
                    continue
                for m in METHOD_ORDER:
                    sel = [r for r in rows if (r["task"], r["obs"], r["method"], r["expert_level"]) == (task, obs, m, level)]
                    if not sel:
                        continue
                    steps = sorted({r["env_steps"] for r in sel})
                    stats = [mean_ci([r[metric] for r in sel if r["env_steps"] == s]) for s in steps]
                    mean = np.array([s[0] for s in stats])
                    half = np.array([s[1] for s in stats])
                    n = len({r["seed"] for r in sel})
                    ax.plot(steps, mean, marker="o", ms=2.5, color=colors[m], label=f"{METHOD_NAMES[m]} (n={n})")
                    ax.fill_between(steps, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1),
                                    color=colors[m], alpha=0.15, lw=0)
                if metric == "success_rate" and (task, level) in expert:
                    ax.axhline(expert[(task, level)], color="k", ls=":", lw=1)
                ax.set_ylim(-0.05, 1.05)
                ax.set_title(f"{task}/{obs}, operator {level}%", fontsize=9)
                ax.set_ylabel(metric.replace("_", " "), fontsize=8)
                ax.set_xlabel("env steps", fontsize=8)
                ax.grid(alpha=0.3)
                if mi == 0:
                    ax.legend(fontsize=7)
    fig.suptitle("RLIF vs HG-DAgger vs BC: mean and 95% CI over seeds (dotted: operator alone)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def read_expert(path: pathlib.Path) -> dict:
    return {(r["task"], int(r["expert_level"])): float(r["success"]) for r in read_csv(path)}


def report(out: pathlib.Path, expert_path: pathlib.Path) -> None:
    rows, expert = read_csv(out), read_expert(expert_path)
    write_plot(out.with_suffix(".png"), rows, expert)
    write_table(out.with_suffix(".md"), rows, expert)


# ----------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["reach", "peg_insertion"])
    p.add_argument("--obs", nargs="+", default=["state"],
                   help="state, pixels (the task's own camera: front for reach, wrist for the peg) or "
                        "pixels_<camera>_... (e.g. pixels_front_wrist: both cameras)")
    p.add_argument("--levels", nargs="+", type=int, default=[50, 90, 20])
    p.add_argument("--methods", nargs="+", default=["rlif", "hg_dagger", "bc"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--env-steps", type=int, default=4000)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per intermediate evaluation")
    p.add_argument("--final-eval-episodes", type=int, default=50, help="episodes of the evaluation at the budget")
    p.add_argument("--expert-episodes", type=int, default=100, help="episodes to measure the operator alone")
    p.add_argument("--strategy", default="value")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--preset-variant", default="",
                   help="use policies/<task>_<obs>_<variant>.yaml (e.g. gpu) instead of the default presets")
    p.add_argument("--device", default="", help="cpu, cuda or auto for every job (default: the presets', cpu)")
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "rlif_vs_dagger"))
    p.add_argument("--out", default=str(RESULTS / "rlif_vs_dagger.csv"))
    p.add_argument("--report", action="store_true", help="only redraw plot and table from the CSVs")
    p.add_argument("--collect", action="store_true",
                   help="only merge every run in --runs-dir (its checkpointed evaluations) into --out, then report")
    p.add_argument("--expert-from", nargs="*", default=[],
                   help="with --collect: operator_alone.csv files of other invocations to merge")
    args = p.parse_args()
    for o in args.obs:
        if not OBS_RE.match(o):
            p.error(f"--obs {o}: use state, pixels or pixels_<camera>_... with cameras front, wrist")
    out = pathlib.Path(args.out)
    expert_path = out.with_name("operator_alone.csv")
    if args.collect:
        rows = read_csv(out)
        for d in sorted(pathlib.Path(args.runs_dir).iterdir()):
            m = RUN_RE.match(d.name)
            if m and (d / "metrics.csv").exists():
                job = dict(task=m[1], obs=m[2], method=m[3], expert_level=int(m[4]), seed=int(m[5]), runs_dir=args.runs_dir)
                rows = collect(rows, [job])
        write_rows(out, rows, COLUMNS)
        expert = read_expert(expert_path)
        for extra in args.expert_from:
            expert.update(read_expert(pathlib.Path(extra)))
        write_rows(expert_path, [{"task": t, "expert_level": lv, "episodes": args.expert_episodes, "success": v}
                                 for (t, lv), v in sorted(expert.items())], ["task", "expert_level", "episodes", "success"])
    if args.report or args.collect:
        report(out, expert_path)
        return
    logging.basicConfig(level=logging.WARNING)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = read_csv(out)
    expert = read_expert(expert_path)
    jobs = [dict(task=t, obs=o, method=m, expert_level=lv, seed=s, env_steps=args.env_steps,
                 eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                 final_eval_episodes=args.final_eval_episodes, strategy=args.strategy, image_size=args.image_size,
                 device=args.device, preset_variant=args.preset_variant, runs_dir=args.runs_dir)
            for o in args.obs for s in args.seeds for t in args.tasks for lv in args.levels for m in args.methods]
    rows = collect(rows, jobs)  # runs stopped earlier count up to their last evaluation point
    write_rows(out, rows, COLUMNS)
    done = {tuple(r[c] for c in KEY) for r in rows if r["env_steps"] >= args.env_steps}
    todo = [j for j in jobs if tuple(j[c] for c in KEY) not in done]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already at {args.env_steps} steps; {len(todo)} to run", flush=True)
    ctx = mp.get_context("spawn")
    t_start = time.perf_counter()
    with cf.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        need = [(t, lv) for t in args.tasks for lv in args.levels if (t, lv) not in expert]
        for key, success in pool.map(expert_job, [(t, lv, args.expert_episodes) for t, lv in need]):
            expert[key] = success
        if need:
            write_rows(expert_path, [{"task": t, "expert_level": lv, "episodes": args.expert_episodes, "success": v}
                                     for (t, lv), v in sorted(expert.items())],
                       ["task", "expert_level", "episodes", "success"])
            print("operator alone:", {f"{k[0]}/{k[1]}": v for k, v in expert.items()}, flush=True)
        futures = {pool.submit(run_job, j) for j in todo}
        while futures:
            finished, futures = cf.wait(futures, timeout=60, return_when=cf.FIRST_COMPLETED)
            rows = collect(rows, todo)  # every evaluation point checkpointed so far, finished runs or not
            write_rows(out, rows, COLUMNS)
            for fut in finished:
                job, run_rows, secs = fut.result()
                last = run_rows[-1]
                print(f"{run_name(job)}: success {last['success_rate']:.2f} interv {last['intervention_rate']:.2f} "
                      f"operator steps {last['operator_steps']} ({secs:.0f} s)", flush=True)
            if finished:
                report(out, expert_path)
    report(out, expert_path)
    print(f"done in {time.perf_counter() - t_start:.0f} s; wrote {out}, .png, .md")


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
