#!/usr/bin/env python3
"""Training and encoding steps of sae (benchmarks/sae_bench) against PyTorch.

    benchmarks/compare_pytorch.py --sae-bench build-bench/benchmarks/sae_bench
        [--threads 2] [--rounds 3] [--configs all|main|scaling|NAME,...] [--quick] [--json out.json]
        [--sae-only] [--fma-peak PATH] [--openblas-coretype NAME]
    benchmarks/compare_pytorch.py --sae-bench ... --model SAE_DIR --data acts.npy [--batch B]

For each configuration the two sides run alternately, --rounds times: sae_bench
as a subprocess (its last stdout line is a JSON object), then the same step in
PyTorch in this process, at the same sizes, with the same initialisation
distributions, warm-up and step counts. Each side's figure is the median over
rounds of its median ms/step; ratio = sae tokens/s / PyTorch tokens/s. The ratio
of each side's fastest step over all rounds is printed beside it: on a shared
machine, where neighbours only ever add time, it is the steadier estimate of
what the steps cost (the targets are judged on the medians).

The PyTorch steps:
  relu    the seed: f = relu(x W_enc + b_enc), x^ = f W_dec + b_dec,
          loss = ((x^ - x)^2).sum(-1).mean() + l1 * f.sum(), backward, Adam.
  topk    as dictionary_learning's AutoEncoderTopK: relu((x - b_dec) W_enc + b_enc),
          topk(k, sorted=False), scatter into zeros, dense decoder, loss =
          ((x^ - x)^2).sum(-1).mean(), backward, Adam (AuxK is 0 without dead latents).
  encode  inference: relu(x W_enc + b_enc) under no_grad, into a reused buffer;
          encode_sparse the same with b_enc set for L0 = 64, as a trained SAE's;
          encode_jumprelu a JumpReLU SAE's (Gemma Scope's) inference, b_enc 0 and the
          thresholds set for L0 = 64: addmm, then codes *= (codes > threshold);
          encode_topk a TopK SAE's (sparsify's) inference, k = 32 of 16384: addmm of
          x - b_dec, topk(k, sorted=False), scatter of the relu'd values into zeros.
  encode_model  with --model and --data, a published SAE's encode of real activations
          (sae_bench --model: sae::load_pretrained's model, as loaded); forward_model
          the same encode, then the reconstruction from the codes (sae's decode;
          PyTorch's addmm(b_dec, codes, W_dec), SAELens' decode). These two are the
          configurations run unless --configs names others. This script reads the
          same files with NumPy alone (safetensors parsed here: F16, BF16, F32, F64
          as float32; Gemma Scope's params.npz with numpy.load) and encodes by the
          producer's rule, under no_grad into reused buffers, a = x - b_dec when
          the file says so (SAELens' apply_b_dec_to_input; sparsify always; Gemma
          Scope never):
            SAELens standard       relu(addmm(b_enc, a, W_enc))
            SAELens jumprelu,      pre = addmm(b_enc, a, W_enc); pre * (pre > threshold)
              Gemma Scope
            SAELens topk, sparsify topk(k, sorted=False) of addmm(b_enc, a, W_enc), relu'd,
                                   scattered into zeros (sparsify: W_enc = encoder.weight^T,
                                   b_enc = encoder.bias)
            SAELens gated          h = a W_enc; relu(h * exp(r_mag) + b_mag) * (h + b_gate > 0)
          Step i encodes rows iB .. iB + B - 1 of the file modulo its row count (B 4096, or
          the row count if smaller; --batch sets it), copied in outside the timing on both
          sides. Before timing, sae_bench writes its codes of the first batch
          (--codes-out) and they must agree with PyTorch's: within a worst-case float32
          rounding bound on the common support, and the same support except at entries
          within that bound of the cut (0, the threshold, a token's k-th largest). Else
          exit status 1. No targets.
The biases are added by addmm (what nn.Linear does); gradients are reset with
zero_grad(set_to_none=True) (no memset and no accumulation pass; measured no slower
than set_to_none=False here); Adam is torch.optim.Adam(foreach=False), 1.13's CPU
default. Each training step gets a fresh batch of standard normals, drawn outside
the timing, on both sides.

Before and after the steps it runs sae_fma_peak (built beside sae_bench) to
measure the cores' FP32 multiply-add peak, and after the table prints the dense
steps' GFLOP/s on both sides as a share of the higher reading (a ceiling: a
neighbour on the shared machine can only pull a reading down): the room any
GEMM could have left.

Both sides may run OpenBLAS (PyTorch always does; sae with SAE_USE_BLAS), whose
Debian build picks its kernels by CPU model when it loads, unless the environment's
OPENBLAS_CORETYPE names them (one of our machines set it to Haswell: AVX2 kernels
on an AVX-512 CPU, half the speed of OpenBLAS's own choice there). The script
prints each side's kernels and warns when they are narrower than the CPU;
--openblas-coretype NAME sets OPENBLAS_CORETYPE for both sides alike, and
--openblas-coretype '' removes it, leaving the choice to OpenBLAS.

Needs Debian's python3-torch (call it as /usr/bin/python3), except with --sae-only. Exit status: 0 when
every step ran (whether or not the targets were met: the table says), 1 on an
error, 77 with --skip-without-torch when torch cannot be imported.
"""

import argparse
import ctypes
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

# ---------------------------------------------------------------------------
# Configurations

# The library's targets against PyTorch: sae tokens/s >= target x torch tokens/s.
# The scaling configurations (relu_sparse and topk32 at 2x and 4x the batch or the
# dictionary) are judged on linearity instead: time per step at factor s, divided
# by s x the time at the base size, at most 1 + LINEARITY_TOLERANCE.
LINEARITY_TOLERANCE = 0.10

# A sparse ReLU model (b_enc set for L0 = 64) trained at the seed's lr 1e-3 loses
# most of its active codes within ten steps (the L1 term pushes them below zero);
# at lr 1e-5 it stays at L0 ~ 64, like a trained SAE, and the step does the same work.
SPARSE_LR = 1e-5


