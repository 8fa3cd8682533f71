"""Muon beside AdamW (muon.py): who gets which optimizer, one scheduler for both, checkpoints that resume."""

import io
import json

import pytest
import torch

from simpleseg_lite.muon import Muon, MuonWithAdamW, build_optimizer, muon_parameter_split, orthogonalize


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(10, 8)  # 2-D, but an embedding: AdamW
        self.position = torch.nn.Parameter(torch.randn(4, 8))  # 2-D position table: AdamW
        self.proj = torch.nn.Linear(8, 8)  # weight 2-D: Muon; bias 1-D: AdamW
        self.norm = torch.nn.LayerNorm(8)  # 1-D: AdamW
        self.lm_head = torch.nn.Linear(8, 10, bias=False)  # the head: AdamW

    def forward(self, ids):
        h = self.embed_tokens(ids) + self.position[: ids.shape[1]]
        return self.lm_head(self.norm(torch.relu(self.proj(h))))


def _loss(model):
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    return torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.roll(-1, 1).flatten())


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48), (256, 768)])  # tall, wide, square, the MLP's
def test_orthogonalize_pushes_singular_values_near_one(shape):
    torch.manual_seed(0)
    s = torch.linalg.svdvals(orthogonalize(100 * torch.randn(shape)))  # any scale: it normalizes first
    assert s.shape[0] == min(shape) and float(s.min()) > 0.5 and float(s.max()) < 1.5
    spread = torch.randn(shape) * torch.logspace(-2, 0, shape[1])  # singular values over two decades
    before, after = torch.linalg.svdvals(spread), torch.linalg.svdvals(orthogonalize(spread))
    assert float(after[0] / after[-1]) < float(before[0] / before[-1]) / 10  # the small directions catch up


@pytest.mark.parametrize("nesterov", [True, False])
def test_our_fp32_muon_matches_torchs_on_the_same_gradients(nesterov):
    """torch.optim.Muon (bf16 Newton–Schulz, match_rms_adamw) as the reference: same direction and size."""
    torch.manual_seed(0)
    start = torch.randn(96, 48)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_ours = Muon([ours], lr=1e-2, weight_decay=0.01, nesterov=nesterov)
    opt_theirs = torch.optim.Muon([theirs], lr=1e-2, weight_decay=0.01, nesterov=nesterov,
                                  adjust_lr_fn="match_rms_adamw")
    for _ in range(3):
        grad = torch.randn(96, 48)
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            p.grad = grad.clone()
            opt.step()
    a, b = (ours - start).detach().flatten(), (theirs - start).detach().flatten()
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) > 0.99
    assert float(a.norm() / b.norm()) == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("name, to_muon", [
    ("proj.weight", True),  # a hidden weight matrix
    ("proj.bias", False),  # 1-D
    ("norm.weight", False),  # 1-D
    ("embed_tokens.weight", False),  # embeddings keep AdamW (Moonlight's rule)
    ("position", False),  # the image-token position table is a lookup, like an embedding
    ("lm_head.weight", False),  # the output head keeps AdamW
])
def test_parameter_split(name, to_muon):
    model = Tiny()
    muon, adamw = muon_parameter_split(model)
    p = dict(model.named_parameters())[name]
    assert any(p is q for q in muon) == to_muon and any(p is q for q in adamw) != to_muon
    assert len(muon) + len(adamw) == len(list(model.parameters()))


def test_the_scheduler_drives_both_optimizers_and_every_parameter_moves():
    torch.manual_seed(0)
    model = Tiny()
    opt = MuonWithAdamW(*muon_parameter_split(model), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
    assert opt.muon.param_groups[0]["lr"] == opt.adamw.param_groups[0]["lr"] == pytest.approx(5e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    first = _loss(model).item()
    for _ in range(20):
        opt.zero_grad()
        _loss(model).backward()
        opt.step()
        sched.step()
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert _loss(model).item() < first


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    a = Tiny()
    b = Tiny()
    b.load_state_dict(a.state_dict())
    opt_a = MuonWithAdamW(*muon_parameter_split(a), lr=1e-2)
    for _ in range(3):
        opt_a.zero_grad()
        _loss(a).backward()
        opt_a.step()
    b.load_state_dict(a.state_dict())
    opt_b = MuonWithAdamW(*muon_parameter_split(b), lr=1e-2)
    # through bytes, as a trainer checkpoint goes (loading a live state dict would share its buffers)
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    opt_b.load_state_dict(torch.load(buffer))  # momentum buffers and Adam moments come along
    for model, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        _loss(model).backward()
        opt.step()
    assert all(torch.allclose(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("name, kind", [("adamw", type(None)), ("muon", MuonWithAdamW)])
def test_build_optimizer(name, kind):
    assert isinstance(build_optimizer(name, Tiny(), 1e-3, 0.01, (0.9, 0.98)), kind)


def test_build_optimizer_refuses_unknown_names_and_models_without_matrices():
    with pytest.raises(ValueError, match="adamw"):
        build_optimizer("sgd", Tiny(), 1e-3, 0.01, (0.9, 0.98))
    with pytest.raises(ValueError, match="no 2-D"):
        build_optimizer("muon", torch.nn.LayerNorm(4), 1e-3, 0.01, (0.9, 0.98))


@pytest.mark.slow
def test_sft_trains_and_resumes_with_muon(tmp_path):
    from simpleseg_lite.sft import TrainConfig, train

    cfg = TrainConfig(out=str(tmp_path / "run"), stage="pretrain", max_steps=2, batch_size=2, save_steps=1,
                      eval_steps=0, threads=1, optimizer="muon", max_objects=1, task_mix={"point": 1.0},
                      model={"coord_tokens": True})
    train(cfg)
    cfg.max_steps = 3  # resume from checkpoint-2: the saved optimizer state must load into MuonWithAdamW
    train(cfg, resume=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed"] and summary["config"]["optimizer"] == "muon"
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-3").is_dir()
