"""The `train_iter_ms` figure of `latentflow bench ffvae`, for the same iteration in PyTorch.

Mirrors `FlowVaeTrainer::flow_loss` and `step` (src/train/flow_vae.rs) with that bench's
settings: the flow-factorized VAE with full supervision, batch 64 sequences of T + 1 = 9
frames of 64×64 RGB (random values: timing only), K = 5 Hamilton–Jacobi potentials, the
scenes VAE's architecture (latent 16, base 32), labels sorted so each potential sees a
contiguous run of rows.

One iteration:
 1. encode x_0 (64 images), z_0 = μ + σ ε;
 2. initial condition per run of rows with potential k: ‖∇u^k(z_0, 0)‖² + f^k(z_0, 0)²;
 3. for t = 1..T, per run: ∇u, ∂_t u and the exact Laplacian Δ_z u (trace of the Hessian),
    the HJ residual (∂_t u + ½‖∇u‖² + MLP_f²)², log|1 + Δu|, z ← z + ∇u;
 4. decode all (T + 1)·64 codes at once; BCE with logits summed over pixels and frames;
    KL(q_0 ‖ N(0, I)); the per-step KLs against N(0, (1 + 2 D_k t) I) with
    D_k = softplus(ρ_k);
 5. loss = recon + KL + per-step KLs + PINN; terms read back as floats; backward; one Adam
    step for the VAE (lr 3e-4) and one for potentials, force networks and ρ (lr 1e-3).

Derivatives of u by autograd (what a PyTorch user writes; latentflow carries them forward
in one pass): ∇_z u and ∂_t u by one `autograd.grad` with create_graph; the Laplacian as the
trace of the per-sample Hessian by torch.func (vmap(jacfwd(jacrev(u))), d = 16 tangents
vectorised), differentiable to the weights (`--laplacian rowsum` is the reference code's
Hessian row sum H·1, one double-backward, for comparison; it is not the trace).

Prints one JSON line: train_iter_ms (median), pytorch_version, threads, options.
Usage: python benches/pytorch/ffvae.py [--threads 2] [--reps 5] [--laplacian exact]
Not needed to build or test latentflow.
"""
import argparse, json, math, statistics, time

import torch
from torch import nn
import torch.nn.functional as F

D, K, H, E, T, B, BASE, SIZE = 16, 5, 128, 32, 8, 64, 32, 64