def config(name, arch, mode="train", d=768, f=8192, batch=1024, k=None, target_l0=None, lr=1e-3, l1=1e-3,
           steps=10, warmup=3, target=None, base=None, scale=None, group="main", model=None, data=None):
    return dict(name=name, arch=arch, mode=mode, d=d, f=f, batch=batch, k=k, target_l0=target_l0, lr=lr, l1=l1,
                steps=steps, warmup=warmup, target=target, base=base, scale=scale, group=group, model=model,
                data=data)


def realistic_configs():
    main = [
        config("relu_fresh", "relu", target=1.25),
        config("relu_sparse", "relu", target_l0=64, lr=SPARSE_LR, target=4.0),
        config("topk32", "topk", k=32, target=5.0),
        config("encode", "relu", mode="encode", batch=4096, f=16384, steps=5, warmup=2, target=1.15),
        # A trained SAE's encode: b_enc set for L0 = 64 of 16384 (sae screens its codes in bfloat16 on
        # CPUs with AVX-512 BF16, and only sums exactly what the bound cannot settle).
        config("encode_sparse", "relu", mode="encode", batch=4096, f=16384, target_l0=64, steps=5, warmup=2,
               target=1.15),
        # The same for a JumpReLU SAE, as Gemma Scope's: the thresholds set for L0 = 64 (no target).
        config("encode_jumprelu", "jumprelu", mode="encode", batch=4096, f=16384, target_l0=64, steps=5, warmup=2),
        # A TopK SAE's, as sparsify's, k 32 (sae screens it in bfloat16 too; no target).
        config("encode_topk", "topk", mode="encode", batch=4096, f=16384, k=32, steps=5, warmup=2),
    ]
    return main + scaling_configs(main, batches=(2048, 4096), dicts=(16384, 32768), steps=5, warmup=2)


def quick_configs():
    """Tiny sizes for a smoke test (targets are not judged)."""
    main = [
        config("relu_fresh", "relu", d=32, f=128, batch=64, steps=2, warmup=1),
        config("relu_sparse", "relu", d=32, f=128, batch=64, target_l0=8, lr=SPARSE_LR, steps=2, warmup=1),
        config("topk32", "topk", d=32, f=128, batch=64, k=8, steps=2, warmup=1),
        config("encode", "relu", mode="encode", d=32, f=256, batch=128, steps=2, warmup=1),
        config("encode_sparse", "relu", mode="encode", d=32, f=256, batch=128, target_l0=8, steps=2, warmup=1),
        config("encode_jumprelu", "jumprelu", mode="encode", d=32, f=256, batch=128, target_l0=8, steps=2, warmup=1),
        config("encode_topk", "topk", mode="encode", d=32, f=256, batch=128, k=8, steps=2, warmup=1),
    ]
    return main + scaling_configs(main, batches=(128, 256), dicts=(256, 512), steps=2, warmup=1)


def model_configs(model, data, data_rows, batch, quick):
    """encode_model and forward_model: the loaded SAE `model` (load_pretrained_numpy) on the rows of
    the file `data`."""
    default = 64 if quick else 4096
    batch = batch or min(default, data_rows)
    steps, warmup = (2, 1) if quick else (5, 2)
    return [config(mode + "_model", model["arch"], mode=mode, d=model["d"], f=model["f"], batch=batch,
                   k=model["k"], steps=steps, warmup=warmup, model=model["path"], data=data)
            for mode in ("encode", "forward")]


def scaling_configs(main, batches, dicts, steps, warmup):
    """relu_sparse and topk32 at 2x and 4x the batch and the dictionary."""
    out = []
    for base in (c for c in main if c["name"] in ("relu_sparse", "topk32")):
        for dim, values in (("batch", batches), ("f", dicts)):
            for value in values:
                c = dict(base, steps=steps, warmup=warmup, target=None, base=base["name"], group="scaling")
                c[dim] = value
                c["scale"] = (dim, value / base[dim])
                c["name"] = "%s_%s%d" % (base["name"], "b" if dim == "batch" else "f", value)
                out.append(c)
    return out


def describe(c):
    s = "%s %s D=%d F=%d B=%d" % (c["arch"], c["mode"], c["d"], c["f"], c["batch"])
    if c["k"]:
        s += " k=%d" % c["k"]
    if c["target_l0"]:
        s += " L0=%g" % c["target_l0"]
    return s


# ---------------------------------------------------------------------------
# The sae side: sae_bench in a subprocess


def run_sae(sae_bench, c, threads, seed, extra=()):
    if c["model"]:  # sizes and architecture are the file's
        args = [sae_bench, "--mode", c["mode"], "--model", c["model"], "--data", c["data"], "--batch", str(c["batch"]),
                "--steps", str(c["steps"]), "--warmup", str(c["warmup"]), "--threads", str(threads), "--seed", str(seed)]
    else:
        args = [sae_bench, "--arch", c["arch"], "--mode", c["mode"], "--d", str(c["d"]), "--f", str(c["f"]),
                "--batch", str(c["batch"]), "--steps", str(c["steps"]), "--warmup", str(c["warmup"]),
                "--lr", repr(c["lr"]), "--l1", repr(c["l1"]), "--threads", str(threads), "--seed", str(seed)]
    if c["k"] and not c["model"]:
        args += ["--k", str(c["k"])]
    if c["target_l0"]:
        args += ["--target-l0", repr(c["target_l0"])]
    args += list(extra)
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError("sae_bench failed (exit %d): %s\n%s" % (done.returncode, " ".join(args), done.stderr))
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("sae_bench printed nothing: " + " ".join(args))
    return json.loads(lines[-1])


