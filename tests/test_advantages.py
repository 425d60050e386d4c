"""GPRL advantages and drift monitor: reductions to GRPO, per-axis normalisation, and the monitor's triggers."""

import pytest
import torch

from gprl import GprlError
from gprl.advantages import ADVANTAGES, DriftMonitor, GPRLConfig, Group, MonitorConfig, grpo_advantages


def trl_grpo_advantages(rewards: torch.Tensor, G: int) -> torch.Tensor:
    """TRL GRPOTrainer (scale_rewards="group"), restated from its source for a batch of groups."""
    mean = rewards.view(-1, G).mean(dim=1).repeat_interleave(G, dim=0)
    std = rewards.view(-1, G).std(dim=1).repeat_interleave(G, dim=0)
    return (rewards - mean) / (std + 1e-4)


def test_grpo_matches_trl_formula():
    torch.manual_seed(0)
    r = torch.randn(4 * 8)
    ours = torch.cat([grpo_advantages(g) for g in r.view(4, 8)])
    assert torch.equal(ours, trl_grpo_advantages(r, 8))


def _warmed(cfg: GPRLConfig, scale: float):
    """An estimator whose running scale has seen batches ``scale`` times wider than the next group, so a floor at
    the shipped kappa would bind if it applied."""
    est = ADVANTAGES.get("gprl")(cfg)
    for _ in range(5):
        est.update_scale([torch.tensor([scale])])
    return est


@pytest.mark.parametrize("cfg", [GPRLConfig(), GPRLConfig(kappa=0.0)], ids=["shipped-defaults", "no-floor"])
def test_gprl_with_k1_equals_grpo_at_1e6(cfg):
    """The reduction holds with the shipped config (kappa=0.25), including groups far narrower than the running
    scale: the floor only acts between axes, and a single-axis prompt has none to act between."""
    torch.manual_seed(1)
    est = _warmed(cfg, scale=50.0)
    for width in (1.0, 0.01, 3.0):
        r = width * torch.randn(8)
        a, _ = est(Group(v=r[:, None], tau=1.0))
        assert torch.allclose(a, grpo_advantages(r), atol=1e-6, rtol=0)
        est.update_scale([r.std()[None]])


@pytest.mark.parametrize("cfg", [GPRLConfig(), GPRLConfig(kappa=0.0)], ids=["shipped-defaults", "no-floor"])
def test_gprl_with_a_k2_gpm_equals_grpo_on_its_one_axis_at_1e6(cfg):
    """k=2 (one subspace, so one axis): GPRL's advantages equal TRL's GRPO on the GPO estimate s-hat_i."""
    torch.manual_seed(3)
    est = _warmed(cfg, scale=50.0)
    for width in (1.0, 0.01):
        v = torch.nn.functional.normalize(torch.randn(8, 2), dim=-1) * torch.tensor([1.0, width])
        g = Group(v=v, lam=torch.tensor([1.0]), tau=0.1)
        a, _ = est(g)
        s_hat = (v[:, None, 0] * v[None, :, 1] - v[:, None, 1] * v[None, :, 0]).mean(1) / 0.1
        assert torch.allclose(a, grpo_advantages(s_hat), atol=1e-6, rtol=0)


@pytest.mark.parametrize("cfg", [GPRLConfig(), GPRLConfig(kappa=0.0)], ids=["shipped-defaults", "no-floor"])
def test_gprl_with_only_a_verifier_axis_equals_grpo_on_the_verifier(cfg):
    est = _warmed(cfg, scale=5.0)
    for verifier in ([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0], [1.0, 0, 0, 0, 0, 0, 0, 0], [0.2, 0.25, 0.2, 0.2, 0, 0, 0, 0]):
        verifier = torch.tensor(verifier)
        a, info = est(Group(v=torch.zeros(8, 0), verifier=verifier))
        assert torch.allclose(a, grpo_advantages(verifier), atol=1e-6, rtol=0)
        assert info["weights"].tolist() == [1.0]


def test_each_axis_is_normalised_on_its_own_scale():
    """Axis 0 varies 100x more than axis 1: GRPO on the summed score ignores axis 1, GPRL weighs both equally."""
    torch.manual_seed(2)
    G = 8
    v = torch.zeros(G, 4)
    v[:, 0], v[:, 1] = 10 * torch.randn(G), 1.0  # axis 0 score c = 10 (x_i - x_j)
    v[:, 2], v[:, 3] = 0.1 * torch.randn(G), 1.0  # axis 1 score c = 0.1 (y_i - y_j)
    g = Group(v=v, lam=torch.tensor([0.5, 0.5]))
    a_gprl, info = ADVANTAGES.get("gprl")(GPRLConfig(kappa=0.0))(g)
    a_grpo, _ = ADVANTAGES.get("grpo")()(g)
    per_axis = info["axis_adv"]
    assert torch.allclose(per_axis.std(1), torch.ones(2), atol=2e-3)  # unit scale on both axes (up to the 1e-4 eps)
    assert torch.allclose(a_gprl, 0.5 * per_axis[0] + 0.5 * per_axis[1], atol=1e-6)
    assert torch.corrcoef(torch.stack([a_grpo, per_axis[1]]))[0, 1].abs() < 0.9
    assert torch.corrcoef(torch.stack([a_grpo, per_axis[0]]))[0, 1] > 0.999


def test_floor_damps_an_indifferent_axis():
    est = ADVANTAGES.get("gprl")(GPRLConfig(kappa=0.25))
    est.update_scale(torch.tensor([[1.0, 1.0]]))
    v = torch.zeros(4, 4)
    v[:, 0], v[:, 1] = torch.tensor([1.0, -1.0, 0.5, -0.5]), 1.0
    v[:, 2], v[:, 3] = torch.tensor([1e-3, -1e-3, 0.0, 0.0]), 1.0  # a nearly indifferent axis
    _, info = est(Group(v=v))
    assert info["axis_adv"][1].abs().max() < 0.01  # not blown up to unit scale
    assert info["axis_adv"][0].std() > 0.5


