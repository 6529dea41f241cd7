"""SAC in the RLPD style (Ball et al. 2023), the learner of RLIF.

* An ensemble of ``num_critics`` Q-networks with LayerNorm; the TD target takes the minimum
  over a random subset of ``num_min_critics`` target critics.
* ``utd_ratio`` critic updates per call of :meth:`SACAgent.update` (the batch holds
  ``utd_ratio`` minibatches), then one actor and temperature update on the last minibatch.
* Automatic temperature towards ``target_entropy`` (default -action_dim / 2).
* Image encoders (one per camera) belong to the critic and learn from the TD loss; the actor
  reads their features without gradient (as in DrQ/RLPD). Random-shift augmentation on both
  observations and next observations, once per update on the uint8 images.
* Each observation is encoded once per critic step: ``obs`` by the online encoder (with
  gradient; the actor step reuses these features, detached, as DrQ-v2 does) and ``next_obs`` by
  the target encoder, whose features give both the next action and the target Q-values (RLPD
  encodes ``next_obs`` with both encoders and re-encodes ``obs`` for the actor: 4 encoder passes
  instead of 2). Only the ``num_min_critics`` target critics of the TD target are evaluated.

Narrow API: ``act(obs, deterministic)``, ``update(batch) -> metrics``, ``state_dict()`` /
``load_state_dict()`` (networks, optimizers, step, config and RNG states: resuming from a
checkpoint on the same machine gives bit-identical next updates), ``save(path)`` / ``load(path)``.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import pathlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from robot_stack.rl.networks import (ActorHead, EnsembleCritic, NetworkConfig, ObsEncoder, PolicyNet, augment,
                                     gpu_has_bf16, obs_to_torch, resolve_device)
from robot_stack.types import config as cfgmod
from robot_stack.types.spec import PolicySpec

log = logging.getLogger(__name__)

ENCODER_DTYPES = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class SACConfig:
    """RLPD-style SAC hyperparameters (defaults follow RLPD where it has one)."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    """Encoder and MLP sizes."""
    num_critics: int = 10
    """Critics in the ensemble (RLPD: 10)."""
    num_min_critics: int = 2
    """Random subset of target critics whose minimum forms the TD target (RLPD: 2)."""
    discount: float = 0.99
    """Discount factor per control step."""
    tau: float = 0.005
    """Polyak rate of the target critic and encoder."""
    actor_lr: float = 3e-4
    """Actor learning rate (Adam)."""
    critic_lr: float = 3e-4
    """Critic and encoder learning rate (Adam)."""
    temp_lr: float = 3e-4
    """Temperature learning rate (Adam)."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy: float | None = None
    """Entropy target; None means -action_dim / 2 (RLPD)."""
    backup_entropy: bool = True
    """Subtract alpha * log pi(a'|s') in the TD target."""
    utd_ratio: int = 1
    """Critic updates per update() call (update-to-data ratio when called once per env step)."""
    batch_size: int = 256
    """Minibatch size of one critic update (a batch given to update() holds utd_ratio of them)."""
    offline_fraction: float = 0.5
    """Share of each minibatch drawn from the intervention/demonstration buffer (RLPD: 0.5)."""
    seed: int = 0
    """Seed of the agent's own RNGs (initialization, augmentation, action noise)."""
    device: str = "cpu"
    """Where the networks train: 'cpu', 'cuda', 'cuda:N', or 'auto' (CUDA if torch sees a GPU).
    Replay data stays in host memory; each batch crosses to the GPU with its images as uint8.
    Exported policies are always CPU tensors (the actor runs them on the robot PC)."""
    encoder_dtype: str = "auto"
    """Number format of the image encoders' convolutions in training: 'float32', 'bfloat16'
    (autocast: weights, gradients, optimizer state, projections and critics stay float32), or
    'auto' (bfloat16 on a CUDA GPU with bf16 units, float32 on the CPU). On a CPU with
    AVX512-BF16, 'bfloat16' needs about 40% less CPU time per update, but its multi-threaded
    weight-gradient kernels stall when other processes share the cores. Acting and exported
    policies always run float32."""

    def validate(self) -> None:
        resolve_device(self.device)
        if self.encoder_dtype not in ENCODER_DTYPES:
            raise ValueError(f"encoder_dtype must be one of {', '.join(ENCODER_DTYPES)}, got {self.encoder_dtype!r}")
        if not 1 <= self.num_min_critics <= self.num_critics:
            raise ValueError(f"num_min_critics must be in [1, num_critics={self.num_critics}], got {self.num_min_critics}")
        if self.utd_ratio < 1:
            raise ValueError(f"utd_ratio must be >= 1, got {self.utd_ratio}")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction must be in [0, 1], got {self.offline_fraction}")
        self.network.validate()


