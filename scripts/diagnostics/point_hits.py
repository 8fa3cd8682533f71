"""Does the polygon model know WHICH object? Text→point and text→box on 1–3-object validation scenes (seed 999,
n 300 each): the share of points inside the target and of boxes with IoU > 0.5, and the median point error / box IoU,
by object count (LOG session 20).
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/point_hits.py CHECKPOINT"""
import sys, numpy as np, torch, collections
from simpleseg_lite.evaluate import checkpoint_settings, eval_samples, evaluate
from simpleseg_lite.model import load_model
from simpleseg_lite.parse import parse_point
from pycocotools import mask as mu
torch.set_num_threads(1)
path = sys.argv[1]
st = checkpoint_settings(path)
m, proc = load_model(path, dtype=torch.float32)
for task in ("point", "box"):
    samples = eval_samples("synthetic", 300, 999, task, st["epsilon"], st["decimals"], st["image_size"])
    r = evaluate(m, proc, samples, dependence=False)
    by = collections.defaultdict(list)
    for s, row in zip(samples, r["rows"]):
        k = len(s.metadata["objects"])
        if task == "point":
            p = parse_point(row["answer"])
            gt = mu.decode(s.gt_rle)
            hit = p is not None and gt[min(111, int(p[1] * 112)), min(111, int(p[0] * 112))] > 0
            by[k].append((hit, row["point_err_px"]))
        else:
            by[k].append((row["box_iou"] > 0.5, row["box_iou"]))
    print(task, "by objects: (n, hit share, median)", {k: (len(v), round(float(np.mean([a for a, _ in v])), 3),
                                                          round(float(np.median([b for _, b in v])), 2))
                                                      for k, v in sorted(by.items())})
