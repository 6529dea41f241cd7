"""Networks shared by SAC and the imitation baselines: image encoders, actor head, critics.

Inputs are described by a :class:`~robot_stack.types.spec.PolicySpec`: one encoder per camera
(uint8 images stay uint8 until the network boundary, where they become float in [0, 1]) and the
proprio vector concatenated to the image latents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robot_stack.types.spec import PolicySpec

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class NetworkConfig:
    """Encoder and MLP sizes (one preset per task lives in policies/<task>.yaml)."""

    encoder: str = "small"
    """Image encoder: 'small' (conv net trained end to end) or 'pretrained' (same conv trunk
    loaded from ``encoder_weights`` and frozen; only its projection is trained)."""
    encoder_weights: str = ""
    """Path of a torch state_dict for the conv trunk (required when encoder='pretrained')."""
    encoder_channels: int = 32
    """Channels of each conv layer."""
    latent_dim: int = 50
    """Size of each camera's embedding (after a LayerNorm + tanh projection)."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor and critic MLPs."""
    augment_pad_px: int = 4
    """Random-shift augmentation: pad by this many pixels (edge replicate), random crop back.
    0 disables it."""
    channels_last: bool = True
    """Run convs in channels_last memory format (faster on CPU)."""
    proprio_scale: float = 1.0
    """Fixed factor on the proprio vector at the network input (e.g. 10 for positions in m,
    so centimetre differences are not drowned out); part of the exported policy."""

    def validate(self) -> None:
        if self.encoder not in ("small", "pretrained"):
            raise ValueError(f"encoder must be 'small' or 'pretrained', got {self.encoder!r}")
        if self.encoder == "pretrained" and not self.encoder_weights:
            raise ValueError("encoder='pretrained' needs encoder_weights: path of the trunk's state_dict")


_TRUNK_STRIDES = (2, 2, 2, 1)  # 3x3 kernels, no padding


def conv_trunk(channels: int) -> nn.Sequential:
    """The conv stack of the image encoder (also the layout of a pretrained weights file)."""
    layers: list[nn.Module] = []
    for i, stride in enumerate(_TRUNK_STRIDES):
        layers += [nn.Conv2d(3 if i == 0 else channels, channels, 3, stride=stride), nn.ReLU()]
    return nn.Sequential(*layers)


def trunk_output_numel(channels: int, height: int, width: int) -> int:
    """Size of the conv trunk's output for one image (computed, not run: also on torch's meta
    device, where running a convolution the first time costs about a second)."""
    h, w = height, width
    for stride in _TRUNK_STRIDES:
        h, w = (h - 3) // stride + 1, (w - 3) // stride + 1
    if h < 1 or w < 1:
        raise ValueError(f"a {height}x{width} image is too small for the encoder's convolutions")
    return channels * h * w


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ's random shift on a batch of images (N, H, W, C) of any dtype (uint8 from the replay
    buffer): each image moves by its own integer offset in [-pad, pad] per axis, with the edge
    pixels repeated (the same as padding by ``pad`` with edge replication and cropping back).

    Shifting uint8 before the float conversion gives exactly the floats that shifting after it
    would, at a quarter of the bytes moved."""
    n, h, w = images.shape[:3]
    off = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=generator.device)
    if images.device.type == "cpu" and pad < min(h, w):
        return torch.from_numpy(_shift_numpy(images.numpy(), off.tolist(), pad))
    return _shift_gather(images, off.to(images.device), pad)


def _shift_numpy(images: np.ndarray, offsets: list, pad: int) -> np.ndarray:
    """CPU: per image, one block copy of the overlap and edge fills (a few microseconds per image;
    an index gather over every pixel costs 5-10x more on the CPU)."""
    _, h, w, _ = images.shape
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(offsets):
        dy -= pad
        dx -= pad
        r0, r1 = max(0, -dy), h - max(0, dy)  # output rows/cols that come from inside the image
        c0, c1 = max(0, -dx), w - max(0, dx)
        o = out[i]
        o[r0:r1, c0:c1] = images[i, r0 + dy:r1 + dy, c0 + dx:c1 + dx]
        if c0:
            o[r0:r1, :c0] = o[r0:r1, c0:c0 + 1]
        if c1 < w:
            o[r0:r1, c1:] = o[r0:r1, c1 - 1:c1]
        if r0:
            o[:r0] = o[r0:r0 + 1]
        if r1 < h:
            o[r1:] = o[r1 - 1:r1]
    return out


def _shift_gather(images: torch.Tensor, off: torch.Tensor, pad: int) -> torch.Tensor:
    """Any device: one gather with clamped row/column indices (one kernel on a GPU)."""
    n, h, w, _ = images.shape
    rows = (torch.arange(h, device=images.device) + off[:, :1] - pad).clamp_(0, h - 1)
    cols = (torch.arange(w, device=images.device) + off[:, 1:] - pad).clamp_(0, w - 1)
    batch = torch.arange(n, device=images.device)
    return images[batch[:, None, None], rows[:, :, None], cols[:, None, :]]


def augment(obs: dict, spec: PolicySpec, pad: int, generator: torch.Generator) -> dict:
    """Observation dict with every camera's images randomly shifted (``pad`` 0: unchanged)."""
    if pad <= 0 or not spec.cameras:
        return obs
    return {**obs, **{c.name: random_shift(obs[c.name], pad, generator) for c in spec.cameras}}