def test_uniform_eigenvalue_and_no_normalisation_ablations():
    v = torch.randn(6, 4)
    lam = torch.tensor([0.9, 0.1])
    _, info = ADVANTAGES.get("gprl")(GPRLConfig(uniform_eigenvalues=True))(Group(v=v, lam=lam))
    assert info["weights"].tolist() == [0.5, 0.5]
    a, _ = ADVANTAGES.get("gprl")(GPRLConfig(normalize_per_axis=False))(Group(v=v, lam=lam))
    assert torch.allclose(a, ADVANTAGES.get("grpo")()(Group(v=v, lam=lam))[0], atol=1e-6)


def test_unknown_estimator_lists_known():
    with pytest.raises(GprlError, match="known: gprl, grpo"):
        ADVANTAGES.get("ppo")


def test_monitor_fires_on_single_axis_exploitation_and_corrects():
    mon = DriftMonitor(n_axes=3)
    fired = None
    for t in range(60):
        s = mon.update(torch.tensor([0.5 + 0.01 * t, 0.5, 0.5]))  # only axis 0 improves
        if s["trigger"] and fired is None:
            fired = (t, s)
    assert fired is not None
    t, s = fired
    assert s["trigger"] == "single_axis" and s["axis"] == 0
    assert s["multipliers"][0] == 0.5 and s["multipliers"][1] == 1.25
    assert s["eps"] == 0.1 and s["beta"] == 0.08
    assert len(mon.events) >= 1 and all(e["axis"] == 0 for e in mon.events)


def test_monitor_stays_quiet_on_balanced_gains_and_fires_on_regression():
    mon = DriftMonitor(n_axes=3)
    for t in range(100):
        s = mon.update(torch.full((3,), 0.5 + 0.004 * t))
        assert s["trigger"] is None
    assert mon.multipliers.tolist() == [1.0, 1.0, 1.0] and mon.eps == 0.2 and mon.beta == 0.04


def test_a_regression_down_weights_the_axis_that_gained_most():
    """SPEC 3.3: on any trigger, the corrected axis is l* = argmax gain; the regressed axis is raised."""
    mon = DriftMonitor(n_axes=3)
    for t in range(40):
        mon.update(torch.tensor([0.5 + 0.004 * t, 0.5 + 0.001 * t, 0.5 - 0.01 * t]))  # axis 2 regresses
    e = mon.events[0]
    assert e["trigger"] == "regression" and e["axis"] == 0 and e["regressed"] == [2]
    assert e["multipliers"] == [0.5, 1.0, 1.25] and e["eps"] == 0.1 and e["beta"] == 0.08


def test_monitor_recovers_after_calm_steps():
    mon = DriftMonitor(n_axes=2)
    for t in range(30):
        mon.update(torch.tensor([0.5 + 0.02 * t, 0.5]))
    assert mon.eps < 0.2
    level = 0.5 + 0.02 * 29
    for _ in range(400):  # the other axis catches up: balanced, calm
        mon.update(torch.tensor([level, level]))
    assert mon.eps == pytest.approx(0.2) and mon.beta == pytest.approx(0.04)
    assert torch.allclose(mon.multipliers, torch.ones(2), atol=0.05)


def test_monitor_never_calls_the_only_axis_exploited():
    """k=2 (one subspace): a gain on the only axis is improvement, not single-axis exploitation; regression
    still fires."""
    m = DriftMonitor(1, MonitorConfig())
    for p in torch.linspace(0.5, 0.9, 30):
        assert m.update(torch.tensor([float(p)]))["trigger"] is None
    for _ in range(30):
        m.update(torch.tensor([0.1]))
    assert m.events and all(e["trigger"] == "regression" for e in m.events)


def test_a_batch_may_mix_prompts_with_and_without_a_verifier():
    """SPEC 3.4: one batch, two kinds of prompts. The verifier axis is the last one; the running scales and the
    monitor's multipliers keep their values across groups of either kind."""
    torch.manual_seed(0)
    est = ADVANTAGES.get("gprl")(GPRLConfig())
    open_g = Group(v=torch.nn.functional.normalize(torch.randn(4, 4), dim=-1), lam=torch.tensor([0.5, 0.5]), tau=0.1)
    ver_g = Group(v=torch.nn.functional.normalize(torch.randn(4, 4), dim=-1), lam=torch.tensor([0.5, 0.5]), tau=0.1,
                  verifier=torch.tensor([1.0, 0.0, 0.0, 1.0]))
    a1, i1 = est(ver_g)
    est.multipliers[0] = 0.5  # as the monitor would set it
    a2, i2 = est(open_g)
    assert len(i1["sigma"]) == 3 and len(i2["sigma"]) == 2 and est.multipliers[0] == 0.5
    est.update_scale([i1["sigma"], i2["sigma"]])
    assert est.sigma_bar.shape == (3,) and torch.isfinite(est.sigma_bar).all()
    assert torch.isclose(est.sigma_bar[2], i1["sigma"][2])  # the verifier axis's scale from the one group that has it
    a3, _ = est(open_g)
    assert torch.isfinite(a3).all() and torch.isfinite(a1).all()
    kept = est.sigma_bar[2].clone()
    est.update_scale([i2["sigma"]])  # a batch with no verifier prompt at all
    assert est.sigma_bar.shape == (3,) and est.sigma_bar[2] == kept
