"""Diagnostic (LOG session 10): a 4-layer CNN, the prompt region as a 4th input channel, names the prompted
object's shape from the same scenes as the Pixel-SAIL-lite question. Prints step, loss and held-out accuracy (200 scenes,
seed 2000). Run: OMP_NUM_THREADS=1 python scripts/diagnostics/cnn_shape.py"""
import numpy as np, torch, torch.nn as nn, time
from simpleseg_lite import data, pixelsail as ps
torch.set_num_threads(1); torch.manual_seed(0)
shapes=list(data.SHAPES)
def batch(seed,n):
    exs=list(ps.make_pixel_samples(n, seed, data.SyntheticConfig(max_objects=3), {"vp_question":1.0}))
    x=np.stack([np.concatenate([e.image.astype(np.float32)/127.5-1, e.region[...,None].astype(np.float32)],-1) for e in exs])
    y=[shapes.index(e.answer.split()[-1]) for e in exs]
    return torch.from_numpy(x).permute(0,3,1,2), torch.tensor(y)
net=nn.Sequential(nn.Conv2d(4,32,3,2,1),nn.GELU(),nn.Conv2d(32,64,3,2,1),nn.GELU(),nn.Conv2d(64,64,3,2,1),nn.GELU(),
                  nn.Conv2d(64,64,3,1,1),nn.GELU(),nn.AdaptiveMaxPool2d(1),nn.Flatten(),nn.Linear(64,5))
opt=torch.optim.AdamW(net.parameters(),1e-3)
xv,yv=batch(2000,200); t=time.time()
for step in range(1,301):
    x,y=batch(10**6+step,32)
    loss=nn.functional.cross_entropy(net(x),y); loss.backward(); opt.step(); opt.zero_grad()
    if step%50==0:
        with torch.no_grad(): acc=(net(xv).argmax(1)==yv).float().mean()
        print(step, round(float(loss),3), float(acc), round(time.time()-t))