class ImageEncoder(nn.Module):
    def __init__(self, height: int, width: int, cfg: NetworkConfig, load_weights: bool = True):
        super().__init__()
        self.cfg = cfg
        self.trunk = conv_trunk(cfg.encoder_channels)
        self.frozen = cfg.encoder == "pretrained"
        if self.frozen:
            if load_weights:
                state = torch.load(cfg.encoder_weights, map_location="cpu", weights_only=True)
                self.trunk.load_state_dict(state)
            for p in self.trunk.parameters():
                p.requires_grad_(False)
        n_flat = trunk_output_numel(cfg.encoder_channels, height, width)
        self.proj = nn.Sequential(nn.Linear(n_flat, cfg.latent_dim), nn.LayerNorm(cfg.latent_dim), nn.Tanh())
        if cfg.channels_last:
            self.trunk.to(memory_format=torch.channels_last)

    def forward(self, img_u8: torch.Tensor) -> torch.Tensor:
        """img_u8: uint8 (N, H, W, 3), already augmented where training wants it (see augment())."""
        # (N, H, W, 3) permuted is NCHW in channels_last memory: the float copy keeps that layout.
        x = img_u8.permute(0, 3, 1, 2).float().div_(255.0)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.frozen:
            with torch.no_grad():
                h = self.trunk(x)
        else:
            h = self.trunk(x)
        # The projection stays float32 when a caller runs the convs under bfloat16 autocast.
        with torch.autocast(x.device.type, enabled=False):
            return self.proj(h.flatten(1).float())


