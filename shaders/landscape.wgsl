// A 2-D slice of one potential u^k(., t): for grid point (i, j) the latent code is
// z = c + a e1 + b e2 with a, b evenly spaced in [-extent, extent], and
// u = [tanh] ( w2 . tanh(W1 (tanh(Wz z + bz) + h_t) + b1) + b2 ).
// h_t (the time branch) is the same for every point, so the host computes it.

struct Params {
    d: u32,
    h: u32,
    n: u32,
    final_tanh: u32,
    extent: f32,
    b2: f32,
    pad0: f32,
    pad1: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
// Wz, row-major (h, d).
@group(0) @binding(1) var<storage, read> wz: array<f32>;
// bz (h), h_t (h), b1 (h), w2 (h).
@group(0) @binding(2) var<storage, read> vecs: array<f32>;
// W1, row-major (h, h).
@group(0) @binding(3) var<storage, read> w1: array<f32>;
// c (d), e1 (d), e2 (d).
@group(0) @binding(4) var<storage, read> plane: array<f32>;
// u at every grid point, row j, column i: index j * n + i.
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.x;
    if (idx >= p.n * p.n) {
        return;
    }
    let i = idx % p.n;
    let j = idx / p.n;
    let span = 2.0 * p.extent / f32(max(p.n, 2u) - 1u);
    let a = -p.extent + span * f32(i);
    let b = -p.extent + span * f32(j);
    var z: array<f32, 256>;
    for (var q = 0u; q < p.d; q++) {
        z[q] = plane[q] + a * plane[p.d + q] + b * plane[2u * p.d + q];
    }
    var g: array<f32, 256>;
    for (var m = 0u; m < p.h; m++) {
        var s = vecs[m];
        for (var q = 0u; q < p.d; q++) {
            s += wz[m * p.d + q] * z[q];
        }
        g[m] = tanh(s) + vecs[p.h + m];
    }
    var v = p.b2;
    for (var r = 0u; r < p.h; r++) {
        var s = vecs[2u * p.h + r];
        for (var m = 0u; m < p.h; m++) {
            s += w1[r * p.h + m] * g[m];
        }
        v += vecs[3u * p.h + r] * tanh(s);
    }
    if (p.final_tanh != 0u) {
        v = tanh(v);
    }
    out[idx] = v;
}