def run_fma_peak(path, threads):
    """The measured FP32 multiply-add peak (GFLOP/s) on `threads` threads, or None."""
    if not path:
        return None
    done = subprocess.run([path, "--threads", str(threads)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError("sae_fma_peak failed (exit %d): %s" % (done.returncode, done.stderr.strip()))
    return json.loads(done.stdout.strip().splitlines()[-1])["gflops"][str(threads)]


# ---------------------------------------------------------------------------
# A published SAE (--model), read with NumPy alone, as sae::load_pretrained reads it
# (include/sae/io/pretrained.hpp): no safetensors package, so that a reader of ours
# checks the file's bytes independently of sae's.

# safetensors dtypes as NumPy reads their bytes (BF16: the top half of a float32).
SAFETENSORS_DTYPES = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}


def read_safetensors(np, path):
    """Every tensor of a .safetensors file as a float32 array: an 8-byte little-endian header
    length, that many bytes of JSON ({name: {dtype, shape, data_offsets}}, maybe __metadata__),
    then the raw little-endian data, offsets relative to its start."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise RuntimeError("%s: too short for a safetensors file" % path)
    n = int.from_bytes(raw[:8], "little")
    if 8 + n > len(raw):
        raise RuntimeError("%s: header of %d bytes runs past the end of the file" % (path, n))
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise RuntimeError("%s: header is not JSON (%s)" % (path, e))
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise RuntimeError("%s: tensor '%s' is %s; F16, BF16, F32 and F64 are read" % (path, name, dtype))
        itemsize = np.dtype(SAFETENSORS_DTYPES[dtype]).itemsize
        count = math.prod(shape)
        if not (0 <= begin <= end <= len(raw) - 8 - n) or end - begin != count * itemsize:
            raise RuntimeError("%s: tensor '%s' has offsets [%d, %d) that do not hold %s x %s"
                               % (path, name, begin, end, shape, dtype))
        a = np.frombuffer(raw, dtype=SAFETENSORS_DTYPES[dtype], count=count, offset=8 + n + begin)
        if dtype == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = a.astype(np.float32).reshape(shape)
    return tensors


def load_pretrained_numpy(path):
    """The SAE at `path` (a folder or its weights file; SAELens, sparsify or Gemma Scope) as
    float32 arrays W_enc [D, F], b_enc [F], W_dec [F, D], b_dec [D] (+ threshold, or r_mag and b_mag), with
    arch (sae's name: relu, jumprelu, topk, gated), k and apply_b_dec: its encode rule."""
    try:
        import numpy as np
    except ImportError as e:
        raise RuntimeError("--model needs NumPy (%s); Debian: python3-numpy, with /usr/bin/python3" % e)
    layout, weights = None, None
    if os.path.isfile(path):
        base = os.path.basename(path)
        layout = ("gemmascope" if path.endswith(".npz") else "saelens" if base == "sae_weights.safetensors"
                  else "sparsify" if base == "sae.safetensors" else None)
        weights, folder = path, os.path.dirname(path) or "."
    else:
        folder = path
        for name, kind in (("sae_weights.safetensors", "saelens"), ("sae.safetensors", "sparsify"),
                           ("params.npz", "gemmascope")):
            if os.path.isfile(os.path.join(path, name)):
                layout, weights = kind, os.path.join(path, name)
                break
    if layout is None:
        raise RuntimeError("%s: no SAE found (sae_weights.safetensors, sae.safetensors or params.npz)" % path)

    def cfg_of(folder):
        with open(os.path.join(folder, "cfg.json")) as f:
            return json.load(f)

    m = dict(path=path, layout=layout, k=None, threshold=None, r_mag=None, b_mag=None)
    if layout == "gemmascope":
        with np.load(weights) as npz:
            t = {name: npz[name].astype(np.float32) for name in npz.files}
        m.update(arch="jumprelu", apply_b_dec=False, W_enc=t["W_enc"], b_enc=t["b_enc"], W_dec=t["W_dec"],
                 b_dec=t["b_dec"], threshold=t["threshold"])
    elif layout == "sparsify":
        cfg, t = cfg_of(folder), read_safetensors(np, weights)
        if cfg.get("activation", "topk") != "topk" or cfg.get("skip_connection") or cfg.get("transcode"):
            raise RuntimeError("%s: only sparsify's plain topk SAEs are supported" % path)
        m.update(arch="topk", apply_b_dec=True, k=int(cfg["k"]), W_enc=np.ascontiguousarray(t["encoder.weight"].T),
                 b_enc=t["encoder.bias"], W_dec=t["W_dec"], b_dec=t["b_dec"])
    else:
        cfg, t = cfg_of(folder), read_safetensors(np, weights)
        architecture, k = cfg.get("architecture"), cfg.get("k")
        if not architecture:  # SAELens before 6
            fn = cfg.get("activation_fn_str") or "relu"
            architecture = "standard" if fn == "relu" else fn
            k = (cfg.get("activation_fn_kwargs") or {}).get("k", k)
        if (cfg.get("normalize_activations") or "none") != "none":
            raise RuntimeError("%s: normalize_activations is %r, not 'none'" % (path, cfg["normalize_activations"]))
        arch = {"standard": "relu", "jumprelu": "jumprelu", "topk": "topk", "gated": "gated"}.get(architecture)
        if arch is None:
            raise RuntimeError("%s: architecture %r is not supported" % (path, architecture))
        apply_b_dec = cfg.get("apply_b_dec_to_input")
        m.update(arch=arch, apply_b_dec=(arch != "jumprelu") if apply_b_dec is None else bool(apply_b_dec),
                 k=int(k) if arch == "topk" else None, W_enc=t["W_enc"],
                 b_enc=t["b_gate" if arch == "gated" else "b_enc"], W_dec=t["W_dec"], b_dec=t["b_dec"],
                 threshold=t.get("threshold"),
                 r_mag=t.get("r_mag"), b_mag=t.get("b_mag"))
    m["d"], m["f"] = m["W_enc"].shape
    return m


def load_activations(path, d):
    """--data as a C-order float32 array [N, D], as sae::load_npy<float> gives it."""
    import numpy as np
    a = np.load(path, mmap_mode="r")
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] != d:
        raise RuntimeError("%s: the activations are %s, expected [N, D = %d] (the model's)" % (path, a.shape, d))
    return np.array(a, dtype=np.float32, order="C")  # a copy in memory (torch wants it writable)


# What --model and --data loaded, by path (the configurations hold only the paths).
LOADED = {}


# ---------------------------------------------------------------------------
# The PyTorch side, in this process


def normal_quantile(p):
    return statistics.NormalDist().inv_cdf(p)


class TorchModel:
    """W_enc [D, F], b_enc [F], W_dec [F, D], b_dec [D] (and a JumpReLU's threshold [F]),
    initialised as sae's model is."""

    def __init__(self, torch, c, generator):
        d, f = c["d"], c["f"]
        if c["arch"] == "relu":
            # nn.Linear's default (sae::Init::LinearDefault): U(+-1/sqrt(fan_in)).
            def uniform(shape, fan_in):
                bound = 1.0 / math.sqrt(fan_in)
                return torch.empty(*shape).uniform_(-bound, bound, generator=generator)

            W_enc, b_enc = uniform((d, f), d), uniform((f,), d)
            W_dec, b_dec = uniform((f, d), f), uniform((d,), f)
            if c["target_l0"]:
                # As sae_bench: latent f fires for a fraction L/F of standard-normal inputs.
                b_enc = W_enc.norm(dim=0) * normal_quantile(c["target_l0"] / f)
        else:
            # Tied (sae::Init::Tied): decoder rows in random directions with norm 0.1, W_enc = W_dec^T.
            W_dec = torch.randn(f, d, generator=generator)
            W_dec *= 0.1 / W_dec.norm(dim=1, keepdim=True)
            W_enc = W_dec.t().contiguous()
            b_enc, b_dec = torch.zeros(f), torch.zeros(d)
        if c["arch"] == "jumprelu":
            # As sae_bench: b_enc 0, and latent f passes its threshold for a fraction L/F of
            # standard-normal inputs (else dictionary_learning's initial 0.001).
            self.threshold = (-W_enc.norm(dim=0) * normal_quantile(c["target_l0"] / f) if c["target_l0"]
                              else torch.full((f,), 0.001))
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = (
            torch.nn.Parameter(t.contiguous()) for t in (W_enc, b_enc, W_dec, b_dec))

    def parameters(self):
        return [self.W_enc, self.b_enc, self.W_dec, self.b_dec]


def pretrained_encode(torch, c):
    """encode_model's and forward_model's step: the batch x, load_batch(i) (step i's rows into x, as
    sae_bench --data takes them) and step(), the file's encode rule under no_grad into reused buffers
    (forward: then the reconstruction, addmm(b_dec, codes, W_dec), as SAELens' decode), which
    returns the codes."""
    m = {name: torch.from_numpy(v) if hasattr(v, "shape") else v for name, v in LOADED[c["model"]].items()}
    data = torch.from_numpy(LOADED[c["data"]])
    batch, rows = c["batch"], data.shape[0]
    x = torch.empty(batch, c["d"])
    a = torch.empty(batch, c["d"]) if m["apply_b_dec"] else x
    codes = torch.empty(batch, c["f"])
    recon = torch.empty(batch, c["d"]) if c["mode"] == "forward" else None
    pre = torch.empty(batch, c["f"]) if m["arch"] in ("topk", "gated") else None
    magnitude_scale = m["r_mag"].exp() if m["arch"] == "gated" else None
    W_enc, b_enc, b_dec, threshold, k = m["W_enc"], m["b_enc"], m["b_dec"], m["threshold"], m["k"]

    def load_batch(i):
        torch.index_select(data, 0, (torch.arange(batch) + i * batch) % rows, out=x)

    def step():
        with torch.no_grad():
            if m["apply_b_dec"]:
                torch.sub(x, b_dec, out=a)
            if m["arch"] == "topk":
                torch.addmm(b_enc, a, W_enc, out=pre)
                top = pre.topk(k, sorted=False, dim=-1)
                codes.zero_().scatter_(-1, top.indices, top.values.relu_())
            elif m["arch"] == "gated":
                torch.mm(a, W_enc, out=pre)
                torch.addcmul(m["b_mag"], pre, magnitude_scale, out=codes).relu_()
                codes.mul_(pre.add_(b_enc) > 0)  # b_enc is SAELens' b_gate
            else:
                torch.addmm(b_enc, a, W_enc, out=codes)
                if m["arch"] == "jumprelu":
                    codes.mul_(codes > threshold)
                else:
                    codes.relu_()
            if recon is not None:
                torch.addmm(b_dec, codes, m["W_dec"], out=recon)
        return codes

    return x, load_batch, step


def check_pretrained_codes(torch, c, sae_codes, torch_codes, x):
    """Raises RuntimeError unless sae's codes of the batch x agree with PyTorch's: within a
    worst-case float32 rounding bound of the products (2 (D + 2) u (|a| |W_enc| + |bias|), the two
    sums in different orders) on the common support, and the same support except where the value
    the rule compares (to 0, the threshold, a token's k-th largest) is within that bound of it.
    Returns a line that says how close they are."""
    m = {name: torch.from_numpy(v) if hasattr(v, "shape") else v for name, v in LOADED[c["model"]].items()}
    sae_codes = torch.from_numpy(sae_codes)
    if tuple(sae_codes.shape) != tuple(torch_codes.shape):
        raise RuntimeError("%s: sae's codes are %s, PyTorch's %s" % (c["name"], tuple(sae_codes.shape),
                                                                     tuple(torch_codes.shape)))
    with torch.no_grad():
        a = x - m["b_dec"] if m["apply_b_dec"] else x
        h = (a.double() @ m["W_enc"].double())  # the product, nearly exact: where the decisions are
        magnitude = a.abs() @ m["W_enc"].abs()
        u = 2.0 ** -24
        bound = lambda scale: 2 * (c["d"] + 2) * u * scale
        if m["arch"] == "gated":
            exp_r = m["r_mag"].double().exp()
            tol = bound(magnitude * exp_r + m["b_mag"].abs())
            gate, mag = h + m["b_enc"], h * exp_r + m["b_mag"]
            near = (gate.abs() <= bound(magnitude + m["b_enc"].abs())) | (mag.abs() <= tol)
        else:
            tol = bound(magnitude + m["b_enc"].abs())
            pre = h + m["b_enc"]
            if m["arch"] == "jumprelu":
                near = (pre - m["threshold"]).abs() <= tol
            elif m["arch"] == "topk":
                kth = pre.topk(m["k"], dim=-1).values[:, -1:]
                # Two entries each within tol of their value can trade places.
                near = ((pre - kth).abs() <= 2 * tol) | (pre.abs() <= tol)
            else:
                near = pre.abs() <= tol
        difference = (sae_codes - torch_codes).abs()
        both = (sae_codes != 0) & (torch_codes != 0)
        support_differs = (sae_codes != 0) ^ (torch_codes != 0)
        bad_values = both & (difference > tol)
        bad_support = support_differs & ~near
        common = difference[both].max().item() if both.any() else 0.0
        line = ("%s: sae's and PyTorch's codes of the first batch: max |difference| %.3g on the common "
                "support (%d entries; max %.3g overall), tolerance from %.3g to %.3g; %d entries in one support "
                "only, %d of them near the cut" % (
                    c["name"], common, both.sum().item(), difference.max().item(), tol.min().item(), tol.max().item(),
                    support_differs.sum().item(), (support_differs & near).sum().item()))
        if bad_values.any() or bad_support.any():
            where = (bad_values | bad_support).nonzero()[0].tolist()
            raise RuntimeError("%s\n%s: they DISAGREE: %d values beyond the tolerance, %d support "
                               "differences away from the cut; first at [token %d, latent %d]: sae %.7g, "
                               "PyTorch %.7g" % (line, c["name"], bad_values.sum().item(), bad_support.sum().item(),
                                                 where[0], where[1], sae_codes[where[0], where[1]].item(),
                                                 torch_codes[where[0], where[1]].item()))
    return line


def check_pretrained(args, torch, c):
    """Before encode_model or forward_model is timed: sae_bench's codes of the first batch (--codes-out) against
    those of the PyTorch step that is timed (check_pretrained_codes); prints how close."""
    import tempfile
    import numpy as np
    with tempfile.TemporaryDirectory(prefix="compare_pytorch_") as folder:
        path = os.path.join(folder, "codes.npy")
        run_sae(args.sae_bench, dict(c, steps=1, warmup=0), args.threads, 0, extra=["--codes-out", path])
        sae_codes = np.load(path)
    x, load_batch, step = pretrained_encode(torch, c)
    load_batch(0)
    print(check_pretrained_codes(torch, c, sae_codes, step().clone(), x), flush=True)


def run_torch(torch, c, seed):
    """Warm-up and timed steps of configuration c; ms per timed step and the L0."""
    generator = torch.Generator().manual_seed(seed)
    load_batch = None
    if c["model"]:
        x, load_batch, step = pretrained_encode(torch, c)
    else:
        x, step = torch_step(torch, c, generator)

    times, l0s = [], []
    faults_before = 0
    for i in range(c["warmup"] + c["steps"]):
        if i > 0 and c["mode"] == "train":
            torch.randn(c["batch"], c["d"], generator=generator, out=x)  # a fresh batch, untimed
        if load_batch:
            load_batch(i)  # --data's rows for step i, untimed
        if i == c["warmup"]:
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        codes = step()
        elapsed = time.perf_counter() - start
        if i >= c["warmup"]:
            times.append(elapsed * 1000.0)
            # count_nonzero: (codes != 0).sum() would fault in a bool and an int64 copy of the codes (288 MiB
            # at 4096 x 8192) every step, which the page-fault count below would charge to PyTorch.
            l0s.append(torch.count_nonzero(codes).item() / c["batch"])
    # As sae_bench counts them: first touches of fresh memory, over the timed steps.
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / c["steps"]
    return dict(median_ms=statistics.median(times), mean_ms=statistics.fmean(times), step_ms=times,
                l0=statistics.fmean(l0s), page_faults_per_step=faults)


def torch_step(torch, c, generator):
    """The batch x and the step of configuration c on a fresh model (TorchModel)."""
    model = TorchModel(torch, c, generator)
    x = torch.randn(c["batch"], c["d"], generator=generator)
    l1, k = c["l1"], c["k"]

    if c["mode"] == "encode" and c["arch"] == "topk":
        codes, pre = torch.empty(c["batch"], c["f"]), torch.empty(c["batch"], c["f"])

        def step():
            with torch.no_grad():
                torch.addmm(model.b_enc, x - model.b_dec, model.W_enc, out=pre)
                top = pre.topk(k, sorted=False, dim=-1)
                codes.zero_().scatter_(-1, top.indices, top.values.relu_())
            return codes
    elif c["mode"] == "encode":
        codes = torch.empty(c["batch"], c["f"])

        def step():
            with torch.no_grad():
                torch.addmm(model.b_enc, x, model.W_enc, out=codes)
                if c["arch"] == "jumprelu":
                    codes.mul_(codes > model.threshold)
                else:
                    codes.relu_()
            return codes
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=c["lr"], foreach=False)

        def step():
            if c["arch"] == "relu":
                codes = torch.relu(torch.addmm(model.b_enc, x, model.W_enc))
                recon = torch.addmm(model.b_dec, codes, model.W_dec)
                loss = (recon - x).pow(2).sum(-1).mean() + l1 * codes.sum()
            else:
                post_relu = torch.relu(torch.addmm(model.b_enc, x - model.b_dec, model.W_enc))
                top = post_relu.topk(k, sorted=False, dim=-1)
                codes = torch.zeros_like(post_relu).scatter_(-1, top.indices, top.values)
                recon = torch.addmm(model.b_dec, codes, model.W_dec)
                loss = (recon - x).pow(2).sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return codes

    return x, step