class ObsEncoder(nn.Module):
    """All cameras + proprio -> one feature vector."""

    def __init__(self, spec: PolicySpec, cfg: NetworkConfig, load_weights: bool = True):
        super().__init__()
        self.spec = spec
        self.cams = nn.ModuleDict({c.name: ImageEncoder(c.height, c.width, cfg, load_weights) for c in spec.cameras})
        self.proprio_scale = float(cfg.proprio_scale)
        self.out_dim = len(spec.cameras) * cfg.latent_dim + spec.proprio_dim
        if self.out_dim == 0:
            raise ValueError("policy spec has neither cameras nor proprio: nothing to encode")

    def forward(self, obs: dict) -> torch.Tensor:
        feats = [self.cams[c.name](obs[c.name]) for c in self.spec.cameras]
        if self.spec.proprio_dim:
            feats.append(obs["proprio"].float() * self.proprio_scale)
        return torch.cat(feats, dim=-1) if len(feats) > 1 else feats[0]


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ActorHead(nn.Module):
    """Tanh-squashed Gaussian over normalized actions in [-1, 1]."""

    def __init__(self, in_dim: int, action_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp(in_dim, hidden, 2 * action_dim)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(feat).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1.0)
        return mean, log_std

    def sample(self, feat: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized sample and its log-probability (with the tanh correction)."""
        mean, log_std = self(feat)
        std = log_std.exp()
        eps = torch.randn(mean.shape, generator=generator, device=mean.device)
        u = mean + std * eps
        logp = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log(1 - tanh(u)^2) computed stably.
        logp = logp - (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), logp

    def mode(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self(feat)[0])


class EnsembleLinear(nn.Module):
    def __init__(self, n: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, B, in)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleCritic(nn.Module):
    """``n`` Q-networks evaluated in one batched matmul per layer, LayerNorm after each hidden layer."""

    def __init__(self, n: int, in_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.n = n
        dims = (in_dim, *hidden)
        self.layers = nn.ModuleList(EnsembleLinear(n, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.ln_weight = nn.ParameterList(nn.Parameter(torch.ones(n, 1, h)) for h in hidden)
        self.ln_bias = nn.ParameterList(nn.Parameter(torch.zeros(n, 1, h)) for h in hidden)
        self.out = EnsembleLinear(n, dims[-1], 1)

    def forward(self, feat: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """Q-values of shape (n, B); with ``members`` (indices into the ensemble) only those
        critics run: shape (len(members), B), the same values as the full output's rows."""
        pick = (lambda t: t) if members is None else (lambda t: t.index_select(0, members))
        x = torch.cat([feat, action], dim=-1).unsqueeze(0).expand(self.n if members is None else len(members), -1, -1)
        for layer, w, b in zip(self.layers, self.ln_weight, self.ln_bias):
            x = torch.baddbmm(pick(layer.bias), x, pick(layer.weight))
            x = F.relu(F.layer_norm(x, x.shape[-1:]) * pick(w) + pick(b))
        return torch.baddbmm(pick(self.out.bias), x, pick(self.out.weight)).squeeze(-1)


class PolicyNet(nn.Module):
    """Encoders + actor head: everything an actor process needs to act."""

    def __init__(self, encoder: ObsEncoder, head: ActorHead):
        super().__init__()
        self.encoder = encoder
        self.head = head

    @torch.inference_mode()
    def act_batch(self, obs: dict, deterministic: bool, generator: torch.Generator | None) -> np.ndarray:
        """Actions for a batch of torch observations (moved to this net's device), as numpy."""
        device = next(self.head.parameters()).device
        obs = {k: v.to(device, non_blocking=True) for k, v in obs.items()}
        feat = self.encoder(obs)
        a = self.head.mode(feat) if deterministic else self.head.sample(feat, generator)[0]
        return a.cpu().numpy()


def gpu_has_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a CUDA GPU with bfloat16 units (Ampere and later)."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when torch sees a GPU, else CPU) -> torch.device.
    Raises ValueError naming the fix when CUDA is asked for but torch has none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: this torch ({torch.__version__}) sees no CUDA GPU; install a "
                             f"CUDA build of torch and the NVIDIA driver, or set device to 'cpu' or 'auto'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type != "cpu":
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}")
    return device


def obs_to_torch(obs: dict, spec: PolicySpec, batched: bool, device: torch.device | None = None) -> dict:
    """Numpy observation dict -> torch (zero-copy on the CPU); adds a batch axis if needed.
    With a CUDA ``device`` the tensors are copied there as they are: images cross as uint8
    (4x fewer bytes than float) and become float on the GPU, in the encoder."""
    out = {}
    for c in spec.cameras:
        img = np.asarray(obs[c.name])
        if img.dtype != np.uint8:
            raise ValueError(f"camera '{c.name}': images must be uint8, got {img.dtype}")
        out[c.name] = torch.from_numpy(img if batched else img[None])
    if spec.proprio_dim:
        p = np.asarray(obs["proprio"], np.float32)
        out["proprio"] = torch.from_numpy(p if batched else p[None])
    if device is not None and device.type != "cpu":
        out = {k: v.to(device, non_blocking=True) for k, v in out.items()}
    return out
