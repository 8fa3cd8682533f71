"""Diagnostic (LOG session 11): can the single transformer learn to *see* a shape when told to directly?
A fresh Pixel-SAIL-lite (token_match + word_tokens) is trained with one loss only: a linear 5-way shape classifier
on the last-layer vision states averaged over the prompted region's patches (the question's scenes, 1-3 objects).
No language-model loss. Prints step, loss and held-out accuracy (200 scenes, seed 2000) - compare with the
language-model route (0.37 at 300 steps) and a 4-layer CNN (0.95 at 200 steps, cnn_shape.py).
"cnn" (a diagnostic only, not a model option): the patch embedding is replaced by the CNN's trunk (3×3 convs at
strides 2-2-1, 32-64-64 channels, per-pixel LayerNorm + GELU), average-pooled to the 8×8 token grid and projected to
the transformer's width.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/shape_direct.py [linear|conv|cnn] [steps] [lr]"""
import sys, time, torch, torch.nn as nn
from simpleseg_lite import data, pixelsail as ps

torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
stem = sys.argv[1] if len(sys.argv) > 1 else "linear"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
m, tok = ps.build_model({"token_match": True, "word_tokens": True, "patch_stem": "linear" if stem == "cnn" else stem},
                        seed=0)
if stem == "cnn":
    def block(a, b, stride):
        return [nn.Conv2d(a, b, 3, stride, 1), ps.ChannelNorm(b), nn.GELU()]
    trunk = nn.Sequential(*block(3, 32, 2), *block(32, 64, 2), *block(64, 64, 1), nn.AdaptiveAvgPool2d(m.config.grid),
                          nn.Conv2d(64, m.config.hidden_size, 1))
    m.trunk = trunk
    m.vision_embed = lambda pv: trunk(pv).flatten(2).transpose(1, 2)
shapes = list(data.SHAPES)
head = nn.Linear(m.config.hidden_size, len(shapes))


def batch(seed, n):
    exs = list(ps.make_pixel_samples(n, seed, data.SyntheticConfig(max_objects=3), {"vp_question": 1.0}))
    return ps.collate(exs, tok, m.config), torch.tensor([shapes.index(e.answer.split()[-1]) for e in exs])


def pooled(b):
    h = m.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
    img = b["input_ids"] == m.config.image_token_id
    vis = h[img].reshape(h.shape[0], -1, h.shape[-1])
    w = b["prompt_regions"][:, 0].flatten(1)
    return (vis * (w / w.sum(1, keepdim=True))[..., None]).sum(1)


params = list(m.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr, weight_decay=0.0)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
bv, yv = batch(2000, 200)
t = time.time()
for step in range(1, steps + 1):
    b, y = batch(10**6 + step, 32)
    loss = nn.functional.cross_entropy(head(pooled(b)), y)
    loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); sched.step(); opt.zero_grad()
    if step % 50 == 0:
        m.eval()
        with torch.no_grad():
            acc = (head(pooled(bv)).argmax(1) == yv).float().mean()
        m.train()
        print(stem, step, round(float(loss.detach()), 3), round(float(acc), 3), round(time.time() - t), flush=True)
