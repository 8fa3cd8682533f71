"""Muon, the optimizer the paper trains with, for the lite model: Muon on hidden weight matrices, AdamW elsewhere.

SimpleSeg trains with Muon (Moonlight's recipe). Muon keeps a momentum of each weight matrix's gradient and steps
along its orthogonalized version (a few Newton–Schulz iterations push every singular value towards 1), so all
directions of a matrix move at one rate instead of the few largest ones dominating. It is defined for 2-D
matrices only. As in Moonlight, everything else — token embeddings, the LM head, the image-token position table,
norms, biases and the patch embedding's 5-D convolution — keeps AdamW.

Each update is scaled by 0.2·√max(A, B) for an A×B matrix, the scaling Moonlight ("Muon is Scalable for LLM
Training") found to match AdamW's update size, so the AdamW learning rate and weight decay carry over unchanged.

Why our own ``Muon`` and not ``torch.optim.Muon``: torch's runs the Newton–Schulz iteration in bfloat16, and on
CPUs without native bf16 (this machine: AVX2, no AVX-512-BF16) bf16 matrix products are emulated — one lite
step took 33 s against 9 s for AdamW in the same (loaded) benchmark, and bf16 autocast of the whole model was
45 s/step against 2.4 s fp32. Ours is the same update in fp32; ``tests/test_muon.py`` checks it against
torch's on the same gradients.

``MuonWithAdamW`` puts both under one ``torch.optim.Optimizer``: its ``param_groups`` *are* the two inner
optimizers' groups (the same dicts), so a learning-rate scheduler that writes ``group["lr"]`` drives both, and
``state_dict`` / ``load_state_dict`` carry both states, so trainer checkpoints resume.

Taught in notebooks/05_sft.py (the localization arms).
"""

from __future__ import annotations

import torch

ADAMW_ONLY = ("embed", "lm_head", "position")  # parameter names that keep AdamW even when 2-D
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Keller Jordan's quintic Newton–Schulz coefficients (Muon's)


def orthogonalize(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """≈ U·Vᵀ for g = U·S·Vᵀ: five quintic Newton–Schulz steps push every singular value near 1 (into about
    [0.5, 1.5], not exactly 1: faster, and as good for training, per Muon's authors). fp32 throughout."""
    a, b, c = NS_COEFFICIENTS
    x = g.float()
    tall = x.shape[0] > x.shape[1]
    if tall:  # iterate on the wide side: X Xᵀ is the smaller Gram matrix
        x = x.T
    x = x / (x.norm() + 1e-7)  # Frobenius norm ≥ spectral norm, so every singular value starts ≤ 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x  # X ← aX + (b·XXᵀ + c·(XXᵀ)²)·X
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon for 2-D weights: Nesterov momentum, orthogonalized, RMS matched to AdamW (module docstring)."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.01, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                                  "nesterov": nesterov, "ns_steps": ns_steps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.ndim != 2:
                    raise ValueError(f"Muon updates 2-D matrices only, got a tensor of shape {tuple(p.shape)}")
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(mu).add_(p.grad)  # B ← μB + g
                u = p.grad.add(buf, alpha=mu) if group["nesterov"] else buf  # Nesterov: g + μB
                p.mul_(1 - lr * group["weight_decay"])  # decoupled weight decay
                scale = 0.2 * max(p.shape) ** 0.5  # Moonlight's RMS match to AdamW
                p.add_(orthogonalize(u, group["ns_steps"]).to(p.dtype), alpha=-lr * scale)
        return loss


def muon_parameter_split(model: torch.nn.Module) -> tuple[list, list]:
    """``(muon_params, adamw_params)``: trainable 2-D weights of the hidden layers go to Muon; embeddings, the
    LM head, position tables (``ADAMW_ONLY`` in the name) and every non-2-D tensor go to AdamW."""
    muon, adamw = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (muon if p.ndim == 2 and not any(k in name for k in ADAMW_ONLY) else adamw).append(p)
    return muon, adamw


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon on ``muon_params`` and AdamW on ``adamw_params`` with one learning rate and weight decay
    (see the module docstring). ``step`` steps both; the groups are shared, so schedulers see both."""

    def __init__(self, muon_params, adamw_params, lr: float = 1e-3, weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.98)):
        if not muon_params:
            raise ValueError("MuonWithAdamW: no 2-D hidden weights to give Muon (use AdamW for this model)")
        self.muon = Muon(muon_params, lr=lr, weight_decay=weight_decay)
        self.adamw = torch.optim.AdamW(adamw_params, lr=lr, weight_decay=weight_decay, betas=betas)
        # add_param_group keeps the dicts it is given, so these are the inner optimizers' own groups
        super().__init__([*self.muon.param_groups, *self.adamw.param_groups], {"lr": lr})

    def step(self, closure=None):
        loss = self.muon.step(closure)  # the closure (if any) runs once, inside Muon's step
        self.adamw.step()
        return loss

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])


def build_optimizer(name: str, model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float]):
    """``"adamw"`` → None (the trainer builds its own AdamW); ``"muon"`` → ``MuonWithAdamW`` over ``model``."""
    if name == "adamw":
        return None
    if name != "muon":
        raise ValueError(f"optimizer must be 'adamw' or 'muon', got {name!r}")
    return MuonWithAdamW(*muon_parameter_split(model), lr=lr, weight_decay=weight_decay, betas=betas)
