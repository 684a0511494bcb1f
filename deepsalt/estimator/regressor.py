"""``DeepSaltRegressor``: the DeepSalt method for users' own tables, as a scikit-learn regressor.

The method's network (:mod:`deepsalt.estimator.network`: the student ensemble, with a lab teacher
distilled into it when ``lab_X`` is given) is stacked with the two models soil spectroscopists
tune first, PLSR and an RBF SVR on principal components (:mod:`deepsalt.estimator.baselines`):

1. inner cross-validation gives out-of-fold predictions of one member per family and
   pre-treatment (``plsr:snv``, ``svr:sg1`` …, each tuned over its own candidates, the out-of-fold
   rows of each inner fold predicted by the candidate best on the other folds) and of the network;
2. the stack weights are the non-negative weights, summing to one, that minimise the out-of-fold
   squared error (``stack_weights_``); a member that adds nothing to the others gets no weight.
   ``stacked_`` records whether stacking beat choosing the single best member on held-out inner
   folds (weights and choice made on the other folds): stacking is kept either way, because
   choosing one member among several on a small table is the noisier of the two;
3. the members with weight are refitted on every row; the network's encoder is pretrained once per
   ``fit`` on unlabelled soil spectra (the spectra DeepSalt ships that match the table's axis, and
   the table's own rows);
4. the predictive spread is the network's Gaussian spread and the stack's out-of-fold error mixed
   by the network's weight, scaled so that the ``interval_level`` interval covers that share of
   the out-of-fold rows (``return_std=True``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from statistics import NormalDist

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from deepsalt.estimator.network import (
    NetworkSettings,
    TeacherOutputs,
    pretrained_encoder,
    teach,
    train_network,
)
from deepsalt.estimator.search import (
    Choice,
    PLSRParams,
    choose,
    features,
    inner_splits,
    plsr_candidates,
    simplex_weights,
    stacking_wins,
    svr_candidates,
)
from deepsalt.estimator.spectra import LIBRARY_PARTS, PRETREATMENTS, ColumnLayout, library_on_axis
from deepsalt.models.losses import DistillationWeights
from deepsalt.models.target import TargetScaler
from deepsalt.training.config import LoopSettings
from deepsalt.training.runtime import WorkerContext

MEMBERS = ("plsr", "svr", "network")
PRETRAIN_CHOICES = ("library", "own", "none")


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Torch and BLAS/OpenMP limited to ``n`` threads for the block (the networks and tables are small:
    more threads mostly contend, badly so on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n), torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(before)


class DeepSaltRegressor(RegressorMixin, BaseEstimator):
    """The DeepSalt network stacked with tuned PLSR and SVR by inner CV; predicts a mean and a spread.

    Parameters
    ----------
    wavelengths : array-like of shape (n_bands,), optional
        Spectral axis of the first ``n_bands`` columns of ``X`` (nm or cm⁻¹, any order); later
        columns are covariates. ``None``: every column is a band. Empty: no spectrum, every column is
        a covariate (e.g. terrain, climate and remote-sensing values at point samples).
    cv : int
        Inner folds (grouped when ``groups`` is passed to ``fit``).
    max_components : int
        Most PLSR components tried.
    members : sequence of {"plsr", "svr", "network"}
        Families in the stack.
    n_networks : int
        Networks in the ensemble (seeds); their Gaussian mixture is the network's prediction.
    epochs, patience, batch_size, learning_rate, weight_decay : network training
        (15 % of the rows stop it early).
    latent_dim, max_features : int
        Encoder latent width; bands are averaged in adjacent groups to at most ``max_features``.
    augment : bool
        Perturb spectra at every step (offset, slope, scatter, instrument-level noise).
    pretrain : {"library", "own", "none"}
        Masked-feature pretraining of the encoder on the shipped soil spectra that match the axis
        and the table's own rows (``library``), the own rows only, or none.
    pretrain_epochs : int
    library : sequence of str
        Shipped spectra usable for pretraining (``deepsalt.estimator.spectra.LIBRARY_PARTS``).
    distill_weight, feature_weight : float
        With ``lab_X``: weights of the KL(teacher ‖ network) and feature-alignment terms.
    interval_level : float
        Central interval whose out-of-fold coverage calibrates the spread.
    random_state : int
    n_threads : int
        Torch and BLAS threads during ``fit`` and ``predict``.
    """

    def __init__(
        self,
        wavelengths: Sequence[float] | None = None,
        cv: int = 5,
        max_components: int = 20,
        members: Sequence[str] = MEMBERS,
        n_networks: int = 3,
        epochs: int = 150,
        patience: int = 30,
        batch_size: int = 32,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-3,
        latent_dim: int = 16,
        max_features: int = 128,
        augment: bool = True,
        pretrain: str = "library",
        pretrain_epochs: int = 20,
        library: Sequence[str] = LIBRARY_PARTS,
        distill_weight: float = 1.0,
        feature_weight: float = 0.5,
        interval_level: float = 0.95,
        random_state: int = 0,
        n_threads: int = 1,
    ):
        self.wavelengths = wavelengths
        self.cv = cv
        self.max_components = max_components
        self.members = members
        self.n_networks = n_networks
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.latent_dim = latent_dim
        self.max_features = max_features
        self.augment = augment
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.library = library
        self.distill_weight = distill_weight
        self.feature_weight = feature_weight
        self.interval_level = interval_level
        self.random_state = random_state
        self.n_threads = n_threads

    def _network_settings(self) -> NetworkSettings:
        return NetworkSettings(
            members=self.n_networks,
            latent_dim=self.latent_dim,
            max_features=self.max_features,
            loop=LoopSettings(
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.learning_rate,
                weight_decay=self.weight_decay,
                patience=self.patience,
            ),
            pretrain_loop=LoopSettings(
                epochs=self.pretrain_epochs, batch_size=64, lr=2e-3, weight_decay=1e-4, patience=5
            ),
            augment=self.augment,
            distillation=DistillationWeights(
                alpha=1.0, beta=self.feature_weight, gamma=self.distill_weight, nll_weight=0.5
            ),
        )

    def _check_params(self) -> None:
        unknown = sorted(set(self.members) - set(MEMBERS))
        if unknown or not len(self.members):
            raise ValueError(f"members must be a non-empty subset of {MEMBERS}, got {list(self.members)}")
        if self.pretrain not in PRETRAIN_CHOICES:
            raise ValueError(f"pretrain must be one of {PRETRAIN_CHOICES}, got {self.pretrain!r}")
        if not 0.5 < self.interval_level < 1:
            raise ValueError(f"interval_level must lie in (0.5, 1), got {self.interval_level}")

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X, y, groups=None, lab_X=None):
        """Fit on spectra (+ covariates) ``X`` and target ``y``.

        ``groups`` keeps replicates of one sample in the same inner fold. ``lab_X`` (n, m): lab
        spectra of the same rows; a teacher learns from them and is distilled into the network,
        which alone predicts from ``X`` afterwards.
        """
        self._check_params()
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=2, dtype=np.float64)
        groups = None if groups is None else np.asarray(groups)
        if groups is not None and groups.shape[0] != X.shape[0]:
            raise ValueError(f"groups has {groups.shape[0]} entries for {X.shape[0]} rows of X")
        lab = None
        if lab_X is not None:
            lab = np.asarray(lab_X, dtype=np.float64)
            if lab.ndim != 2 or lab.shape[0] != X.shape[0] or not np.all(np.isfinite(lab)):
                raise ValueError(f"lab_X must be a finite (n_samples={X.shape[0]}, n_lab_bands) array")
        with _threads(self.n_threads):
            self._fit(X, y, groups, lab)
        return self

    def _fit(self, X, y, groups, lab) -> None:
        layout = ColumnLayout.from_wavelengths(self.wavelengths, X.shape[1])
        spectra, covariates = layout.split(X)
        self.layout_ = layout
        self.target_scaler_ = TargetScaler.fit(y, "none")
        yz = self.target_scaler_.encode(y).astype(np.float64)
        splits = inner_splits(len(y), groups, self.cv, self.random_state)
        pretreatments = PRETREATMENTS if layout.n_bands >= 3 else ("none",)
        if not splits:  # too few rows to cross-validate: a 1-component PLSR with the rows' spread
            choice = Choice(PLSRParams("none", 1), np.zeros_like(yz), 1.0)
            self.stack_ = {"plsr:none": (1.0, choice.fit(spectra, covariates, yz), choice.params)}
            self.stack_weights_, self.cv_rmse_ = {"plsr:none": 1.0}, {}
            self.network_, self.spread_, self.distillation_history_ = None, (0.0, 1.0, 1.0), []
            return
        ctx = WorkerContext(torch.device("cpu"))
        settings = self._network_settings()
        choices = self._classical(spectra, covariates, yz, splits, pretreatments)
        oof = {name: c.oof for name, c in choices.items()}
        encoder = self._pretrained(spectra, layout, settings, ctx)
        net_sd = np.ones_like(yz)
        if "network" in self.members:
            net_mean = np.zeros_like(yz)
            for k, (tr, te) in enumerate(splits):
                teacher = self._teacher(lab, yz, tr, settings, ctx, k)
                net = train_network(
                    spectra[tr],
                    covariates[tr],
                    yz[tr],
                    settings,
                    seed=self.random_state + k,
                    ctx=ctx,
                    encoder_state=encoder,
                    teacher=teacher,
                )
                net_mean[te], net_sd[te] = net.predict(spectra[te], covariates[te])
            oof["network"] = net_mean
        names = list(oof)  # classical members first, the network last
        stacked = np.column_stack([oof[n] for n in names])
        weights = simplex_weights(stacked, yz)
        self.stacked_ = stacking_wins(stacked, yz, splits)
        self.stack_weights_ = dict(zip(names, (float(w) for w in weights), strict=True))
        scale = self.target_scaler_.std
        stack_oof = stacked @ weights
        self.cv_rmse_ = {n: float(np.sqrt(np.mean((oof[n] - yz) ** 2)) * scale) for n in names}
        self.cv_rmse_["stack"] = float(np.sqrt(np.mean((stack_oof - yz) ** 2)) * scale)
        self.spread_ = self._calibrate(stack_oof, yz, net_sd)

        self.stack_ = {}
        for name, choice in choices.items():
            if self.stack_weights_[name] > 0:
                self.stack_[name] = (
                    self.stack_weights_[name],
                    choice.fit(spectra, covariates, yz),
                    choice.params,
                )
        self.network_ = None
        self.distillation_history_ = []
        if self.stack_weights_.get("network", 0.0) > 0 or lab is not None:
            teacher = self._teacher(lab, yz, np.arange(len(yz)), settings, ctx, len(splits))
            self.network_ = train_network(
                spectra,
                covariates,
                yz,
                settings,
                seed=self.random_state + len(splits),
                ctx=ctx,
                encoder_state=encoder,
                teacher=teacher,
            )
            self.distillation_history_ = self.network_.history if teacher is not None else []

    def _classical(self, spectra, covariates, yz, splits, pretreatments) -> dict[str, Choice]:
        """One stack member per family and pre-treatment (``plsr:snv``, ``svr:sg1`` …), each tuned
        by inner CV: pre-treatments err differently, and the stack combines what each gets right."""
        searches = {
            "plsr": lambda: plsr_candidates(
                spectra, covariates, yz, splits, pretreatments, self.max_components
            ),
            "svr": lambda: svr_candidates(spectra, covariates, yz, splits, pretreatments),
        }
        choices = {}
        for family, search in searches.items():
            if family not in self.members:
                continue
            candidates = search()
            for method in pretreatments:
                subset = {p: oof for p, oof in candidates.items() if p.pretreatment == method}
                choices[f"{family}:{method}"] = choose(subset, yz, splits)
        return choices

    def _pretrained(self, spectra, layout: ColumnLayout, settings: NetworkSettings, ctx):
        if "network" not in self.members or self.pretrain == "none" or layout.n_bands < 3:
            self.pretrain_rows_ = 0
            return None
        pool = spectra
        if self.pretrain == "library" and layout.axis is not None:
            pool = np.concatenate([library_on_axis(layout.axis, spectra, self.library), spectra])
        self.pretrain_rows_ = len(pool)
        return pretrained_encoder(pool, settings, self.random_state, ctx)

    def _teacher(self, lab, yz, rows, settings, ctx, k) -> TeacherOutputs | None:
        if lab is None:
            return None
        return teach(lab[rows], yz[rows], settings, self.random_state + 100 + k, ctx)

    def _calibrate(self, stack_oof, yz, net_sd) -> tuple[float, float, float]:
        """(network weight, out-of-fold RMSE of the stack, scale) of the spread (standardised units)."""
        w = self.stack_weights_.get("network", 0.0)
        rmse = float(np.sqrt(np.mean((stack_oof - yz) ** 2)))
        spread = w * net_sd + (1 - w) * rmse
        z = np.abs(stack_oof - yz) / np.maximum(spread, 1e-9)
        scale = float(
            np.quantile(z, self.interval_level) / NormalDist().inv_cdf(0.5 + self.interval_level / 2)
        )
        return w, rmse, max(scale, 1e-6)

    # ---- prediction -----------------------------------------------------------------------
    def predict(self, X, return_std: bool = False):
        """Predicted mean (and, with ``return_std``, the calibrated predictive standard deviation)."""
        check_is_fitted(self, "stack_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with _threads(self.n_threads):
            spectra, covariates = self.layout_.split(X)
            mean = np.zeros(len(X))
            for weight, model, params in self.stack_.values():
                x = features(spectra, covariates, params.pretreatment)
                mean += weight * np.asarray(model.predict(x)).ravel()
            w, rmse, scale = self.spread_
            spread = np.full(len(X), rmse)
            if self.network_ is not None and w > 0:
                net_mean, net_sd = self.network_.predict(spectra, covariates)
                mean += w * net_mean
                spread = w * net_sd + (1 - w) * rmse
        out, sd = self.target_scaler_.decode(mean, spread * scale)
        out, sd = out.astype(np.float64), sd.astype(np.float64)
        return (out, sd) if return_std else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        tags.non_deterministic = False
        return tags
