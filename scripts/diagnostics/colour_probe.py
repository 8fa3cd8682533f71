"""Teacher-forced share on target for 'Please segment the {colour} shape.' on 2-3-object scenes of distinct colours."""
import sys, json, numpy as np, torch
from simpleseg_lite import data, pixelsail as ps
torch.set_num_threads(1)
cfg = data.SyntheticConfig(min_objects=2, max_objects=3)
def held(template):
    out, i = [], 0
    while len(out) < 64:
        rng = np.random.default_rng((777, i)); i += 1
        sc = data.make_scene(rng, cfg)
        if len({o.colour for o in sc.objects}) < len(sc.objects): continue
        t = int(rng.integers(len(sc.objects))); o = sc.objects[t]
        e = ps.PixelSample(sc.image, template.format(c=o.colour, s=o.name), ps.SEG_ANSWER, "mask", o.mask, None, len(sc.objects))
        e.others = [x.mask for k, x in enumerate(sc.objects) if k != t]; out.append(e)
    return out
for path in sys.argv[1:]:
    m, tok = ps.load(path); m.eval()
    for template in ("Please segment the {c} shape.", "Please segment the {c} {s}."):
        hs = held(template)
        with torch.no_grad():
            b = ps.collate(hs, tok, m.config)
            h = m.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
            seg = (b["input_ids"] == m.config.seg_token_id).float().argmax(1)
            pm = (m.mask_logits(h, b["input_ids"], seg) > 0).numpy()
        s = []
        for e, p in zip(hs, pm):
            a = (p & e.mask.astype(bool)).sum(); o = sum((p & x.astype(bool)).sum() for x in e.others)
            s.append(a / (a + o) if a + o else 0)
        print(path, template, "share on target %.3f (chance %.3f)" % (np.mean(s), np.mean([1 / e.objects for e in hs])))
