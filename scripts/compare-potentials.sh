#!/usr/bin/env bash
# The fair comparison of PDE potentials and the linear baseline (issue 9's protocol):
# the same objective terms where they apply (the diversity term for both), the same
# iterations and batch, three training seeds per method, VP at a matched path length
# (mean ‖z_T − z_0‖ = 4) with 10,000 pairs, the diversity, and the factor score at a
# matched length 1 (a small edit; at length 4 every factor changes about as much as between
# two random images, for every method) when a factor regressor is beside the model. Prints one line per run and a summary per method
# (mean ± population std over the training seeds).
#
#   scripts/compare-potentials.sh models/scenes-vae 6 [OUT] [ITERS]
#
# OUT (default: a new temporary folder) receives the trained sets and the JSON results;
# runs and VP scores already in OUT are reused.
set -euo pipefail

model=${1:?usage: $0 MODEL_DIR K [OUT] [ITERS]}
k=${2:?usage: $0 MODEL_DIR K [OUT] [ITERS]}
out=${3:-$(mktemp -d)}
iters=${4:-1000}
lf=${LATENTFLOW:-target/release/latentflow}
mkdir -p "$out"
name=$(basename "$model")
for kind in pde linear; do
    for seed in 1 2 3; do
        run="$out/$name-$kind-$seed"
        if [ ! -f "$run/manifest.json" ]; then
            "$lf" train-potentials --generator "$model" --kind "$kind" --k "$k" --steps 10 \
                --iters "$iters" --batch-size 16 --seed "$seed" --out "$run" >"$run.train.log" 2>&1
        fi
        "$lf" eval diversity --model "$model" --potentials "$run" 2>/dev/null >"$run.div.json"
        # The VP score is the slow part (minutes per run): kept from an earlier call.
        if [ ! -s "$run.vp.json" ]; then
            "$lf" eval vp --model "$model" --potentials "$run" --pairs 10000 --seeds 0 \
                --match-length 4 2>/dev/null >"$run.vp.json"
        fi
        if "$lf" eval factors --model "$model" --potentials "$run" --match-length 1 \
            2>/dev/null >"$run.factors.json"; then :; else rm -f "$run.factors.json"; fi
        echo "$name $kind seed $seed: $(python3 - "$run" <<'EOF'
import json, sys
run = sys.argv[1]
div = json.load(open(run + ".div.json"))
vp = json.load(open(run + ".vp.json"))
line = f"max|cos| {div['max_abs_cosine']:.3f}  VP {vp['vp_mean']:.4f}"
try:
    f = json.load(open(run + ".factors.json"))
    line += f"  share {f['mean_share']:.3f}  main factors {f['distinct_main_factors']}"
except FileNotFoundError:
    pass
print(line)
EOF
)"
    done
done
python3 - "$out" "$name" <<'EOF'
import json, os, statistics, sys
out, name = sys.argv[1], sys.argv[2]
def stat(xs):
    return f"{statistics.mean(xs):.3f} ± {statistics.pstdev(xs):.3f}"
for kind in ["pde", "linear"]:
    runs = [os.path.join(out, f"{name}-{kind}-{s}") for s in (1, 2, 3)]
    vp = [json.load(open(r + ".vp.json"))["vp_mean"] for r in runs]
    cos = [json.load(open(r + ".div.json"))["max_abs_cosine"] for r in runs]
    line = f"{name} {kind}: VP {stat(vp)}  max|cos| {stat(cos)}"
    if all(os.path.exists(r + ".factors.json") for r in runs):
        f = [json.load(open(r + ".factors.json")) for r in runs]
        line += f"  share {stat([x['mean_share'] for x in f])}"
        line += f"  main factors {stat([x['distinct_main_factors'] for x in f])}"
    print(line)
EOF
