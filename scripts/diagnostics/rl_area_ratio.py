"""Diagnostic (LOG session 17): gIoU and the median of (answer polygon area / target pixel area) of each checkpoint,
all / 1-object / 2–3-object samples (the polygons own area, shapely; `compare` prints the rasterized version).
Run: python scripts/diagnostics/rl_area_ratio.py data/checkpoints/lite-sft,runs/gspo16_1.4e-4"""
import sys, torch, numpy as np
from simpleseg_lite.evaluate import eval_samples, evaluate, checkpoint_settings
from simpleseg_lite.model import load_model
from simpleseg_lite.parse import parse_polygons
from pycocotools import mask as mu
from shapely.geometry import Polygon
torch.set_num_threads(1)
ck = sys.argv[1].split(",")
st = checkpoint_settings(ck[0])
samples = eval_samples("synthetic", 200, 999, "polygon", st["epsilon"], st["decimals"], st["image_size"])
gt_area = np.array([float(mu.area(s.gt_rle)) / (s.width * s.height) for s in samples])
nobj = np.array([len(s.metadata.get("objects", [])) for s in samples])
for c in ck:
    m, p = load_model(c, dtype=torch.float32)
    rows = evaluate(m, p, samples, dependence=False)["rows"]
    areas = []
    for r in rows:
        q = parse_polygons(r["answer"])
        areas.append(sum(Polygon(x).buffer(0).area for x in q.polygons if len(x) >= 3) if q.valid else 0.0)
    ratio = np.array(areas) / gt_area
    iou = np.array([r["iou"] for r in rows])
    print(c, "gIoU", iou.mean().round(4), "median area ratio", np.median(ratio).round(3), "1-obj", np.median(ratio[nobj == 1]).round(3), "multi", np.median(ratio[nobj > 1]).round(3), flush=True)
