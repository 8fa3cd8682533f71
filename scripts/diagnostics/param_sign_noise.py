"""Diagnostic (LOG session 17): is the lite-sft fragile? Add sign noise of size s (±s on every parameter, what a few
Adam steps on a gradient of pure noise would do) and pair greedy IoU with the clean model on the same samples.
Run: python scripts/diagnostics/param_sign_noise.py 1e-4,3e-4,1e-3"""
import sys, torch, numpy as np
from simpleseg_lite.evaluate import eval_samples, evaluate, checkpoint_settings
from simpleseg_lite.model import load_model
from simpleseg_lite.metrics import paired_difference
torch.set_num_threads(1)
ck = "data/checkpoints/lite-sft"
st = checkpoint_settings(ck)
samples = eval_samples("synthetic", 200, 999, "polygon", st["epsilon"], st["decimals"], st["image_size"])
model, proc = load_model(ck, dtype=torch.float32)
base_sd = {k: v.clone() for k, v in model.state_dict().items()}
base = np.array([r["iou"] for r in evaluate(model, proc, samples, dependence=False)["rows"]])
print("base", base.mean(), flush=True)
for size in [float(x) for x in sys.argv[1].split(",")]:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(base_sd[name] + size * torch.sign(torch.randn(p.shape, generator=g)))
    iou = np.array([r["iou"] for r in evaluate(model, proc, samples, dependence=False)["rows"]])
    d = paired_difference(base, iou)
    print(f"sign noise {size:g}: gIoU {iou.mean():.4f}  paired {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]", flush=True)