# ---------------------------------------------------------------------------
# Running and reporting


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


def loaded_blas():
    """The BLAS libraries this process has mapped (PyTorch's, once torch is imported)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if re.search(r"lib(open)?blas|libmkl|libblis", os.path.basename(p)))


def openblas_kernels(paths):
    """The kernel family a loaded OpenBLAS chose (openblas_get_corename), or None."""
    for path in paths:
        if "openblas" in os.path.basename(path):
            try:
                corename = ctypes.CDLL(path).openblas_get_corename  # the loaded copy: dlopen shares it
            except (OSError, AttributeError):
                continue
            corename.restype = ctypes.c_char_p
            return corename().decode()
    return None


# OpenBLAS's kernel families that use AVX-512.
OPENBLAS_AVX512_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}


def kernel_warning(side, kernels):
    """A warning when `side`'s OpenBLAS runs narrower kernels than this CPU has, or None."""
    if kernels and cpu_has_avx512() and kernels.lower() not in OPENBLAS_AVX512_KERNELS:
        forced = os.environ.get("OPENBLAS_CORETYPE")
        return ("warning: %s's OpenBLAS runs its %s kernels on a CPU with AVX-512 (%s); --openblas-coretype "
                "SkylakeX selects its AVX-512 kernels on both sides" % (
                    side, kernels, "OPENBLAS_CORETYPE=%s is set" % forced if forced
                    else "an OpenBLAS older than the CPU picks an older family's"))
    return None


