"""AlpacaEval 2.0 length-controlled win rate through ``alpaca_eval``'s own scoring, online or offline.

``length_controlled_winrate(annotations)`` returns the metrics of the package's ``get_length_controlled_winrate``
(alpaca-eval==0.6.6), called unchanged. That function fetches two files from the Hub at run time:
``instruction_difficulty.csv`` (one difficulty per instruction) and ``df_gamed.csv`` (rows of two "gamed"
baselines, GPT-4-turbo prompted to be verbose or concise, which the GLM is regularised towards with weight
lambda/2 = 0.1 per row, lambda = ``GLM_INFO["length_controlled_v1"]["regularize_to_baseline_lambda"]``). When the
Hub files can be had (cached, or downloadable) they are used: ``lc_source="hub"``. Otherwise both are rebuilt from
the shipped data (``paths.shared_data``) and handed to the package by patching only its ``hf_hub_download`` for
the duration of the call: ``lc_source="offline-reconstruction"``. Nothing else in the package is replaced.

Reconstruction (deterministic, cached under ``.cache/gprl/alpaca_eval/<key>/``; see results/alpaca_eval_replay.md):

1. start: a joint logistic fit over every shipped annotated model (own bias and length slope per model, one
   difficulty per instruction), the model the package's authors fitted (they used L1 with CV; here a Gaussian
   prior of variance 3);
2. refine the difficulties and the length scale of the two gamed baselines so that (a) each annotated model's
   shipped GLM weights satisfy the package's own fit equations (score = 0) under them, and (b) the shipped weights
   of the leaderboard models without shipped annotations reproduce their official LC;
3. ``df_gamed``: per instruction, the verbose/concise length change that prompting caused for the shipped
   gpt-3.5-turbo-1106, claude-2.1 and alpaca-7b variants, applied to the reference's lengths, with soft
   preferences from the two gamed baselines' shipped GLM weights.

``exclude`` leaves models out of every step, so a model can be scored as if it were new (the replay does this).
The package uses the DataFrame index as the instruction id (its AlpacaEval position). The official leaderboard
loaded annotations.json with a fresh 0..n-1 index, so for the six models with missing rows every later row took
the next instruction's difficulty; the reconstruction models those rows the same way, and the replay passes them so.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Iterator, Sequence, Union

import numpy as np
import pandas as pd

from gprl import GprlError

ROOT = Path(__file__).resolve().parents[1]
VERSION = "lc-reconstruction-v1"  # bump when the reconstruction changes: it names the cache
HUB_FILES = ("df_gamed.csv", "instruction_difficulty.csv")
REFERENCE = "gpt4_1106_preview"
GAMED = ("gpt4_1106_preview_verbose", "gpt4_1106_preview_concise")
# shipped (prompted variant, plain model) pairs whose per-instruction length change stands in for the gamed baselines
TEMPLATES = {
    GAMED[0]: [("gpt-3.5-turbo-1106_verbose", "gpt-3.5-turbo-1106"), ("alpaca-7b_verbose", "alpaca-7b")],
    GAMED[1]: [("gpt-3.5-turbo-1106_concise", "gpt-3.5-turbo-1106"), ("claude-2.1_concise", "claude-2.1"),
               ("alpaca-7b_concise", "alpaca-7b")],
}
FILES = {
    "annotations": "alpaca_eval/annotations_slim/weighted_alpaca_eval_gpt4_turbo.jsonl.gz",
    "leaderboard": "alpaca_eval/leaderboards/data_AlpacaEval_2/weighted_alpaca_eval_gpt4_turbo_leaderboard.csv",
    "weights": "alpaca_eval/lc_glm_weights/weighted_alpaca_eval_gpt4_turbo/length_controlled_v1/"
               "baseline_gpt4_1106_preview.csv",
    "instructions": "alpaca_eval/alpaca_eval_instructions.jsonl",
}
PRIOR_VAR = 3.0  # difficulty prior variance: best for the official LC of leaderboard models without annotations


def resolve_shared_data(path: Union[str, Path, None] = None) -> Path:
    """``path``, else ``$GPRL_SHARED_DATA``, else ``../shared/data``; relative paths are taken from the repo root."""
    p = Path(path or os.environ.get("GPRL_SHARED_DATA") or "../shared/data")
    return p if p.is_absolute() else (ROOT / p).resolve()


def shipped_file(shared: Path, key: str) -> Path:
    """A shipped file by ``FILES`` key, or model outputs by ``outputs:<generator>``; GprlError if it is missing."""
    rel = f"alpaca_eval/model_outputs/{key[8:]}.json.gz" if key.startswith("outputs:") else FILES[key]
    if not (shared / rel).is_file():
        raise GprlError(f"missing shipped file {shared / rel} "
                        "(set paths.shared_data, GPRL_SHARED_DATA or --shared-data)")
    return shared / rel


def length_controlled_winrate(annotations: Union[pd.DataFrame, Sequence[dict]], *, source: str = "auto",
                              shared_data: Union[str, Path, None] = None, exclude: Sequence[str] = (),
                              cache_dir: Union[str, Path, None] = None) -> dict:
    """The package's metrics for one model's annotations against the reference, plus where LC's inputs came from.

    annotations: rows in alpaca_eval's annotation format (``output_1``, ``output_2`` texts, ``generator_1``,
        ``generator_2``, ``preference`` in [1, 2], 2 = generator_2 better). The package takes the DataFrame index
        as the instruction id: index rows by AlpacaEval position (a list of all 805 in order does that itself).
    source: ``"auto"`` (the Hub's files if cached or downloadable, else the reconstruction), ``"hub"``, ``"offline"``.
    exclude: models kept out of the reconstruction (score a shipped model as if it were new).
    Returns ``win_rate``, ``standard_error``, ``n_total`` ... as the package does, ``length_controlled_winrate``,
    ``avg_length`` (mean characters of ``output_2``), ``lc_source`` and, offline, ``lc_reconstruction`` (cache key).
    The package computes no standard error for LC, so there is no ``lc_standard_error``.
    """
    glm = _glm_module()
    df = pd.DataFrame(annotations) if not isinstance(annotations, pd.DataFrame) else annotations.copy()
    missing = {"output_1", "output_2", "generator_1", "generator_2", "preference"} - set(df.columns)
    if missing:
        raise GprlError(f"annotations lack column(s) {sorted(missing)}")
    if df["generator_2"].nunique() != 1:
        raise GprlError(f"annotations must be of one model, got generator_2 = {sorted(df['generator_2'].unique())}")
    if source == "auto":
        from huggingface_hub import constants as hub_constants

        source = "hub" if hub_files_ready(download=not hub_constants.HF_HUB_OFFLINE) else "offline"
    if source == "hub":
        out, extra = glm.get_length_controlled_winrate(df, save_weights_dir=None), {"lc_source": "hub"}
    elif source == "offline":
        files = reconstruction_files(shared_data, exclude, cache_dir)
        with offline_hub(files):
            out = glm.get_length_controlled_winrate(df, save_weights_dir=None)
        extra = {"lc_source": "offline-reconstruction", "lc_reconstruction": files["df_gamed.csv"].parent.name}
    else:
        raise GprlError(f"unknown source {source!r}: auto, hub or offline")
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in out.items()}
    return {**out, "avg_length": int(df["output_2"].str.len().mean()), **extra}


@functools.lru_cache(maxsize=2)
def hub_files_ready(download: bool) -> bool:
    """Whether the package's two Hub files are cached (or, with ``download``, can be fetched now); asked once per
    process, since a failed download retries for about 25 s."""
    from huggingface_hub import hf_hub_download

    glm = _glm_module()
    try:
        for name in HUB_FILES:
            hf_hub_download(repo_id="tatsu-lab/alpaca_eval", filename=name, repo_type="dataset",
                            token=glm.constants.DATASETS_TOKEN, cache_dir=glm.constants.DEFAULT_CACHE_DIR,
                            local_files_only=not download)
        return True
    except Exception:  # offline, not cached, no network: all mean "use the reconstruction"
        return False


@contextlib.contextmanager
def offline_hub(files: dict[str, Path]) -> Iterator[None]:
    """Within the block, the package's ``hf_hub_download`` returns these local files (by filename) and nothing else."""
    glm = _glm_module()

    def local(repo_id: str, filename: str, **kwargs) -> str:
        if filename not in files:
            raise GprlError(f"offline: no local copy of {repo_id}/{filename}")
        return str(files[filename])

    real, glm.hf_hub_download = glm.hf_hub_download, local
    try:
        yield
    finally:
        glm.hf_hub_download = real


def reconstruction_files(shared_data: Union[str, Path, None] = None, exclude: Sequence[str] = (),
                         cache_dir: Union[str, Path, None] = None) -> dict[str, Path]:
    """Paths of the reconstructed ``df_gamed.csv`` and ``instruction_difficulty.csv``, computed once and cached."""
    shared = resolve_shared_data(shared_data)
    inputs = {k: shipped_file(shared, k).stat().st_size for k in FILES}
    key = hashlib.sha256(json.dumps([VERSION, sorted(set(exclude)), inputs]).encode()).hexdigest()[:12]
    out = Path(cache_dir or ROOT / ".cache/gprl/alpaca_eval") / key
    files = {name: out / name for name in HUB_FILES}
    if all(p.is_file() for p in files.values()):
        return files
    difficulty, df_gamed, info = reconstruct(load_shipped(shared), exclude)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    df_gamed.to_csv(tmp / "df_gamed.csv", index=False)
    pd.Series(difficulty, index=pd.RangeIndex(len(difficulty), name="index"),
              name="instruction_difficulty").to_csv(tmp / "instruction_difficulty.csv")
    (tmp / "meta.json").write_text(json.dumps({"version": VERSION, "exclude": sorted(set(exclude)), **info}, indent=1))
    if out.exists():  # another process finished first
        shutil.rmtree(tmp)
    else:
        tmp.rename(out)
    return files


@functools.lru_cache(maxsize=2)
def load_shipped(shared: Path) -> dict:
    """What the reconstruction reads: per-row preferences and length features, GLM weights, official LC, lengths."""
    ann = pd.read_json(shipped_file(shared, "annotations"), lines=True)
    ann = ann.drop_duplicates(["results_dir", "instruction"])  # vicuna-{7,13}b-v1.5 are stored twice, identically
    order = pd.read_json(shipped_file(shared, "instructions"), lines=True)["instruction"]
    lengths = {}  # model -> output length per AlpacaEval instruction (NaN where absent)
    needed = set(ann["results_dir"]) | {REFERENCE} | {m for pairs in TEMPLATES.values() for pair in pairs for m in pair}
    for m in needed:
        if (shared / f"alpaca_eval/model_outputs/{m}.json.gz").is_file():
            o = pd.read_json(shipped_file(shared, f"outputs:{m}"))
            lengths[m] = o.set_index("instruction")["output"].str.len().reindex(order).to_numpy(float)
    ref = pd.Series(lengths[REFERENCE], index=order)
    rows = []
    for m, a in ann.groupby("results_dir", sort=False):
        if m == REFERENCE or m not in lengths:
            continue
        delta = ref[a["instruction"]].to_numpy() - pd.Series(lengths[m], index=order)[a["instruction"]].to_numpy()
        if np.isnan(delta).any():  # an annotated instruction without a shipped output: no length feature
            continue
        pref = a["preference"].astype(float).replace({0.0: 1.5}).to_numpy() - 1  # as the package featurises
        rows.append(pd.DataFrame({"model": m, "pos": np.arange(len(a)), "y": pref,
                                  "t": np.tanh(delta / np.std(delta, ddof=1))}))
    weights = pd.read_csv(shipped_file(shared, "weights"), index_col=0)
    weights.columns = ["wlen", "wdiff", "b"]  # np.tanh(std_delta_len), instruction_difficulty, not_gamed_baseline
    lb = pd.read_csv(shipped_file(shared, "leaderboard"))
    lb.index = lb["samples"].str.extract(r"results/([^/]+)/model_outputs", expand=False)
    lb = lb[lb.index.notna()]
    return {"rows": pd.concat(rows, ignore_index=True), "weights": weights, "lengths": lengths,
            "lc": lb["length_controlled_winrate"], "annotated": set(ann["results_dir"]), "n": len(order)}


def reconstruct(shipped: dict, exclude: Sequence[str] = ()) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Instruction difficulties (by row position) and ``df_gamed`` from shipped data, leaving ``exclude`` out."""
    rows, weights, n = shipped["rows"], shipped["weights"], shipped["n"]
    rows = rows[~rows["model"].isin(set(exclude))]
    fitted = rows[rows["model"].isin(weights.index)]
    # leaderboard models with shipped weights but no shipped annotations: their official LC constrains the difficulty
    others = [m for m in shipped["lc"].index if m in weights.index and m not in shipped["annotated"]]
    lc_others = (weights.loc[others, ["b", "wdiff"]].to_numpy(), shipped["lc"][others].to_numpy() / 100)
    templates = [_gamed_length_template(shipped, g) for g in GAMED]
    d0 = _joint_difficulty(rows, n)
    d, scales, info = _refine(fitted, weights, lc_others, templates, weights.loc[list(GAMED)].to_numpy(), d0)
    blocks = []
    for g, x in zip(GAMED, (t * s for t, s in zip(templates, scales))):
        w = weights.loc[g]
        p = 1 / (1 + np.exp(-(w["b"] + w["wlen"] * np.tanh(x) + w["wdiff"] * d)))
        blocks.append(pd.DataFrame({"model": g, "index": np.arange(n), "preference": p, "std_delta_len": x,
                                    "instruction_difficulty": d, "not_gamed_baseline": False}))
    info.update(n_models_joint=int(rows["model"].nunique()), n_models_weights=int(fitted["model"].nunique()),
                n_models_lc=len(others), gamed_length_scales=[float(s) for s in scales])
    return d, pd.concat(blocks, ignore_index=True), info


def _gamed_length_template(shipped: dict, gamed: str) -> np.ndarray:
    """Standardised reference-minus-gamed length per instruction, from shipped prompted/plain pairs' length ratios."""
    lengths, ref = shipped["lengths"], shipped["lengths"][REFERENCE]
    logs = [np.log(np.maximum(lengths[v], 1) / np.maximum(lengths[p], 1)) for v, p in TEMPLATES[gamed]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN instructions -> ratio 1
        ratio = np.exp(np.nan_to_num(np.nanmean(np.stack(logs), axis=0)))
    delta = ref - ref * ratio
    return delta / np.std(delta, ddof=1)


def _joint_difficulty(rows: pd.DataFrame, n: int, iters: int = 200) -> np.ndarray:
    """logit p = b_m + s_m * t + d_i over all rows, prior d ~ N(0, PRIOR_VAR): alternating Newton steps."""
    m = pd.Categorical(rows["model"]).codes
    k, i, t, y = m.max() + 1, rows["pos"].to_numpy(), rows["t"].to_numpy(), rows["y"].to_numpy()
    b, s, d = np.full(k, -2.0), np.full(k, -1.5), np.zeros(n)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(b[m] + s[m] * t + d[i])))
        step = (np.bincount(i, y - p, n) - d / PRIOR_VAR) / (np.bincount(i, p * (1 - p), n) + 1 / PRIOR_VAR)
        d += np.clip(step, -1, 1)
        p = 1 / (1 + np.exp(-(b[m] + s[m] * t + d[i])))
        r, h = y - p, p * (1 - p)
        g1, g2 = np.bincount(m, r, k), np.bincount(m, r * t, k)
        h11, h12, h22 = np.bincount(m, h, k), np.bincount(m, h * t, k), np.bincount(m, h * t * t, k)
        det = h11 * h22 - h12 ** 2
        b += np.clip((h22 * g1 - h12 * g2) / det, -1, 1)
        s += np.clip((h11 * g2 - h12 * g1) / det, -1, 1)
    return d


