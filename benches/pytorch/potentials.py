"""The `train_iter_ms` figure of `latentflow bench potentials`, for the same iteration in PyTorch.

Mirrors `potential_bench` (src/bench.rs) and `PotentialTrainer::step`
(src/train/potentials.rs) with that bench's settings: d = 128, K = 8 PDE potentials
(hidden 128, time embedding 32, u = tanh(v)), T = 5 steps, batch 32 in 4 groups of 8
(`groups` default 4), log-form L_J, no negative steps, all loss weights 1, Adam lr 1e-4
(the lr `PotentialTrainer::new` is given) for the potentials and for the classifier.

One iteration (one call of `step`):
 1. draw a permutation of the K potentials (the first 4 label the groups) and one step
    t in [0, T) for the whole batch;
 2. per group (8 codes z_0 ~ N(0, I), potential k): roll z_0 for t steps along ∇u^k
    without gradient; L_u = mean_b ‖∇u^k(z_0, 0)‖²; at (z_t, t) ∇u, ∂_t u, ∂²_t u and
    Δ_z u with a graph back to the weights; L_f = mean (∂²_t u − c_k² Δ_z u)²; the step
    ∇u(z_t, t); L_u and L_f weighted by 8/32 and summed;
 3. on the concatenated batch (32): (G(z_t), J_G(z_t)·∇u) by one forward-mode pass
    through the generator; L_J = −mean log(‖J_G ∇u‖² + 1e-6) (sum over the 3·64·64 pixels);
 4. x_next = G(z_t + ∇u) (with gradient); classifier on cat(G(z_t).detach(), x_next) on
    the channel axis; L_k = cross-entropy, and the accuracy;
 5. loss = L_u + L_f + L_J + L_k; the terms read back as Python floats; backward;
    one Adam step over all potential weights (stacked (K, ...) tensors, so every k's slot
    and the wave speeds c are updated) and one over the classifier.

Networks (PyTorch layouts and default initialisation, random weights: timing only):
 - generator (DCGAN, GeneratorConfig::new(Gan, 128, 3), base 64): z as 128×1×1,
   ConvT(128→512, 4, s1, p0) → 4×4, ConvT(512→256) 8×8, ConvT(256→128) 16×16,
   ConvT(128→64) 32×32 (each 4×4 / s2 / p1, followed by BatchNorm2d in eval mode and
   ReLU), ConvT(64→3) 64×64, tanh, then 0.5·y + 0.5;
 - potential k: h_z = tanh(W_z z + b_z), h_t = W_t2 GELU(W_t1 [sin tω, cos tω] + b_t1)
   + b_t2 with ω_i = 10000^(−i/15), i < 16; v = w_2·tanh(W_1 (h_z + h_t) + b_1) + b_2;
 - classifier: Conv(6→16, 5, s2, p2), ReLU, Conv(16→32, 5, s2, p2), ReLU, MaxPool 2,
   Linear(2048→128), ReLU, Linear(128→8).

Deliberate differences from latentflow's iteration:
 - Derivatives of u by autograd (what a PyTorch user writes; latentflow carries them
   forward in one pass). ∇_z u and ∂_t u: one `autograd.grad` with create_graph; ∂²_t u:
   a second one. Δ_z u (`--laplacian`): `exact` (default) is the trace of the full
   per-sample Hessian from torch.func, vmap(jacfwd(jacrev(u))) (forward-over-reverse,
   d = 128 tangents vectorised; it re-runs u's forward inside), the exact value latentflow
   computes and differentiable to the weights; about 2x faster here than the d backward
   passes batched by `autograd.grad(..., is_grads_batched=True)`, and far faster than a
   Python loop of d backward passes. `hutchinson` is one Rademacher probe εᵀHε (one
   double-backward, an unbiased estimate); `rowsum` is what the paper's reference code
   (KingJamesSong/PDETraversal, lib/WavePDE.py) computes, grad(∇u·1) = H·1 (the Hessian's
   row sums, broadcast against ∂²_t u over d). The last two cost the same, ~20-50 ms less per
   iteration than `exact` here. The roll-out gradients use autograd.grad without a graph
   (latentflow: a hand-written reverse sweep).
 - JVP (`--jvp`): `fwad` (default) is forward-mode AD with dual tensors
   (torch.autograd.forward_ad), differentiable in the backward pass as latentflow's
   tangent pass is; `func` is torch.func.jvp (same machinery); `double` is the
   double-backward trick of torch.autograd.functional.jvp (what the reference code calls).
   fwad was the fastest or tied here (double: ~5% slower with generator gradients, ~35%
   slower with a frozen generator).
 - Generator weights: frozen, as in a real training run (and in latentflow's bench,
   which freezes its fresh generator as a loaded checkpoint is). Until 2026-12 latentflow's
   bench left them trainable, so its backward also computed the unused gradients of every
   generator weight through both generator passes; `--generator-grads` reproduces that
   protocol (requires_grad on, never stepped, reset each iteration).
 - Random numbers: torch's generator instead of ChaCha8 (the draws of t and the groups
   differ; t varies per iteration in both, so both figures are medians over t).

Prints one JSON line: train_iter_ms (median), pytorch_version, threads and the options.
Usage: python benches/pytorch/potentials.py [--threads 2] [--reps 10] [--laplacian exact]
       [--jvp fwad] [--generator-grads]
Not needed to build or test latentflow.
"""
import argparse, json, math, statistics, time, warnings

warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation noise
import torch
from torch import nn
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F

D, K, H, E, STEPS, BATCH, GROUPS, LR = 128, 8, 128, 32, 5, 32, 4, 1e-4


class Generator(nn.Module):
    def __init__(self, latent=D, channels=3, base=64, stages=4):
        super().__init__()
        layers, cin = [], latent
        for i in range(stages + 1):
            last = i == stages
            cout = channels if last else base << min(stages - 1 - i, 4)
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers.append(nn.ConvTranspose2d(cin, cout, 4, stride, pad))
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.net = nn.Sequential(*layers, nn.Tanh())

    def forward(self, z):
        return 0.5 * self.net(z.view(z.shape[0], -1, 1, 1)) + 0.5


class Potentials(nn.Module):
    """K MLP potentials as stacked (K, ...) tensors, as latentflow stores them."""

    def __init__(self):
        super().__init__()
        def p(shape, fan_in):
            return nn.Parameter(torch.empty(shape).uniform_(-fan_in ** -0.5, fan_in ** -0.5))
        self.wz, self.bz = p((K, H, D), D), p((K, H), D)
        self.wt1, self.bt1 = p((K, H, E), E), p((K, H), E)
        self.wt2, self.bt2 = p((K, H, H), H), p((K, H), H)
        self.w1, self.b1 = p((K, H, H), H), p((K, H), H)
        self.w2, self.b2 = p((K, H), H), p((K,), H)
        self.c = nn.Parameter(torch.ones(K))
        half = E // 2
        self.register_buffer("omega", 10000.0 ** (-torch.arange(half) / (half - 1)))

    def u(self, z, t, k):
        hz = torch.tanh(z @ self.wz[k].T + self.bz[k])
        ph = t[:, None] * self.omega
        e = torch.cat([ph.sin(), ph.cos()], 1)
        ht = F.gelu(e @ self.wt1[k].T + self.bt1[k]) @ self.wt2[k].T + self.bt2[k]
        h1 = torch.tanh((hz + ht) @ self.w1[k].T + self.b1[k])
        return torch.tanh(h1 @ self.w2[k] + self.b2[k])


class PairClassifier(nn.Module):
    def __init__(self, channels=3, size=64, classes=K):
        super().__init__()
        side = math.ceil(math.ceil(size / 2) / 2) // 2
        self.net = nn.Sequential(
            nn.Conv2d(2 * channels, 16, 5, 2, 2), nn.ReLU(),
            nn.Conv2d(16, 32, 5, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * side * side, 128), nn.ReLU(), nn.Linear(128, classes))

    def forward(self, a, b):
        return self.net(torch.cat([a, b], 1))


def laplacian(pot, k, z, t, gz, how):
    """Δ_z u^k at (z, t); gz = ∇_z u with a graph to z (see the module docstring)."""
    if how == "exact":                                  # forward-over-reverse Hessian
        f = lambda zz, tt: pot.u(zz[None], tt[None], k)[0]
        hess = torch.func.vmap(torch.func.jacfwd(torch.func.jacrev(f)))(z, t)
        return torch.diagonal(hess, dim1=1, dim2=2).sum(1)  # (B, d, d) → (B)
    if how == "hutchinson":
        eps = torch.randint(0, 2, z.shape).float() * 2 - 1
        hv, = torch.autograd.grad((gz * eps).sum(), z, create_graph=True)
        return (hv * eps).sum(1)
    hv, = torch.autograd.grad(gz.sum(), z, create_graph=True)      # rowsum: (B, d)
    return hv


