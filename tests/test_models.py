"""The method's pure-torch parts: the KL response term, layer weights, real attention, target space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from deepsalt.models import (
    GaussianMLP,
    GaussianOutput,
    GaussianTransformer,
    SpectralAdaptationUnit,
    StudentEnsemble,
    StudentNet,
    TargetScaler,
    interval,
    sau_loss,
)
from deepsalt.models.autoencoder import SpectralEncoder, SpectralFeatures
from deepsalt.models.losses import (
    DistillationWeights,
    StudentTargets,
    distillation_loss,
    feature_alignment,
    gaussian_kl,
    layer_weights,
)
from deepsalt.models.norm import BoundedStandardizer, Standardizer
from deepsalt.models.sau import SAUBatch, SAULossWeights

finite = st.floats(-5, 5, allow_nan=False)
positive = st.floats(0.05, 5, allow_nan=False)


@settings(deadline=None)
@given(finite, positive, finite, positive)
def test_gaussian_kl_matches_torch_distributions(m1, s1, m2, s2):
    ours = gaussian_kl(torch.tensor(m1), torch.tensor(s1), torch.tensor(m2), torch.tensor(s2))
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, s1), torch.distributions.Normal(m2, s2)
    )
    assert float(ours) == pytest.approx(float(ref), rel=1e-4, abs=1e-5)
    assert float(ours) >= -1e-6


def _output(mean, std, n_layers=3, value=0.0):
    features = [torch.full((len(mean), 8), value) + torch.arange(8.0) for _ in range(n_layers)]
    return GaussianOutput(torch.tensor(mean), torch.tensor(std), features)


def _targets(y, teacher: GaussianOutput | None, source=(1, 1)):
    n = len(y)
    nan = torch.full((n,), float("nan"))
    return StudentTargets(
        torch.tensor(y, dtype=torch.float32),
        torch.tensor(source),
        teacher.mean if teacher is not None else nan,
        teacher.std if teacher is not None else nan,
        teacher.features if teacher is not None else [],
    )


NOISE = torch.tensor([0.3, 0.2])


def test_response_term_is_zero_only_when_the_distributions_agree():
    teacher = _output([0.5, 1.5], [0.3, 0.4])
    point = torch.sqrt(
        torch.tensor([0.3, 0.4]) ** 2 - NOISE[-1] ** 2
    )  # the student's spread plus point noise
    same = distillation_loss(
        _output([0.5, 1.5], point.tolist()), NOISE, _targets([0.0, 1.0], teacher), DistillationWeights()
    )
    assert float(same["response"]) == pytest.approx(0.0, abs=1e-6)
    other_mean = distillation_loss(
        _output([0.0, 1.0], point.tolist()), NOISE, _targets([0.0, 1.0], teacher), DistillationWeights()
    )
    other_std = distillation_loss(
        _output([0.5, 1.5], [0.9, 0.1]), NOISE, _targets([0.0, 1.0], teacher), DistillationWeights()
    )
    assert float(other_mean["response"]) > 0.1
    assert float(other_std["response"]) > 0.1


def test_total_loss_uses_the_default_weights():
    teacher = _output([0.5, 1.5], [0.3, 0.4], value=1.0)
    terms = distillation_loss(
        _output([0.0, 2.0], [0.5, 0.5]), NOISE, _targets([0.0, 1.0], teacher), DistillationWeights()
    )
    expected = 1.0 * terms["task"] + 0.10 * terms["feature"] + 1.0 * terms["response"]
    assert float(terms["loss"]) == pytest.approx(float(expected))


def test_rows_without_a_target_or_a_teacher_add_nothing_to_their_terms():
    teacher = _output([0.5, 1.5], [0.3, 0.4], value=1.0)
    student = _output([0.0, 2.0], [0.5, 0.5])
    both = distillation_loss(student, NOISE, _targets([0.0, 1.0], teacher), DistillationWeights())
    # Row 1 unmeasured: only row 0's task term remains, the teacher terms keep both rows.
    unmeasured = distillation_loss(
        student, NOISE, _targets([0.0, float("nan")], teacher), DistillationWeights()
    )
    first = distillation_loss(
        _output([0.0], [0.5]),
        NOISE,
        _targets([0.0], _output([0.5], [0.3], value=1.0), source=(1,)),
        DistillationWeights(),
    )
    assert float(unmeasured["task"]) == pytest.approx(float(first["task"]))
    assert float(unmeasured["response"]) == pytest.approx(float(both["response"]))
    alone = distillation_loss(student, NOISE, _targets([0.0, 1.0], None), DistillationWeights())
    assert float(alone["response"]) == 0.0 and float(alone["feature"]) == 0.0


def test_survey_rows_are_judged_with_the_survey_noise_and_weight():
    student = _output([0.0, 0.0], [0.1, 0.1])
    as_points = distillation_loss(student, NOISE, _targets([1.0, 1.0], None, (1, 1)), DistillationWeights())
    as_survey = distillation_loss(student, NOISE, _targets([1.0, 1.0], None, (0, 0)), DistillationWeights())
    assert float(as_survey["task"]) != pytest.approx(float(as_points["task"]))  # other noise, other NLL
    mixed = DistillationWeights(survey_weight=0.0)
    only_point = distillation_loss(student, NOISE, _targets([1.0, 5.0], None, (1, 0)), mixed)
    just_first = distillation_loss(_output([0.0], [0.1]), NOISE, _targets([1.0], None, (1,)), mixed)
    assert float(only_point["task"]) == pytest.approx(float(just_first["task"]))


@settings(deadline=None, max_examples=30)
@given(
    st.floats(0.05, 0.8),  # the same small residual on both rows, within Huber's quadratic range
    st.floats(0.05, 1.0),  # the point samples' learned noise
    st.floats(1.1, 4.0),  # how many times noisier the survey's labels are
    st.floats(0.05, 1.0),  # the student's own spread
)
def test_each_row_pulls_the_mean_in_proportion_to_its_precision(residual, point, ratio, spread):
    """With ``nll_mean`` a row of the noisier source moves the mean less; without it both pull alike."""
    noise = torch.tensor([point * ratio, point])  # (survey, point)
    nll_weight = 0.7  # not the default, so the closed form below cannot lean on it

    def pulls(nll_mean: bool) -> torch.Tensor:
        mean = torch.zeros(2, requires_grad=True)
        student = GaussianOutput(mean, torch.full((2,), spread), [])
        weights = DistillationWeights(nll_weight=nll_weight, survey_weight=1.0, nll_mean=nll_mean)
        targets = _targets([residual, residual], None, source=(0, 1))
        distillation_loss(student, noise, targets, weights)["loss"].backward()
        return -mean.grad

    survey_pull, point_pull = pulls(nll_mean=True)
    # per unit residual: Huber's pull plus nll_weight · the NLL's
    expected = (1 + nll_weight / (spread**2 + noise**2)).tolist()
    assert float(survey_pull) == pytest.approx(residual / 2 * expected[0], rel=1e-4)
    assert float(point_pull) == pytest.approx(residual / 2 * expected[1], rel=1e-4)
    assert float(point_pull) > float(survey_pull)
    detached = pulls(nll_mean=False)
    assert float(detached[0]) == pytest.approx(float(detached[1]), rel=1e-6)
    assert float(detached[0]) == pytest.approx(residual / 2, rel=1e-4)


def test_fourth_student_layer_is_aligned_to_the_last_teacher_layer_with_decayed_weight():
    assert layer_weights(4, 3) == [(0, 1.35), (1, 1.05), (2, 0.65), (2, pytest.approx(0.65 * 0.65 / 1.05))]
    assert layer_weights(3, 3) == [(0, 1.35), (1, 1.05), (2, 0.65)]


def test_feature_alignment_weights_each_layer():
    teacher = [torch.zeros(4, 8) + torch.arange(8.0)] * 3
    student = [t.clone() for t in teacher] + [teacher[-1].clone()]
    assert float(feature_alignment(student, teacher)) == pytest.approx(0.0, abs=1e-6)
    student[1] = -student[1]  # mismatch only at layer 2 (weight 1.05)
    single = torch.nn.functional.mse_loss(
        torch.nn.functional.layer_norm(student[1], (8,)), torch.nn.functional.layer_norm(teacher[1], (8,))
    )
    assert float(feature_alignment(student, teacher)) == pytest.approx(1.05 * float(single), rel=1e-5)


def test_attention_mixes_tokens_when_the_latent_is_a_sequence():
    torch.manual_seed(0)
    model = GaussianTransformer(
        64, 8, n_layers=2, n_heads=8, d_model=32, tokens=8, ff_dim=64, dropout=0.0
    ).eval()
    latent, cov = torch.randn(4, 64), torch.randn(4, 8)
    with torch.no_grad():
        weights = model.attention_weights(latent, cov)
    assert weights.shape == (4, 9, 9)  # 8 latent tokens + 1 covariate token
    off_diagonal = weights.sum(-1) - weights.diagonal(dim1=-2, dim2=-1)
    assert float(off_diagonal.min()) > 0.2  # every token attends substantially to the others
    # Changing only the last latent chunk changes the first token's state after one layer.
    h = model.tokenizer(latent, cov)
    latent2 = latent.clone()
    latent2[:, -8:] += 1.0
    h2 = model.tokenizer(latent2, cov)
    assert torch.allclose(h[:, 0], h2[:, 0])  # tokenisation is local ...
    first, second = model.layers[0](h), model.layers[0](h2)
    assert float((first[:, 0] - second[:, 0]).detach().abs().max()) > 1e-3  # ... attention is not


def test_one_token_variant_is_a_length_one_sequence():
    model = GaussianTransformer(64, 8, n_layers=4, n_heads=8, d_model=32, tokens=1, ff_dim=64).eval()
    weights = model.attention_weights(torch.randn(3, 64), torch.randn(3, 8))
    assert weights.shape == (3, 1, 1)
    assert torch.allclose(weights, torch.ones_like(weights))


def test_covariates_only_model_has_a_token_per_covariate():
    model = GaussianTransformer(0, 8, n_layers=2, n_heads=8, d_model=32, tokens=8, ff_dim=64).eval()
    out = model(None, torch.randn(5, 8))
    assert model.tokenizer.n_seq == 8
    assert out.mean.shape == (5,) and bool((out.std > 0).all())


def test_tokens_must_divide_the_latent():
    with pytest.raises(ValueError, match="not divisible"):
        GaussianTransformer(64, 8, tokens=7)


def _sau_batch(lab, sat, y, pool=None):
    pool = sat if pool is None else pool
    return SAUBatch(
        pool,
        torch.zeros(pool.shape, dtype=torch.bool),
        torch.full((len(pool),), float("nan")),
        lab,
        y,
        lab,
        sat,
        y,
    )


def test_sau_without_alignment_trains_the_autoencoders_independently():
    torch.manual_seed(0)
    sau = SpectralAdaptationUnit(
        80, 20, latent_dim=16, lab_hidden=(32,), sat_hidden=(32,), lab_binning=4
    ).eval()
    lab, sat, y = torch.randn(6, 80), torch.randn(6, 20), torch.randn(6)
    off = SAULossWeights(align=0.0, nce=0.0, target=0.0, survey_target=0.0)
    sau_loss(sau, _sau_batch(lab, sat, y), off)["loss"].backward()
    # The satellite encoder's gradient does not depend on the lab spectra without alignment.
    grad = sau.sat.encoder.net[0].weight.grad.clone()
    sau.zero_grad()
    sau_loss(sau, _sau_batch(lab * 3 + 1, sat, y), off)["loss"].backward()
    assert torch.allclose(grad, sau.sat.encoder.net[0].weight.grad)
    sau.zero_grad()
    sau_loss(sau, _sau_batch(lab * 3 + 1, sat, y), SAULossWeights())["loss"].backward()
    assert not torch.allclose(grad, sau.sat.encoder.net[0].weight.grad)


def test_identical_latents_have_zero_alignment_loss():
    sau = SpectralAdaptationUnit(
        40, 40, latent_dim=8, lab_hidden=(16,), sat_hidden=(16,), lab_binning=1, lab_derivative=False
    )
    sau.sat.load_state_dict(sau.lab.state_dict())
    sau.eval()
    x = torch.randn(5, 40)
    assert float(sau_loss(sau, _sau_batch(x, x, torch.zeros(5)), SAULossWeights())["align"]) == pytest.approx(
        0.0, abs=1e-6
    )


def test_masked_bands_are_hidden_from_the_encoder_but_reconstructed():
    torch.manual_seed(0)
    sau = SpectralAdaptationUnit(
        40, 20, latent_dim=8, lab_hidden=(16,), sat_hidden=(16,), lab_binning=1
    ).eval()
    pool = torch.randn(4, 20)
    mask = torch.zeros(4, 20, dtype=torch.bool)
    mask[:, :10] = True
    z1, recon, ref = sau.sat(pool, mask)
    changed = pool.clone()
    changed[:, :10] += 5.0  # masked bands: the latent cannot see them ...
    z2, _, ref2 = sau.sat(changed, mask)
    assert torch.allclose(z1, z2)
    assert not torch.allclose(ref, ref2)  # ... but the reconstruction is judged against them
    assert recon.shape == ref.shape == (4, 20)


def test_derivative_features_ignore_a_constant_offset_and_bin_adjacent_points():
    features = SpectralFeatures(12, binning=3, derivative=True)
    x = torch.arange(12.0)[None, :].repeat(2, 1)
    assert features.n_features == 3
    torch.testing.assert_close(features(x), features(x + 7.0))
    torch.testing.assert_close(features(x)[0], torch.tensor([3.0, 3.0, 3.0]))


def test_standardizer_fit_uses_finite_rows_only():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [np.nan, 100.0]])
    norm = Standardizer.empty(2).fit(values)
    torch.testing.assert_close(norm.mean, torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(norm.std, torch.tensor([1.0, 1.0]))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.lists(st.floats(-50, 50), min_size=3, max_size=3), min_size=2, max_size=20),
    st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
)
def test_bounded_standardizer_holds_values_at_the_fitted_range_and_says_by_how_much(rows, query):
    values = np.array(rows)
    std = np.maximum(values.std(axis=0), 1e-6)
    # The module computes in float32: where a column's spread is below float32's resolution of its
    # values (e.g. 10.7695 and 10.7681), the float64 reference is not what it can be held to.
    spread = values.max(axis=0) - values.min(axis=0)
    assume(np.all((spread == 0) | (np.abs(values).max(axis=0) * 1e-7 / std < 1e-4)))
    norm = BoundedStandardizer.empty(3).fit(values)
    z = (np.array(query) - values.mean(axis=0)) / std
    low, high = (
        (values.min(axis=0) - values.mean(axis=0)) / std,
        (values.max(axis=0) - values.mean(axis=0)) / std,
    )
    q = torch.tensor([query], dtype=torch.float32)
    np.testing.assert_allclose(norm(q)[0].numpy(), np.clip(z, low, high), rtol=1e-4, atol=1e-3)
    expected = max(0.0, float(np.max(np.maximum(z - high, low - z))))
    np.testing.assert_allclose(float(norm.excess(q)[0]), expected, rtol=1e-4, atol=1e-3)
    # every training row is inside its own range
    assert float(norm.excess(torch.tensor(values, dtype=torch.float32)).max()) < 1e-4


def test_covariates_beyond_the_training_range_change_no_prediction_and_raise_the_domain_score():
    student = _student()
    sat, survey = torch.randn(4, 10), torch.rand(4) * 5
    cov = torch.zeros(4, 8)
    far = cov.clone()
    norm = student.members[0].cov_norm
    far[:, 3] = 50.0  # ~50 training sd above the mean: beyond the range of any fitted row
    edge = cov.clone()
    edge[:, 3] = norm.mean[3] + norm.high[3] * norm.std[3]  # the largest fitted value
    near, score_near = student.forward_with_domain(sat, edge, survey)
    out, score = student.forward_with_domain(sat, far, survey)
    torch.testing.assert_close(out.mean, near.mean)
    # the spread grows with the score: the variance in proportion to it beyond 1
    torch.testing.assert_close(out.std, near.std * (score / score_near.clamp_min(1.0)).sqrt())
    excess = float((50.0 - norm.mean[3]) / norm.std[3] - norm.high[3])
    assert bool((score >= 1.0 + excess - 1e-4).all())
    assert bool((score_near < score).all())


def test_a_student_reading_some_covariates_ignores_the_others_everywhere():
    """The student takes the product's whole covariate table but reads only its configured columns:
    the others change neither the prediction, nor the spread, nor the domain score."""
    torch.manual_seed(0)
    columns = (0, 1)
    table = np.random.default_rng(0).normal(size=(200, 8))
    nets = [
        StudentNet(
            SpectralEncoder(10, 4, (8,), 0.0),
            GaussianMLP(4, 2 + 2, (8, 8), 0.0),
            BoundedStandardizer.empty(2, columns).fit(table),
            Standardizer.empty(1),
        )
        for _ in range(2)
    ]
    decoder = torch.nn.Linear(4, 10)
    student = StudentEnsemble(nets, decoder).eval()
    watching_all = StudentEnsemble(nets, decoder, 0, BoundedStandardizer.empty(8).fit(table))
    watching_all.eval()
    norm = student.members[0].cov_norm
    torch.testing.assert_close(norm.mean, torch.tensor(table[:, :2].mean(axis=0), dtype=torch.float32))
    sat, survey = torch.randn(4, 10), torch.rand(4) * 5
    cov = torch.zeros(4, 8)
    other = cov.clone()
    other[:, 2:] = 1e3  # far beyond any fitted value, in the columns the student does not read
    out, score = student.forward_with_domain(sat, cov, survey)
    out_other, score_other = student.forward_with_domain(sat, other, survey)
    torch.testing.assert_close(out_other.mean, out.mean)
    torch.testing.assert_close(out_other.std, out.std)
    torch.testing.assert_close(score_other, score)
    # Watching the whole table, the same unread climate leaves the prediction alone but flags the pixel.
    out_all, score_all = watching_all.forward_with_domain(sat, other, survey)
    torch.testing.assert_close(out_all.mean, out.mean)
    torch.testing.assert_close(out_all.std, out.std * (score_all / score.clamp_min(1.0)).sqrt())
    beyond = (1e3 - watching_all.covariate_range.mean[2:]) / watching_all.covariate_range.std[2:]
    expected = float((beyond - watching_all.covariate_range.high[2:]).max())
    assert bool((score_all >= 1.0 + expected - 1e-3).all()) and expected > 100
    torch.testing.assert_close(watching_all.forward_with_domain(sat, cov, survey)[1], score)
    read = cov.clone()
    read[:, 1] = 1e3  # a column it reads: clamped, and flagged
    assert bool((student.forward_with_domain(sat, read, survey)[1] > score).all())
    with pytest.raises(ValueError, match="3 columns given for 2 features"):
        BoundedStandardizer.empty(2, (0, 1, 2))


def _student(survey: bool = True, members: int = 2) -> StudentEnsemble:
    torch.manual_seed(0)
    nets = [
        StudentNet(
            SpectralEncoder(10, 4, (8,), 0.0),
            GaussianMLP(4, 8 + (2 if survey else 0), (8, 8), 0.0),
            BoundedStandardizer.empty(8).fit(np.random.default_rng(0).normal(size=(200, 8))),
            Standardizer.empty(1) if survey else None,
        )
        for _ in range(members)
    ]
    return StudentEnsemble(nets, torch.nn.Linear(4, 10)).eval()


def test_ensemble_spread_holds_the_members_disagreement_and_their_point_noise():
    student = _student()
    sat, cov, survey = torch.randn(5, 10), torch.randn(5, 8), torch.rand(5) * 5
    out, score = student.forward_with_domain(sat, cov, survey)
    parts = [m(sat, cov, survey) for m in student.members]
    means = torch.stack([p.mean for p in parts])
    var = torch.stack([p.std**2 + m.noise("point") ** 2 for p, m in zip(parts, student.members, strict=True)])
    torch.testing.assert_close(out.mean, means.mean(0))
    assert score.shape == (5,) and bool(torch.isfinite(score).all())
    mixture = var.mean(0) + means.var(0, unbiased=False)
    torch.testing.assert_close(out.std, torch.sqrt(mixture * score.clamp_min(1.0)))


def test_a_missing_survey_value_is_a_flag_not_a_number():
    student = _student()
    member = student.members[0]
    cov = torch.randn(3, 8)
    side = member.side_inputs(cov, torch.tensor([2.0, float("nan"), 0.0]))
    assert bool(torch.isfinite(side).all())
    torch.testing.assert_close(side[:, -1], torch.tensor([0.0, 1.0, 0.0]))  # the absent flag
    assert float(side[1, -2]) == 0.0


@settings(max_examples=50)
@given(st.lists(st.floats(0, 60), min_size=3, max_size=30), st.floats(-2, 2), st.floats(0.01, 2))
def test_target_space_round_trip_and_exact_intervals(ece, m, s):
    scaler = TargetScaler.fit(np.array(ece), "log1p")
    back, _ = scaler.decode(scaler.encode(np.array(ece)), np.ones(len(ece)))
    np.testing.assert_allclose(back, ece, rtol=1e-4, atol=1e-4)
    point, spread = scaler.decode(np.array([m]), np.array([s]))
    lo, hi = interval(point, spread, 0.95)
    # Exact log-normal quantiles of the model-space Gaussian, mapped to dS/m, around a median that
    # is never below 0 dS/m.
    mu, sd = max(m * scaler.std + scaler.mean, 0.0), s * scaler.std
    assert point[0] >= 0.0
    np.testing.assert_allclose(lo, np.expm1(mu - 1.959964 * sd), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(hi, np.expm1(mu + 1.959964 * sd), rtol=1e-3, atol=1e-4)
    assert lo[0] <= point[0] <= hi[0]