def _refine(rows: pd.DataFrame, weights: pd.DataFrame, lc_others: tuple, templates: list, gamed_w: np.ndarray,
            d0: np.ndarray, iters: int = 300) -> tuple[np.ndarray, np.ndarray, dict]:
    """Difficulties and gamed length scales under which shipped GLM weights solve the package's fit (L-BFGS).

    Loss = sum over models of g' H^-1 g (g, H: gradient and Hessian of the package's weighted log-likelihood at the
    model's shipped weights, its own rows plus the gamed rows at weight 0.1) + sum over ``lc_others`` of (predicted
    - official LC, in points)^2 + |d|^2 / (2 PRIOR_VAR).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic sums
    try:
        f64 = dict(dtype=torch.float64)
        names = sorted(rows["model"].unique())
        mi = torch.tensor(pd.Categorical(rows["model"], categories=names).codes, dtype=torch.long)
        ii = torch.tensor(rows["pos"].to_numpy(), dtype=torch.long)
        t, y = torch.tensor(rows["t"].to_numpy(), **f64), torch.tensor(rows["y"].to_numpy(), **f64)
        th = torch.tensor(weights.loc[names, ["wlen", "wdiff", "b"]].to_numpy(), **f64)
        gw = torch.tensor(gamed_w, **f64)  # (2, [wlen, wdiff, b])
        tx = [torch.tensor(x, **f64) for x in templates]
        ob, lc = torch.tensor(lc_others[0], **f64), torch.tensor(lc_others[1], **f64)
        d = torch.tensor(d0, requires_grad=True, **f64)
        log_scale = torch.zeros(2, requires_grad=True, **f64)
        k, n = len(names), len(d0)

        def terms() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            feats = torch.stack([t, d[ii], torch.ones_like(t)], 1)
            p = torch.sigmoid((th[mi] * feats).sum(1))
            g = torch.zeros(k, 3, **f64).index_add_(0, mi, (y - p)[:, None] * feats)
            outer = (p * (1 - p))[:, None, None] * feats[:, :, None] * feats[:, None, :]
            h = torch.zeros(k, 3, 3, **f64).index_add_(0, mi, outer)
            for j in range(2):  # gamed rows: no intercept (not_gamed_baseline = 0), weight lambda / 2 = 0.1
                tg = torch.tanh(tx[j] * torch.exp(log_scale[j]))
                yg = torch.sigmoid(gw[j, 0] * tg + gw[j, 1] * d + gw[j, 2])
                fg = torch.stack([tg, d, torch.zeros(n, **f64)], 1)
                pg = torch.sigmoid(th[:, :1] * tg + th[:, 1:2] * d)  # (k, n)
                g = g + 0.1 * torch.einsum("kn,ni->ki", yg - pg, fg)
                h = h + 0.1 * torch.einsum("kn,ni,nj->kij", pg * (1 - pg), fg, fg)
            fit = (g * torch.linalg.solve(h + 1e-6 * torch.eye(3, **f64), g[:, :, None])[:, :, 0]).sum()
            lc_err = ((torch.sigmoid(ob[:, :1] + ob[:, 1:] * d).mean(1) - lc) * 100).pow(2).sum()
            return fit, lc_err, d.pow(2).sum() / (2 * PRIOR_VAR)

        opt = torch.optim.LBFGS([d, log_scale], max_iter=iters, history_size=50, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = sum(terms())
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            fit, lc_err, prior = (float(v) for v in terms())
    finally:
        torch.set_num_threads(threads)
    info = {"loss_fit_equations": fit, "loss_lc_points2": lc_err, "loss_prior": prior}
    return d.detach().numpy().copy(), torch.exp(log_scale).detach().numpy().copy(), info


def _glm_module():
    """``alpaca_eval.metrics.glm_winrate`` (imported quietly: the package warns about pkg_resources on import)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from alpaca_eval.metrics import glm_winrate
    except ImportError as e:
        raise GprlError(f"alpaca-eval is not installed ({e}): pip install -e '.[eval]'") from e
    return glm_winrate
