"""The figures of `latentflow bench generator`, for the same network in PyTorch.

The built-in VAE of latentflow (src/models/vae.rs; tensor names and shapes in
docs/checkpoint-format.md): encoder of `stages` 4x4 / stride-2 convolutions with ReLU,
widths base*(1, 1, 2, 2, 4, ...), a dense layer to 8*base, the mu and logvar heads;
decoder fc0 (latent -> 8*base), fc1 (-> width*4*4), transposed 4x4 / stride-2
convolutions mirroring the encoder, a sigmoid on the last. Training: Bernoulli
reconstruction (binary cross-entropy with logits, summed over pixels) + KL, mean over
the batch, Adam (lr 1e-3), on a fixed batch of images in [0, 1] (no data loading in the
timed loop, as in latentflow's `train_compute_img_per_s`).

Prints one JSON line: decode_ms_b1, decode_ms_b32, train_img_per_s (medians).
Usage: python benches/pytorch/generator.py [--latent 16] [--base 32] [--channels 3]
       [--size 64] [--batch 32] [--reps 50] [--threads 2]
Not needed to build or test latentflow; `latentflow bench compare` runs it.
"""
import argparse, json, math, statistics, time

import torch
from torch import nn
import torch.nn.functional as F


def stage_width(base, i):
    return base << min(i // 2, 3)


class Vae(nn.Module):
    def __init__(self, latent, channels, base, size):
        super().__init__()
        stages = int(math.log2(size // 4))
        hidden, top = 8 * base, stage_width(base, stages - 1)
        enc, cin = [], channels
        for i in range(stages):
            cout = stage_width(base, i)
            enc += [nn.Conv2d(cin, cout, 4, 2, 1), nn.ReLU()]
            cin = cout
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(top * 16, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        dec = [nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, top * 16), nn.ReLU(),
               nn.Unflatten(1, (top, 4, 4))]
        for i in range(stages):
            cin = stage_width(base, stages - 1 - i)
            last = i + 1 == stages
            cout = channels if last else stage_width(base, stages - 2 - i)
            dec.append(nn.ConvTranspose2d(cin, cout, 4, 2, 1))
            if not last:
                dec.append(nn.ReLU())
        self.decoder = nn.Sequential(*dec)

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def loss(self, x):
        h = self.encoder(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / x.shape[0]
        return recon + kl


def median_ms(reps, warmup, f):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    vae = Vae(a.latent, a.channels, a.base, a.size)
    with torch.no_grad():
        z1, z32 = torch.randn(1, a.latent), torch.randn(32, a.latent)
        b1 = median_ms(a.reps, 3, lambda: vae.decode(z1).sum().item())
        b32 = median_ms(max(a.reps // 5, 3), 3, lambda: vae.decode(z32).sum().item())
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    x = torch.rand(a.batch, a.channels, a.size, a.size)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = vae.loss(x)
        loss.backward()
        opt.step()

    ms = median_ms(max(a.reps // 5, 5), 2, step)
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "decode_ms_b1": b1,
        "decode_ms_b32": b32,
        "train_batch": a.batch,
        "train_img_per_s": a.batch / (ms / 1e3),
    }))


if __name__ == "__main__":
    main()
