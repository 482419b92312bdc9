#!/usr/bin/env python3
"""Writes tests/fixtures/tiny-vae.pth: a PyTorch-format state dict (torch.save's zip layout,
pickle protocol 2) for the built-in VAE with latent 2, 1 channel, base 4, 64x64, without
needing PyTorch. Tensor names and shapes come from a latentflow manifest; every value is
0.001 * (index within the tensor) - 0.05 * (tensor number), so a test can check them. Names
carry PyTorch's DataParallel prefix "module." and one extra "num_batches_tracked" counter,
both of which latentflow must drop.

Usage: python3 scripts/make_pth_fixture.py MANIFEST.json OUT.pth
(the manifest of `latentflow train-generator --dataset sprites --latent 2 --base 4 ...`).
"""
import collections, io, json, pickle, struct, sys, types, zipfile

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils

class FloatStorage: pass
class LongStorage: pass
for cls in (FloatStorage, LongStorage):
    cls.__module__ = "torch"
    setattr(torch, cls.__name__, cls)

def _rebuild_tensor_v2(*args): raise RuntimeError("never called")
_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2

class Storage:
    def __init__(self, key, kind, numel): self.key, self.kind, self.numel = key, kind, numel

class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape
    def __reduce__(self):
        stride, acc = [], 1
        for s in reversed(self.shape):
            stride.insert(0, acc); acc *= s
        return (_rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None

def main(manifest_path, out):
    tensors = json.load(open(manifest_path))["tensors"]
    state, blobs = collections.OrderedDict(), {}
    for i, (name, info) in enumerate(sorted(tensors.items())):
        n = 1
        for s in info["shape"]: n *= s
        values = [0.001 * j - 0.05 * i for j in range(n)]
        key = str(i)
        blobs[key] = struct.pack(f"<{n}f", *values)
        state["module." + name] = Tensor(Storage(key, FloatStorage, n), info["shape"])
    key = str(len(blobs))
    blobs[key] = struct.pack("<q", 7)
    state["module.encoder.bn.num_batches_tracked"] = Tensor(Storage(key, LongStorage, 1), [])
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for k, b in blobs.items():
            z.writestr(f"archive/data/{k}", b)
        z.writestr("archive/version", "3\n")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
