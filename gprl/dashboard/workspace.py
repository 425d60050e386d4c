"""The W&B workspace of a sweep, as code (``wandb-workspaces``; ``pip install -e .[dashboard]``).

Built from the same runs as the offline page, so it names the keys those runs log: final metrics are run-summary
keys (``gprl.runmeta.final_metrics``, as ``write_results`` puts them), training curves are the Trainer's
``train/<key>`` history against ``train/global_step``. The runs are selected by their W&B group. Building the
object needs no server; ``save()`` does (``python -m gprl.dashboard ... --save``).
"""

from __future__ import annotations

from gprl import GprlError
from gprl.dashboard.runs import Run, curve_keys

STEP = "train/global_step"  # the step metric transformers' WandbCallback defines


def history_key(key: str) -> str:
    """A metrics.jsonl key as transformers' WandbCallback logs it (``rewrite_logs``): eval_x -> eval/x, else train/x."""
    return f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"


def build(runs: list[Run], metrics: list[str], entity: str, project: str, name: str):
    """A ``wandb_workspaces.workspaces.Workspace`` with four sections: metric vs k, training curves per k, GPRL
    per-axis statistics (when the runs log them) and the runs (a run comparer; the runs table pins k, seed and the
    metrics)."""
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
        from wandb_workspaces import expr
    except ImportError:
        raise GprlError("the W&B workspace needs wandb-workspaces: pip install -e '.[dashboard]'") from None

    by_k = wr.Config("k")  # panels take the report module's metric types, the runset its expressions
    sections = [
        ws.Section(name="Final metrics vs k", is_open=True,
                   panels=[wr.ScatterPlot(title=m, x=by_k, y=wr.SummaryMetric(m)) for m in metrics]),
        ws.Section(name="Training curves per k", is_open=True,
                   panels=[wr.LinePlot(title=key, x=STEP, y=[history_key(key)], groupby=by_k, groupby_aggfunc="mean",
                                       groupby_rangefunc="stddev") for key in curve_keys(runs)]),
    ]
    stats: dict[str, set[int]] = {}
    for r in runs:
        for stat, axes in r.axis_stats().items():
            stats.setdefault(stat, set()).update(axes)
    if stats:
        sections.append(ws.Section(name="GPRL per-axis statistics", is_open=True, panels=[
            wr.LinePlot(title=f"gprl {stat} per axis", x=STEP,
                        y=[history_key(f"gprl/multiplier{a}" if stat == "multiplier" else f"gprl/axis{a}_{stat}")
                           for a in sorted(axes)])
            for stat, axes in sorted(stats.items())]))
    sections.append(ws.Section(name="Runs", is_open=True, panels=[wr.RunComparer(diff_only="split")]))
    groups = sorted({r.group for r in runs})
    return ws.Workspace(
        entity=entity, project=project, name=name, sections=sections,
        settings=ws.WorkspaceSettings(x_axis=STEP),
        runset_settings=ws.RunsetSettings(
            filters=[expr.Metric("Group").isin(groups)], groupby=[expr.Config("k")],
            pinned_columns=["config:k", "config:seed"] + [f"summary:{m}" for m in metrics]),
    )


def spec_json(view) -> str:
    """The view exactly as ``Workspace.save()`` would send it (its ``_to_model()``: the library's only serialiser),
    built and checked here without a server."""
    return view._to_model().model_dump_json(indent=2)