def stage_width(base, i):
    return base << min(i // 2, 3)


class Vae(nn.Module):
    def __init__(self, latent=D, channels=3, base=BASE, size=SIZE):
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


class Mlps(nn.Module):
    """K MLPs as stacked (K, ...) tensors (latentflow's potential architecture)."""

    def __init__(self, final_tanh):
        super().__init__()
        def p(shape, fan_in):
            return nn.Parameter(torch.empty(shape).uniform_(-fan_in ** -0.5, fan_in ** -0.5))
        self.wz, self.bz = p((K, H, D), D), p((K, H), D)
        self.wt1, self.bt1 = p((K, H, E), E), p((K, H), E)
        self.wt2, self.bt2 = p((K, H, H), H), p((K, H), H)
        self.w1, self.b1 = p((K, H, H), H), p((K, H), H)
        self.w2, self.b2 = p((K, H), H), p((K,), H)
        self.final_tanh = final_tanh
        half = E // 2
        self.register_buffer("omega", 10000.0 ** (-torch.arange(half) / (half - 1)))

    def u(self, z, t, k):
        hz = torch.tanh(z @ self.wz[k].T + self.bz[k])
        ph = t[:, None] * self.omega
        e = torch.cat([ph.sin(), ph.cos()], 1)
        ht = F.gelu(e @ self.wt1[k].T + self.bt1[k]) @ self.wt2[k].T + self.bt2[k]
        h1 = torch.tanh((hz + ht) @ self.w1[k].T + self.b1[k])
        v = h1 @ self.w2[k] + self.b2[k]
        return torch.tanh(v) if self.final_tanh else v


def derivs(pot, k, z, t, how):
    """u's ∇_z u, ∂_t u and Δ_z u at (z, t), with graphs to the weights."""
    zr, tr = z.requires_grad_() if not z.requires_grad else z, t.requires_grad_()
    gz, gt = torch.autograd.grad(pot.u(zr, tr, k).sum(), (zr, tr), create_graph=True)
    if how == "exact":
        f = lambda zz, tt: pot.u(zz[None], tt[None], k)[0]
        hess = torch.func.vmap(torch.func.jacfwd(torch.func.jacrev(f)))(z, t.detach())
        lap = torch.diagonal(hess, dim1=1, dim2=2).sum(1)
    else:
        hv, = torch.autograd.grad(gz.sum(), zr, create_graph=True)
        lap = hv.sum(1)
    return gz, gt, lap


def make_step(a):
    torch.manual_seed(0)
    vae, pot, force = Vae(), Mlps(True), Mlps(False)
    rho = nn.Parameter(torch.full((K,), math.log(math.expm1(0.1))))
    opt_vae = torch.optim.Adam(vae.parameters(), lr=3e-4)
    opt_rest = torch.optim.Adam(list(pot.parameters()) + list(force.parameters()) + [rho], lr=1e-3)
    x = torch.rand((T + 1) * B, 3, SIZE, SIZE)
    labels = torch.sort(torch.randint(0, K, (B,))).values
    runs = []
    for k in range(K):
        idx = (labels == k).nonzero().flatten()
        if len(idx):
            runs.append((k, int(idx[0]), len(idx)))
    x0 = x[:B]

    def step():
        opt_vae.zero_grad(set_to_none=True)
        opt_rest.zero_grad(set_to_none=True)
        h = vae.encoder(x0)
        mu, logvar = vae.mu(h), vae.logvar(h)
        z0 = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        ic = []
        for k, s, n in runs:
            zr = z0[s:s + n]
            t0 = torch.zeros(n)
            g, = torch.autograd.grad(pot.u(zr, t0, k).sum(), zr, create_graph=True)
            f = -force.u(zr, t0, k) ** 2
            ic.append(g.pow(2).sum(1) + f ** 2)
        ic = torch.cat(ic).mean()
        z, codes, log_dets, pinn = z0, [], [], 0.0
        for step_t in range(1, T + 1):
            gs, laps, res = [], [], []
            for k, s, n in runs:
                zr = z[s:s + n]
                tt = torch.full((n,), float(step_t))
                gz, gt, lap = derivs(pot, k, zr, tt, a.laplacian)
                f = -force.u(zr, tt, k) ** 2
                r = gt + 0.5 * gz.pow(2).sum(1) - f
                gs.append(gz), laps.append(lap), res.append(r.pow(2))
            g, lap = torch.cat(gs), torch.cat(laps)
            pinn = pinn + torch.cat(res).mean()
            log_dets.append((1 + lap).abs().clamp_min(1e-6).log())
            z = z + g
            codes.append(z)
        logits = vae.decoder(torch.cat([z0] + codes))
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / B
        entropy = 0.5 * (logvar.sum(1) + D * (math.log(2 * math.pi) + 1))
        d = F.softplus(rho)[labels]
        log_q, kl_flow = -entropy, 0.0
        for t, (ld, zt) in enumerate(zip(log_dets, codes), 1):
            log_q = log_q - ld
            v = 1 + 2 * d * t
            log_p = -0.5 * D * torch.log(2 * math.pi * v) - zt.pow(2).sum(1) / (2 * v)
            kl_flow = kl_flow + (log_q - log_p).mean()
        pinn = pinn / T + ic
        loss = recon + kl + kl_flow + pinn
        values = [v.item() for v in (loss, recon, kl, kl_flow, pinn)]
        if not all(math.isfinite(v) for v in values):
            raise RuntimeError(f"non-finite loss terms {values}")
        loss.backward()
        opt_vae.step()
        opt_rest.step()

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--laplacian", choices=["exact", "rowsum"], default="exact")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    step = make_step(a)
    step()
    times = []
    for _ in range(a.reps):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "pytorch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "laplacian": a.laplacian,
        "batch": B, "steps": T, "k": K,
        "train_iter_ms": statistics.median(times),
    }))


if __name__ == "__main__":
    main()
