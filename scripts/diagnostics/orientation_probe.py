"""Do the image tokens know which way a single object is turned? A ridge probe of (cos kθ, sin kθ) (k: the shape's
symmetry, data.SYMMETRY; kθ from data.moment_angle) from the 16 flattened image tokens of the vision tower, fitted on
3,000 single-object scenes (seed 71), tested on 500 others (seed 72); the best of five ridge strengths per shape.
Run: python scripts/diagnostics/orientation_probe.py CHECKPOINT   (LOG session 29)"""
import sys, numpy as np, torch
from simpleseg_lite import data
from simpleseg_lite.model import load_model, chat_text
torch.set_num_threads(2)
K = {name: data.SYMMETRY[name] for name in ('star', 'cross', 'square', 'triangle')}
model, processor = load_model(sys.argv[1], dtype=torch.float32); model.eval()
layer = int(sys.argv[2]) if len(sys.argv) > 2 else None
cfg = data.SyntheticConfig(max_objects=1, shapes=tuple(K))
def feats(seed, n):
    X, Y, S = [], [], []
    for st in range(0, n, 50):
        sc = [data.make_scene(np.random.default_rng((seed, st + i)), cfg) for i in range(50)]
        with torch.no_grad():
            if layer is None:
                enc = processor.image_processor(images=[s.image for s in sc], return_tensors="pt")
                tok = torch.stack(model.model.get_image_features(enc["pixel_values"], enc["image_grid_thw"]).pooler_output)
            else:
                enc = processor(images=[s.image for s in sc], text=[chat_text(processor, "Output the polygon coordinates of the shape in the image.")] * 50, return_tensors="pt", padding=True)
                h = model(**enc, output_hidden_states=True).hidden_states[layer]
                im = enc["input_ids"] == model.config.image_token_id
                tok = torch.stack([h[i][im[i]] for i in range(50)])
        for s, t in zip(sc, tok):
            o = s.objects[0]; a = data.moment_angle(o.mask, K[o.name])
            X.append(t.flatten().numpy()); Y.append([np.cos(a), np.sin(a)]); S.append(o.name)
    return np.array(X), np.array(Y), np.array(S)
Xtr, Ytr, Str = feats(71, 3000); Xte, Yte, Ste = feats(72, 500)
print('features', Xtr.shape)
for nm in K:
    a, b = Str == nm, Ste == nm
    mu, sd = Xtr[a].mean(0), Xtr[a].std(0) + 1e-6
    A = (Xtr[a] - mu) / sd; B = (Xte[b] - mu) / sd
    best = None
    for lam in (1, 10, 100, 1000, 10000):
        W = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ (Ytr[a] - Ytr[a].mean(0)))
        P = B @ W + Ytr[a].mean(0)
        err = np.abs(np.angle(np.exp(1j * (np.arctan2(P[:, 1], P[:, 0]) - np.arctan2(Yte[b, 1], Yte[b, 0]))))) / K[nm]
        e = np.degrees(err)
        if best is None or np.median(e) < best[0]: best = (np.median(e), e.mean(), lam)
    print(f"{nm:9s} n_tr {a.sum()} probe |θ err| median {best[0]:.1f}° mean {best[1]:.1f}° (λ {best[2]}); chance mean {90/K[nm]:.1f}°")