def measure(args, torch, configs, rounds_for):
    """Runs every configuration; torch None: the sae side only."""
    results = []
    for c in configs:
        rounds = rounds_for(c)
        sae_runs, torch_runs = [], []
        if c["model"] and torch is not None:
            check_pretrained(args, torch, c)
        for r in range(rounds):
            seed = r
            sae = run_sae(args.sae_bench, c, args.threads, seed)
            sae_runs.append(sae)
            line = "  %-20s round %d/%d: sae %9.2f ms/step (L0 %7.1f)" % (
                c["name"], r + 1, rounds, sae["median_ms"], sae["l0"])
            if torch is not None:
                pt = run_torch(torch, c, seed)
                torch_runs.append(pt)
                line += "   torch %9.2f ms/step (L0 %7.1f)" % (pt["median_ms"], pt["l0"])
            print(line, flush=True)
        sae_ms = statistics.median(s["median_ms"] for s in sae_runs)
        torch_ms = statistics.median(t["median_ms"] for t in torch_runs) if torch_runs else None
        results.append(dict(
            name=c["name"], config=c, sae_ms=sae_ms, torch_ms=torch_ms,
            sae_tokens_per_second=c["batch"] / (sae_ms / 1000.0),
            torch_tokens_per_second=c["batch"] / (torch_ms / 1000.0) if torch_ms else None,
            ratio=torch_ms / sae_ms if torch_ms else None,  # = sae tokens/s / torch tokens/s (same batch)
            # Each round's own ratio (the two sides ran back to back): how far
            # the machine's noise moves the ratio itself.
            round_ratios=[t["median_ms"] / s["median_ms"] for s, t in zip(sae_runs, torch_runs)],
            # Each side's fastest timed step over all rounds: a neighbour on a shared machine only ever
            # adds time, so the least disturbed step is the nearest to what the step itself costs.
            sae_fastest_ms=min(min(s["step_ms"]) for s in sae_runs),
            torch_fastest_ms=min(min(t["step_ms"]) for t in torch_runs) if torch_runs else None,
            sae_l0=statistics.fmean(s["l0"] for s in sae_runs),
            torch_l0=statistics.fmean(t["l0"] for t in torch_runs) if torch_runs else None,
            sae_peak_rss_mib=max(s["peak_rss_mib"] for s in sae_runs),
            sae_expected_mib=(sae_runs[0]["model_state_mib"] + sae_runs[0]["activation_mib"]
                              + sae_runs[0].get("data_mib", 0)),
            sae_effective_gflops=statistics.median(s["effective_gflops"] for s in sae_runs),
            sae_page_faults_per_step=statistics.median(s.get("page_faults_per_step", 0) for s in sae_runs),
            torch_page_faults_per_step=(statistics.median(t["page_faults_per_step"] for t in torch_runs)
                                        if torch_runs else None),
            sae_runs=sae_runs, torch_runs=torch_runs))
    return results


