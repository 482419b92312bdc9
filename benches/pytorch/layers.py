"""The figures of `cargo bench --bench layers`, for the same layers in PyTorch.

The scenes VAE's 4x4 / stride-2 convolutions and transposed convolutions one at a time,
batch 32: forward, and forward plus the backward pass of `sum(y)` with all three
gradients (input, kernel, bias). Prints one line per layer (median ms) and the sums.
Usage: python benches/pytorch/layers.py [--reps 40] [--threads 2]
Not needed to build or test latentflow.
"""
import argparse, statistics, time

import torch
import torch.nn.functional as F

CONVS = [(3, 32, 64), (32, 32, 32), (32, 64, 16), (64, 64, 8)]
DECONVS = [(64, 64, 4), (64, 32, 8), (32, 32, 16), (32, 3, 32)]


def median_ms(reps, f):
    for _ in range(3):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    n, total_f, total_b = 32, 0.0, 0.0
    for transposed, shapes in [(False, CONVS), (True, DECONVS)]:
        for cin, cout, side in shapes:
            x = torch.randn(n, cin, side, side, requires_grad=True)
            w = (0.1 * torch.randn(*((cin, cout) if transposed else (cout, cin)), 4, 4)).requires_grad_()
            b = torch.zeros(cout, requires_grad=True)
            op = F.conv_transpose2d if transposed else F.conv2d

            def fwd():
                with torch.no_grad():
                    return op(x, w, b, 2, 1).shape

            def fwd_bwd():
                x.grad = w.grad = b.grad = None
                op(x, w, b, 2, 1).sum().backward()

            f, fb = median_ms(a.reps, fwd), median_ms(a.reps, fwd_bwd)
            total_f += f
            total_b += fb
            name = f"{'deconv' if transposed else 'conv'}_{cin}to{cout}_at{side}"
            print(f"{name:24} forward {f:7.3f} ms  forward_backward {fb:7.3f} ms")
    print(f"{'sum':24} forward {total_f:7.3f} ms  forward_backward {total_b:7.3f} ms")


if __name__ == "__main__":
    main()
