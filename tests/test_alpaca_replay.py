"""Offline AlpacaEval 2.0 LC through the package's own GLM: a weak, a middle and a strong shipped model, each scored
with a reconstruction that left it out (as a new model), must land within 0.1 WR and 1.0 LC points of the official
leaderboard. Takes about 15 s: one reconstruction (into a fresh cache) and three GLM fits."""

import pytest

pytest.importorskip("alpaca_eval")

from evaluation import alpaca_lc, alpaca_replay  # noqa: E402

# official LC 7.0, 25.6, 70.2; the same fold, so one reconstruction serves all three
MODELS = ["baize-v2-13b", "claude-instant-1.2", "FuseChat-Gemma-2-9B-Instruct"]


@pytest.fixture(scope="module")
def shared():
    return alpaca_lc.resolve_shared_data()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("alpaca_lc_cache")  # never a stale cache: the reconstruction itself is tested


@pytest.mark.parametrize("model", MODELS)
def test_model_matches_official_leaderboard(model, shared, cache):
    _, lb, _ = alpaca_replay._load(shared)
    left_out = alpaca_replay.fold_of(shared)[model]
    assert model in left_out and set(MODELS) <= set(left_out)  # scored as a new model, one shared reconstruction
    frame, note = alpaca_replay.annotation_frame(shared, model)
    out = alpaca_lc.length_controlled_winrate(frame, source="offline", shared_data=shared, exclude=left_out,
                                              cache_dir=cache)
    assert out["lc_source"] == "offline-reconstruction" and note == ""
    assert abs(out["win_rate"] - lb.loc[model, "win_rate"]) <= 0.1
    assert abs(out["length_controlled_winrate"] - lb.loc[model, "length_controlled_winrate"]) <= 1.0


def test_offline_hub_patch_is_narrow_and_undone(tmp_path):
    glm = alpaca_lc._glm_module()
    real = glm.hf_hub_download
    with alpaca_lc.offline_hub({"df_gamed.csv": tmp_path / "g.csv"}):
        assert glm.hf_hub_download("tatsu-lab/alpaca_eval", "df_gamed.csv") == str(tmp_path / "g.csv")
        with pytest.raises(alpaca_lc.GprlError):
            glm.hf_hub_download("tatsu-lab/alpaca_eval", "other.csv")
    assert glm.hf_hub_download is real


def test_replay_names_a_missing_file_and_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        alpaca_replay.main(["--shared-data", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gprl: error: missing shipped file") and len(err.splitlines()) == 1