def pde_terms(pot, z0, k, t, sign, how):
    b = z0.shape[0]
    time = lambda s: torch.full((b,), float(s))
    z = z0
    for s in range(t):                                   # roll-out, no gradient kept
        zr = z.detach().requires_grad_()
        g, = torch.autograd.grad(pot.u(zr, time(s), k).sum(), zr)
        z = z + sign * g
    z0r = z0.detach().requires_grad_()
    g0, = torch.autograd.grad(pot.u(z0r, time(0), k).sum(), z0r, create_graph=True)
    l_u = g0.pow(2).sum(1).mean()
    zr, tr = z.detach().requires_grad_(), time(t).requires_grad_()
    gz, gt = torch.autograd.grad(pot.u(zr, tr, k).sum(), (zr, tr), create_graph=True)
    gtt, = torch.autograd.grad(gt.sum(), tr, create_graph=True)
    lap = laplacian(pot, k, zr, tr.detach(), gz, how)
    res = (gtt[:, None] if lap.dim() == 2 else gtt) - pot.c[k] ** 2 * lap
    return l_u, res.pow(2).mean(), zr.detach(), sign * gz


def jvp(gen, z, v, how):
    if how == "fwad":
        with fwad.dual_level():
            out = fwad.unpack_dual(gen(fwad.make_dual(z, v)))
        return out.primal, out.tangent
    if how == "func":
        return torch.func.jvp(gen, (z,), (v,))
    return torch.autograd.functional.jvp(gen, z, v, create_graph=True)


def make_step(a):
    torch.manual_seed(0)
    gen, pot, clf = Generator().eval(), Potentials(), PairClassifier()
    gen.requires_grad_(a.generator_grads)
    opt_pot = torch.optim.Adam(pot.parameters(), lr=LR)
    opt_clf = torch.optim.Adam(clf.parameters(), lr=LR)

    def step():
        for opt in (opt_pot, opt_clf):
            opt.zero_grad(set_to_none=True)
        gen.zero_grad(set_to_none=True)
        ks = torch.randperm(K).tolist()
        t, sign = int(torch.randint(0, STEPS, ())), 1.0
        l_u = l_f = torch.zeros(())
        zs, vs, labels = [], [], []
        for g in range(GROUPS):
            size = BATCH // GROUPS + (g < BATCH % GROUPS)
            z0 = torch.randn(size, D)
            lu, lf, zt, v = pde_terms(pot, z0, ks[g], t, sign, a.laplacian)
            l_u, l_f = l_u + lu * (size / BATCH), l_f + lf * (size / BATCH)
            zs.append(zt), vs.append(v), labels.extend([ks[g]] * size)
        z, v = torch.cat(zs), torch.cat(vs)
        x_t, jv = jvp(gen, z, v, a.jvp)
        l_j = -(jv.pow(2).flatten(1).sum(1) + 1e-6).log().mean()
        x_next = gen(z + v)
        labels = torch.tensor(labels)
        logits = clf(x_t.detach(), x_next)
        l_k = F.cross_entropy(logits, labels)
        acc = (logits.argmax(1) == labels).float().mean()
        loss = l_u + l_f + l_j + l_k
        values = [x.item() for x in (loss, l_u, l_f, l_j, l_k, acc, pot.c.mean())]
        if not all(math.isfinite(x) for x in values):
            raise RuntimeError(f"non-finite loss terms {values}")
        loss.backward()
        opt_pot.step()
        opt_clf.step()

    return step


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
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--laplacian", choices=["exact", "hutchinson", "rowsum"], default="exact")
    ap.add_argument("--jvp", choices=["fwad", "func", "double"], default="fwad")
    ap.add_argument("--generator-grads", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ms = median_ms(a.reps, 2, make_step(a))
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}",
        "pytorch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "laplacian": a.laplacian,
        "jvp": a.jvp,
        "generator_grads": a.generator_grads,
        "train_iter_ms": ms,
    }))


if __name__ == "__main__":
    main()