def batch_to_torch(batch: dict, spec: PolicySpec, device: torch.device | None = None) -> dict:
    return {
        "obs": obs_to_torch(batch["obs"], spec, batched=True, device=device),
        "next_obs": obs_to_torch(batch["next_obs"], spec, batched=True, device=device),
        "action": torch.as_tensor(batch["action"], dtype=torch.float32, device=device),
        "reward": torch.as_tensor(batch["reward"], dtype=torch.float32, device=device),
        "terminal": torch.as_tensor(batch["terminal"], dtype=torch.float32, device=device),
    }


def make_generators(device: torch.device, seed: int) -> tuple[torch.Generator, torch.Generator]:
    """(update, act) generators on ``device``, seeded seed+1 and seed+2."""
    return (torch.Generator(device=device).manual_seed(seed + 1),
            torch.Generator(device=device).manual_seed(seed + 2))


def restore_generators(gens: tuple[torch.Generator, ...], rng_state: dict, device: torch.device) -> None:
    """Restore the generators saved by state_dict(); a checkpoint from another device type keeps
    the fresh seeds (bit-identical resume holds on the same machine only)."""
    saved = rng_state.get("device", "cpu")
    if saved != device.type:
        log.warning("checkpoint RNG state is from device '%s', this agent runs on '%s': random streams "
                    "restart from the seed (the resume is not bit-identical)", saved, device.type)
        return
    for gen, key in zip(gens, ("update", "act")):
        gen.set_state(rng_state[key])


def _slice(batch: dict, sl: slice) -> dict:
    return {k: _slice(v, sl) if isinstance(v, dict) else v[sl] for k, v in batch.items()}


