"""Frozen-feature probe: do the vision states of a Pixel-SAIL-lite know the prompted object's shape?
Mean of the last-layer states over the region's patches (and, separately, of the input patch embeddings) ->
multinomial logistic regression, fitted on 512 scenes, tested on 256 others."""
import sys, numpy as np, torch
from simpleseg_lite import data, pixelsail as ps
torch.set_num_threads(1)
m, tok = ps.load(sys.argv[1]); m.eval()
shapes = list(data.SHAPES)
def feats(seed, n):
    exs = list(ps.make_pixel_samples(n, seed, data.SyntheticConfig(max_objects=3), {"vp_question": 1.0}))
    H, E, Y = [], [], []
    for k in range(0, n, 32):
        ch = exs[k:k+32]; b = ps.collate(ch, tok, m.config)
        with torch.no_grad():
            emb = m.embed(b["pixel_values"], b["input_ids"], b["prompt_regions"])
            h = m.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
        img = b["input_ids"] == m.config.image_token_id
        reg = b["prompt_regions"][:, 0].flatten(1)  # B, N
        for i in range(len(ch)):
            w = reg[i][:, None] / reg[i].sum()
            H.append((h[i][img[i]] * w).sum(0).numpy()); E.append((emb[i][img[i]] * w).sum(0).numpy())
        Y += [shapes.index(e.answer.split()[-1]) for e in ch]
    return np.array(H), np.array(E), np.array(Y)
Htr, Etr, Ytr = feats(4242, 512); Hte, Ete, Yte = feats(4343, 256)
def probe(Xtr, Xte):
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    Xtr, Xte = torch.tensor((Xtr - mu) / sd, dtype=torch.float32), torch.tensor((Xte - mu) / sd, dtype=torch.float32)
    lin = torch.nn.Linear(Xtr.shape[1], 5); opt = torch.optim.LBFGS(lin.parameters(), max_iter=300)
    y = torch.tensor(Ytr)
    def closure():
        opt.zero_grad(); loss = torch.nn.functional.cross_entropy(lin(Xtr), y) + 1e-3 * lin.weight.pow(2).sum(); loss.backward(); return loss
    opt.step(closure)
    return float((lin(Xte).argmax(1) == torch.tensor(Yte)).float().mean())
print(sys.argv[1], "shape from last-layer region states: %.2f; from input patch embeddings: %.2f" % (probe(Htr, Hte), probe(Etr, Ete)))