def judge(results, quick):
    """Adds `passed` to the results with a ratio target, and returns the scaling rows."""
    by_name = {r["name"]: r for r in results}
    for r in results:
        target = r["config"]["target"]
        r["target"] = target
        r["passed"] = None if (quick or target is None or r["ratio"] is None) else r["ratio"] >= target
    scaling = []
    for r in results:
        c = r["config"]
        base = by_name.get(c["base"]) if c["base"] else None
        if base is None:
            continue
        dim, factor = c["scale"]
        # Time per step relative to proportional growth: 1.0 is exactly linear.
        sae_linearity = r["sae_ms"] / (factor * base["sae_ms"])
        torch_linearity = r["torch_ms"] / (factor * base["torch_ms"]) if r["torch_ms"] else None
        scaling.append(dict(
            name=r["name"], base=base["name"], dimension="B" if dim == "batch" else "F", factor=factor,
            sae_ms=r["sae_ms"], sae_base_ms=base["sae_ms"], sae_linearity=sae_linearity,
            torch_ms=r["torch_ms"], torch_base_ms=base["torch_ms"], torch_linearity=torch_linearity,
            shape=linearity_shape(sae_linearity),
            # Growing slower than proportionally (work that does not grow with the size) is no failure.
            passed=None if quick else sae_linearity <= 1.0 + LINEARITY_TOLERANCE))
    return scaling


def linearity_shape(linearity):
    if linearity > 1.0 + LINEARITY_TOLERANCE:
        return "super-linear"
    if linearity < 1.0 - LINEARITY_TOLERANCE:
        return "sub-linear"
    return "linear"


def verdict(passed):
    return "n/a" if passed is None else ("pass" if passed else "FAIL")


def number(format, value):
    """`format % value`, or a dash right-aligned to its width when there is no value."""
    if value is None:
        width = len(format % 0.0)
        return "-".rjust(width)
    return format % value


def print_peak_shares(results, peak):
    """Dense steps (every nominal flop is done): GFLOP/s on each side against the peak."""
    # A loaded (trained) SAE's codes are sparse, as encode_sparse's: not a dense step.
    dense = [r for r in results if (r["config"]["mode"] == "encode" or r["config"]["arch"] == "relu")
             and not r["config"]["target_l0"] and not r["config"]["model"]]
    if peak is None or not dense:
        return
    print()
    print("Dense steps against the measured FP32 multiply-add peak, %.0f GFLOP/s (sae_fma_peak, "
          "the higher of its two readings):" % peak)
    for r in dense:
        gflop = r["sae_runs"][0]["nominal_gflop_per_step"]
        line = "  %-20s sae %6.1f GFLOP/s (%3.0f%%)" % (r["name"], gflop / r["sae_ms"] * 1e3,
                                                       100 * gflop / r["sae_ms"] * 1e3 / peak)
        if r["torch_ms"]:
            line += "   torch %6.1f GFLOP/s (%3.0f%%)" % (gflop / r["torch_ms"] * 1e3,
                                                       100 * gflop / r["torch_ms"] * 1e3 / peak)
            if r["target"]:
                needed = r["target"] * gflop / r["torch_ms"] * 1e3
                line += "   target %.2fx needs %.1f GFLOP/s (%.0f%%)" % (r["target"], needed, 100 * needed / peak)
        print(line)


