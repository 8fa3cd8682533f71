"""Muon, the optimizer the paper trains with, for the lite model: Muon on hidden weight matrices, AdamW elsewhere.

SimpleSeg trains with Muon (Moonlight's recipe). Muon keeps a momentum of each weight matrix's gradient and steps
along its orthogonalized version (a few Newton–Schulz iterations push every singular value towards 1), so all
directions of a matrix move at one rate instead of the few largest ones dominating. It is defined for 2-D
matrices only. As in Moonlight, everything else — token embeddings, the LM head, the image-token position table,
norms, biases and the patch embedding's 5-D convolution — keeps AdamW.

``torch.optim.Muon(adjust_lr_fn="match_rms_adamw")`` scales each update by 0.2·√max(A, B), the scaling that
matches AdamW's update size, so the AdamW learning rate and weight decay carry over unchanged
(torch's docstring cites Moonshot's "Muon is Scalable for LLM Training").

``MuonWithAdamW`` puts both under one ``torch.optim.Optimizer``: its ``param_groups`` *are* the two inner
optimizers' groups (the same dicts), so a learning-rate scheduler that writes ``group["lr"]`` drives both, and
``state_dict`` / ``load_state_dict`` carry both states, so trainer checkpoints resume.

Taught in notebooks/05_sft.py (the localization arms).
"""

from __future__ import annotations

import torch

ADAMW_ONLY = ("embed", "lm_head", "position")  # parameter names that keep AdamW even when 2-D


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
        self.muon = torch.optim.Muon(muon_params, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW(adamw_params, lr=lr, weight_decay=weight_decay, betas=betas)
        # add_param_group keeps the dicts it is given, so these are the inner optimizers' own groups
        super().__init__([*self.muon.param_groups, *self.adamw.param_groups], {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
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
