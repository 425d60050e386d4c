"""Loss curves of a table's runs: every logged step of every row and seed, in one CSV and one plot."""

import csv
import json

import yaml

from gprl.loss_curves import main
from gprl.tables import Manifest, sweep_dir


def test_curves_collect_every_logged_step_of_every_row_and_seed(tmp_path):
    manifest = {"table": "98", "title": "t", "source": "s", "metrics": {"fit": "fit/accuracy"}, "seeds": [0, 1],
                "scales": {"offline": {"overrides": ["logger=none"]}},
                "rows": [{"id": "bt", "overrides": ["k=1"], "label": "BT, a"},
                         {"id": "gpm", "overrides": ["k=8"], "label": "GPM, a", "baseline": "bt"}]}
    path = tmp_path / "table98.yaml"
    path.write_text(yaml.safe_dump(manifest))
    m = Manifest.load(path)
    for row in m.rows:
        for seed in (0, 1):
            run = sweep_dir(m, "offline", row, tmp_path / "runs") / f"seed={seed}"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps({"seed": seed}))
            logs = [{"step": s, "loss": 0.7 / s, "train_pair_accuracy": 0.5, "learning_rate": 1e-3, "grad_norm": 1.0}
                    for s in (1, 10, 20)] + [{"step": 20, "train_runtime": 1.0}]  # the end-of-training summary
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logs))
    main([str(path), "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res")])
    rows = list(csv.DictReader((tmp_path / "res" / "table98_loss.csv").open()))
    assert len(rows) == 2 * 2 * 3
    assert {(r["row"], r["seed"]) for r in rows} == {(i, s) for i in ("bt", "gpm") for s in ("0", "1")}
    assert abs(float(rows[1]["loss"]) - 0.07) < 1e-12 and rows[1]["step"] == "10"
    assert (tmp_path / "res" / "table98_loss.png").stat().st_size > 1000