def print_tables(results, scaling):
    print()
    print("%-20s %-34s %12s %12s %7s %7s %5s  %8s %8s  %s" % (
        "config", "sizes", "torch ms", "sae ms", "ratio", "target", "", "torch L0", "sae L0", "sae RSS / expected MiB"))
    for r in results:
        c = r["config"]
        target = "%.2fx" % r["target"] if r["target"] else "-"
        print("%-20s %-34s %s %12.2f %s %7s %5s  %s %8.1f  %.0f / %.0f" % (
            r["name"], describe(c), number("%12.2f", r["torch_ms"]), r["sae_ms"], number("%6.2fx", r["ratio"]),
            target, verdict(r["passed"]), number("%8.1f", r["torch_l0"]), r["sae_l0"], r["sae_peak_rss_mib"],
            r["sae_expected_mib"]))
    print("ratio = sae tokens/s / PyTorch tokens/s; expected memory = parameters x 4 (weights, gradients, two "
          "Adam moments; x 1 for inference) + the batch's activations (+ --data's)")
    spread = [r for r in results if len(r["round_ratios"]) > 1]
    if spread:
        print("Each round's own ratio (sae and PyTorch back to back), lowest / median / highest:")
        for r in spread:
            print("  %-20s %6.2fx / %6.2fx / %6.2fx  (%d rounds)" % (
                r["name"], min(r["round_ratios"]), statistics.median(r["round_ratios"]), max(r["round_ratios"]),
                len(r["round_ratios"])))
    if any(r["torch_fastest_ms"] for r in results):
        print("Fastest single step over all rounds (the least disturbed by the machine's neighbours), "
              "PyTorch / sae ms, and its ratio:")
        for r in results:
            if r["torch_fastest_ms"]:
                print("  %-20s %9.2f / %9.2f  %6.2fx" % (r["name"], r["torch_fastest_ms"], r["sae_fastest_ms"],
                                                       r["torch_fastest_ms"] / r["sae_fastest_ms"]))
    # Page faults cost each side wherever a step maps fresh memory: PyTorch's tensors of 32 MiB and more go
    # back to the system when freed (glibc's malloc), so every step faults them in again.
    print("Minor page faults per timed step (median over rounds), sae / PyTorch:")
    for r in results:
        print("  %-20s %10.0f / %s" % (r["name"], r["sae_page_faults_per_step"],
                                       number("%.0f", r["torch_page_faults_per_step"])))
    if scaling:
        print()
        print("Scaling: time per step / (factor x time at the base size); 1.00 is exactly proportional. "
              "sae passes at <= %.2f (within %.0f%% of proportional, or slower growth)"
              % (1.0 + LINEARITY_TOLERANCE, LINEARITY_TOLERANCE * 100))
        print("%-22s %-12s %10s %10s %10s %10s %12s %5s  %s" % (
            "config", "of", "factor", "torch ms", "torch lin", "sae ms", "sae lin", "", "sae growth"))
        for s in scaling:
            print("%-22s %-12s %8s%-2.0f %s %s %10.2f %12.3f %5s  %s" % (
                s["name"], s["base"], s["dimension"] + " x", s["factor"], number("%10.2f", s["torch_ms"]),
                number("%10.3f", s["torch_linearity"]), s["sae_ms"], s["sae_linearity"], verdict(s["passed"]),
                s["shape"]))


def select(configs, names):
    if names == "all":
        return configs
    if names in ("main", "scaling"):
        chosen = [c for c in configs if c["group"] == names]
    else:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        known = {c["name"] for c in configs}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SystemExit("unknown configuration(s) %s; known: all, main, scaling, %s"
                             % (", ".join(unknown), ", ".join(sorted(known))))
        chosen = [c for c in configs if c["name"] in wanted]
    # A scaling configuration needs its base measured in the same run.
    bases = {c["base"] for c in chosen if c["base"]} - {c["name"] for c in chosen}
    return [c for c in configs if c["name"] in bases] + chosen


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sae-bench", required=True, help="path to the sae_bench executable")
    p.add_argument("--threads", type=int, default=2, help="threads for both sides (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per main configuration (default 3)")
    p.add_argument("--scaling-rounds", type=int, default=1, help="rounds per scaling configuration (default 1)")
    p.add_argument("--configs", help="all, main, scaling, or names separated by commas (default all; with "
                                      "--model, encode_model,forward_model)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test (targets not judged)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--skip-without-torch", action="store_true", help="exit 77 (skipped) if torch cannot be imported")
    p.add_argument("--sae-only", action="store_true", help="run the sae side alone (no PyTorch needed)")
    p.add_argument("--fma-peak", help="path to sae_fma_peak (default: beside sae_bench, if built); '' skips it")
    p.add_argument("--openblas-coretype", metavar="NAME",
                   help="set OPENBLAS_CORETYPE=NAME for both sides (OpenBLAS's kernels, e.g. SkylakeX or Haswell); "
                        "'' unsets it, so that OpenBLAS chooses")
    p.add_argument("--model", metavar="PATH",
                   help="a published SAE (SAELens, sparsify or Gemma Scope folder or weights file): adds "
                        "encode_model and forward_model, its encode of --data and its encode and decode")
    p.add_argument("--data", metavar="FILE.npy", help="with --model: the activations [N, D] to encode")
    p.add_argument("--batch", type=int, help="encode_model's and forward_model's rows per step (default 4096, "
                                             "or N if smaller; --quick 64)")
    args = p.parse_args(argv)
    if bool(args.model) != bool(args.data):
        p.error("--model and --data go together")
    if args.batch is not None and (args.batch < 1 or not args.model):
        p.error("--batch is for --model's configurations and must be at least 1")
    if args.configs is None:
        args.configs = "encode_model,forward_model" if args.model else "all"
    if args.threads < 1 or args.rounds < 1 or args.scaling_rounds < 1:
        p.error("--threads, --rounds and --scaling-rounds must be at least 1")
    if not (os.path.isfile(args.sae_bench) and os.access(args.sae_bench, os.X_OK)):
        p.error("--sae-bench %s is not an executable file" % args.sae_bench)
    if args.fma_peak is None:
        beside = os.path.join(os.path.dirname(args.sae_bench), "sae_fma_peak")
        args.fma_peak = beside if os.access(beside, os.X_OK) else ""
    elif args.fma_peak and not (os.path.isfile(args.fma_peak) and os.access(args.fma_peak, os.X_OK)):
        p.error("--fma-peak %s is not an executable file" % args.fma_peak)
    return args