class SACAgent:
    def __init__(self, spec: PolicySpec, cfg: SACConfig | None = None):
        self.spec = spec
        self.cfg = cfg = cfg or SACConfig()
        cfg.validate()
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)  # parameter init uses the global generator (on the CPU, then moved)
        self.gen, self.act_gen = make_generators(self.device, cfg.seed)
        self.encoder = ObsEncoder(spec, cfg.network).to(self.device)
        feat_dim = self.encoder.out_dim
        self.critic = EnsembleCritic(cfg.num_critics, feat_dim + spec.action.dim, cfg.network.hidden_dims).to(self.device)
        self.actor = ActorHead(feat_dim, spec.action.dim, cfg.network.hidden_dims).to(self.device)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(float(np.log(cfg.init_temperature)), device=self.device, requires_grad=True)
        self.target_entropy = (cfg.target_entropy if cfg.target_entropy is not None
                               else -spec.action.dim / 2.0)
        critic_params = [p for p in [*self.encoder.parameters(), *self.critic.parameters()] if p.requires_grad]
        self._actor_params = list(self.actor.parameters())
        self.critic_opt = torch.optim.Adam(critic_params, lr=cfg.critic_lr, fused=True)
        self.actor_opt = torch.optim.Adam(self._actor_params, lr=cfg.actor_lr, fused=True)
        self.temp_opt = torch.optim.Adam([self.log_alpha], lr=cfg.temp_lr, fused=True)
        self._online_params = [*self.encoder.parameters(), *self.critic.parameters()]
        self._target_params = [*self.target_encoder.parameters(), *self.target_critic.parameters()]
        self.policy = PolicyNet(self.encoder, self.actor)
        bf16 = cfg.encoder_dtype == "bfloat16" or (cfg.encoder_dtype == "auto" and gpu_has_bf16(self.device))
        self.encoder_dtype = torch.bfloat16 if bf16 and spec.cameras else torch.float32
        """What the image encoders compute in during update() (encoder_dtype resolved)."""
        self.step = 0
        """Gradient steps of the critic so far."""

    # ----------------------------------------------------------------- acting
    def act(self, obs: dict, deterministic: bool = False) -> np.ndarray:
        """Action in [-1, 1] for one (unbatched) observation dict."""
        return self.policy.act_batch(obs_to_torch(obs, self.spec, batched=False), deterministic, self.act_gen)[0]

    # ----------------------------------------------------------------- learning
    def update(self, batch: dict) -> dict[str, float]:
        """``utd_ratio`` critic steps on equal slices of ``batch``, then one actor/temperature step.

        ``batch`` is a numpy dict as returned by the replay buffer (images uint8).
        """
        tb = batch_to_torch(batch, self.spec, self.device)
        n = tb["reward"].shape[0]
        utd = self.cfg.utd_ratio
        if n % utd:
            raise ValueError(f"batch of {n} does not split into utd_ratio={utd} equal minibatches")
        pad = self.cfg.network.augment_pad_px
        tb["obs"] = augment(tb["obs"], self.spec, pad, self.gen)
        tb["next_obs"] = augment(tb["next_obs"], self.spec, pad, self.gen)
        m = n // utd
        for i in range(utd):
            feat, critic_metrics = self._update_critic(_slice(tb, slice(i * m, (i + 1) * m)))
        metrics = {**critic_metrics, **self._update_actor(feat)}
        # One device-to-host copy for all metrics (each .item() would wait for a GPU separately).
        return dict(zip(metrics, torch.stack(list(metrics.values())).tolist()))

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def _update_critic(self, b: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One TD step of the critics and the encoder; returns the (detached) features of
        ``b["obs"]`` for the actor step and the metrics as tensors."""
        with torch.no_grad():
            # The next observation is encoded once, by the target encoder: its features give
            # both the next action and the target Q-values.
            with self._encoder_autocast():
                next_feat = self.target_encoder(b["next_obs"])
            next_a, next_logp = self.actor.sample(next_feat, self.gen)
            subset = torch.randperm(self.cfg.num_critics, generator=self.gen, device=self.device)[: self.cfg.num_min_critics]
            next_q = self.target_critic(next_feat, next_a, members=subset).min(0).values
            if self.cfg.backup_entropy:
                next_q = next_q - self.alpha * next_logp
            target = b["reward"] + self.cfg.discount * (1.0 - b["terminal"]) * next_q
        with self._encoder_autocast():
            feat = self.encoder(b["obs"])
        q = self.critic(feat, b["action"])
        loss = F.mse_loss(q, target.unsqueeze(0).expand_as(q))
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self._soft_update()
        self.step += 1
        return feat.detach(), {"critic_loss": loss.detach(), "q_mean": q.detach().mean()}

    def _update_actor(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Actor and temperature step on features of the last critic minibatch (the actor never
        trains the encoder, as in DrQ/RLPD)."""
        a, logp = self.actor.sample(feat, self.gen)
        q = self.critic(feat, a).mean(0)
        actor_loss = (self.alpha.detach() * logp - q).mean()
        # Gradients for the actor only: the critics' weight gradients are never computed.
        grads = torch.autograd.grad(actor_loss, self._actor_params)
        for p, g in zip(self._actor_params, grads):
            p.grad = g
        self.actor_opt.step()
        temp_loss = (self.alpha * (-logp.detach() - self.target_entropy)).mean()
        self.temp_opt.zero_grad(set_to_none=True)
        temp_loss.backward()
        self.temp_opt.step()
        return {"actor_loss": actor_loss.detach(), "temp_loss": temp_loss.detach(),
                "alpha": self.alpha.detach(), "entropy": -logp.detach().mean()}

    def _encoder_autocast(self) -> contextlib.AbstractContextManager:
        if self.encoder_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.encoder_dtype)

    @torch.no_grad()
    def _soft_update(self) -> None:
        torch._foreach_lerp_(self._target_params, self._online_params, self.cfg.tau)

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "config": cfgmod.to_dict(self.cfg),
            "spec_json": self.spec.to_json(),
            "step": self.step,
            "encoder": self.encoder.state_dict(), "critic": self.critic.state_dict(),
            "actor": self.actor.state_dict(), "target_encoder": self.target_encoder.state_dict(),
            "target_critic": self.target_critic.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
            "critic_opt": self.critic_opt.state_dict(), "actor_opt": self.actor_opt.state_dict(),
            "temp_opt": self.temp_opt.state_dict(),
            "rng": {"update": self.gen.get_state(), "act": self.act_gen.get_state(), "device": self.device.type},
        }

    def load_state_dict(self, state: dict) -> None:
        if state["spec_json"] != self.spec.to_json():
            raise ValueError("checkpoint was made for another policy spec; build the agent from the checkpoint "
                             "(SACAgent.load) or use a matching spec")
        for name in ("encoder", "critic", "actor", "target_encoder", "target_critic"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        for name in ("critic_opt", "actor_opt", "temp_opt"):
            opt = getattr(self, name)
            opt.load_state_dict(state[name])
            for group in opt.param_groups:  # checkpoints from before the fused optimizers say fused=None
                group.update(fused=True, foreach=None)
        restore_generators((self.gen, self.act_gen), state["rng"], self.device)
        self.step = int(state["step"])

    def save(self, path: str | os.PathLike) -> None:
        """Write a full checkpoint atomically (temp file + rename)."""
        save_atomic(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides) -> "SACAgent":
        """Agent from a checkpoint; ``overrides`` replace config fields (e.g. ``device='cpu'``
        for a checkpoint trained on a GPU)."""
        state = torch.load(path, map_location="cpu", weights_only=False)
        cfg = cfgmod.from_dict(SACConfig, {**state["config"], **overrides})
        agent = cls(PolicySpec.from_json(state["spec_json"]), cfg)
        agent.load_state_dict(state)
        return agent

    def load_policy_weights(self, policy_state: dict) -> None:
        """Warm-start the encoders and actor from an exported policy (critics stay as they are)."""
        self.policy.load_state_dict(policy_state)
        self.target_encoder.load_state_dict(self.encoder.state_dict())


def save_atomic(obj, path: str | os.PathLike) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
