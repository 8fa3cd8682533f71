"""Diagnostic (LOG session 17): GSPO with a reward of pure noise, everything else as a real run. If greedy gIoU
falls as far as it does under the real rewards, the real runs' updates are mostly noise at this batch size.
The noise reward is uniform on [0, 1), drawn from a generator seeded by the run seed, so it is reproducible.
Run: python scripts/diagnostics/gspo_noise_control.py --out runs/gspo17_noise [--steps 120 --lr 1.4e-4]
then: simpleseg-lite compare --a data/checkpoints/lite-sft --b runs/gspo17_noise --n 200 --seed 999"""
import argparse

import numpy as np

from simpleseg_lite import rewards, rl

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--init", default="data/checkpoints/lite-sft")
ap.add_argument("--steps", type=int, default=120)
ap.add_argument("--lr", type=float, default=1.4e-4)
ap.add_argument("--temperature", type=float, default=0.3)
ap.add_argument("--seed", type=int, default=5)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
rng = np.random.default_rng(args.seed)


def noise_reward(completions, **kwargs):
    return rng.random(len(completions)).tolist()


rl.REWARD_FUNCS["noise_reward"] = noise_reward  # rl.reward_functions looks names up here
cfg = rl.GSPOConfig(out=args.out, init=args.init, max_steps=args.steps, lr=args.lr, temperature=args.temperature,
                    seed=args.seed, threads=args.threads, eval_steps=40, save_steps=10,
                    reward_weights={"noise_reward": 1.0, **{k: 0.0 for k in rewards.REWARD_WEIGHTS}})
print("policy saved in", rl.train_gspo(cfg))