def main(argv):
    args = parse_args(argv)
    # Before torch is imported: its OpenMP pool and OpenBLAS read these once.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    if args.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype
    elif args.openblas_coretype == "":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    # PyTorch (and sae on Debian's default OpenBLAS) pairs an OpenMP pool with
    # OpenBLAS's own pthreads. With OpenMP's default spin-waiting the idle
    # OpenMP threads starve OpenBLAS's (an sgemm took 1.7x as long here), so
    # both run with passive waiting unless told otherwise. (sae on OpenBLAS's
    # OpenMP build has one pool; passive waiting was as fast or faster there too.)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch, torch_kernels = None, None
    if not args.sae_only:
        try:
            import torch
        except ImportError as e:
            print("compare_pytorch.py: cannot import torch (%s); Debian: apt-get install python3-torch; "
                  "--sae-only runs without it" % e, file=sys.stderr)
            return 77 if args.skip_without_torch else 1
        torch.set_num_threads(args.threads)

    configs = quick_configs() if args.quick else realistic_configs()
    if args.model:
        try:
            model = load_pretrained_numpy(args.model)
            LOADED[args.model], LOADED[args.data] = model, load_activations(args.data, model["d"])
        except (RuntimeError, OSError, KeyError, ValueError) as e:
            print("compare_pytorch.py: %s" % (e if not isinstance(e, KeyError) else
                                              "%s: no tensor or cfg entry %s" % (args.model, e)), file=sys.stderr)
            return 1
        configs += model_configs(model, args.data, LOADED[args.data].shape[0], args.batch, args.quick)
        print("--model %s: %s layout, %s, D=%d F=%d%s, b_dec %ssubtracted; --data %s: %d rows" % (
            args.model, model["layout"], model["arch"], model["d"], model["f"],
            " k=%d" % model["k"] if model["k"] else "", "" if model["apply_b_dec"] else "not ", args.data,
            LOADED[args.data].shape[0]))
    configs = select(configs, args.configs)
    rounds_for = (lambda c: 1) if args.quick else (
        lambda c: args.rounds if c["group"] == "main" else args.scaling_rounds)

    if torch is not None:
        print("PyTorch %s, %d thread(s) (of %d CPUs: %s); python %s" % (
            torch.__version__, torch.get_num_threads(), os.cpu_count() or 0, cpu_model(), platform.python_version()))
        torch_blas = loaded_blas()
        torch_kernels = openblas_kernels(torch_blas)
        print("PyTorch's BLAS: %s%s" % (", ".join(torch_blas) or "none found",
                                        "; kernels %s" % torch_kernels if torch_kernels else ""))
    else:
        print("sae only (no PyTorch), %d thread(s) (of %d CPUs: %s)" % (args.threads, os.cpu_count() or 0, cpu_model()))
    print("OMP_WAIT_POLICY=%s, OPENBLAS_CORETYPE=%s" % (os.environ["OMP_WAIT_POLICY"],
                                                        os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    started = time.perf_counter()
    try:
        peak = None if args.quick else run_fma_peak(args.fma_peak, args.threads)
        if peak is not None:
            print("FP32 multiply-add peak, %d thread(s): %.1f GFLOP/s" % (args.threads, peak))
        results = measure(args, torch, configs, rounds_for)
        if peak is not None:
            after = run_fma_peak(args.fma_peak, args.threads)
            print("FP32 multiply-add peak again, after the steps: %.1f GFLOP/s" % after)
            peak = max(peak, after)
    except RuntimeError as e:
        print("compare_pytorch.py: %s" % e, file=sys.stderr)
        return 1
    build = results[0]["sae_runs"][0]["build"] if results else {}
    print("sae_bench: %s, flags '%s', Eigen %s, OpenMP %s, EIGEN_USE_BLAS %s, GEMM kernel %s, "
          "screened ReLU codes %s, target %s"
          % (build.get("compiler"), build.get("cxx_flags"), build.get("eigen_version"),
             "on" if build.get("openmp") else "off", "on" if build.get("eigen_use_blas") else "off",
             (build.get("gemm_kernel_isa") or "on") if build.get("gemm_kernel") else "off",
             "on" if build.get("screened_relu") else "off", build.get("target_features")))
    print("sae_bench's BLAS: %s" % build.get("blas", "not reported"))
    warnings = [w for w in (kernel_warning("PyTorch", torch_kernels), kernel_warning("sae", build.get("blas_kernels")))
                if w]
    for w in warnings:
        print(w)
    scaling = judge(results, args.quick)
    print_tables(results, scaling)
    print_peak_shares(results, peak)
    print("\n%.0f s in all" % (time.perf_counter() - started))

    if args.json:
        report = dict(
            machine=dict(cpu=cpu_model(), cpus=os.cpu_count(), python=platform.python_version()),
            torch=None if torch is None else dict(
                version=torch.__version__, threads=torch.get_num_threads(), blas_kernels=torch_kernels,
                zero_grad="set_to_none=True", adam="foreach=False"),
            threads=args.threads, quick=args.quick, openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"),
            warnings=warnings, sae_build=build, fma_peak_gflops=peak, results=results,
            scaling=scaling)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print("wrote " + args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
