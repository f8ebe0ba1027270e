"""TabM (Gorishniy et al., ICLR 2025) as an sklearn-like classifier, at the authors' defaults.

The ``tabm`` package ships only the model; this is the training recipe of its README and paper:
``TabM.make`` (k=32 members, 2 blocks of width 512 with numerical embeddings, dropout 0.1) with
piecewise-linear numerical embeddings (``PiecewiseLinearEmbeddings``, 48 quantile bins,
d_embedding 16, version "B"); AdamW, lr 2e-3, weight decay 3e-4; batch 256; the k members are
trained on the same batches with the mean of their k cross-entropy losses; early stopping on
validation accuracy of the mean of the members' probabilities, patience 16, on a stratified
20% of the training part; prediction: the mean of the k members' probabilities.

Inputs: numerical columns get median imputation and ``QuantileTransformer(output_distribution=
"normal")`` (as in the paper); categorical columns (category, text, bool) become integer codes
with missing and unseen values as one extra code, one-hot encoded inside TabM
(``cat_cardinalities``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import rtdl_num_embeddings
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import QuantileTransformer
from tabm import TabM


class TabMClassifier:
    def __init__(
        self,
        random_state: int = 0,
        k: int = 32,
        lr: float = 2e-3,
        weight_decay: float = 3e-4,
        batch_size: int = 256,
        patience: int = 16,
        max_epochs: int = 200,
        n_bins: int = 48,
        d_embedding: int = 16,
        val_fraction: float = 0.2,
        time_limit_s: float | None = None,
    ) -> None:
        self.random_state = random_state
        self.k = k
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.max_epochs = max_epochs
        self.n_bins = n_bins
        self.d_embedding = d_embedding
        self.val_fraction = val_fraction
        self.time_limit_s = time_limit_s

    # -- preprocessing ---------------------------------------------------------------------
    def _fit_prep(self, X: pd.DataFrame) -> None:
        num = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])
               and not isinstance(X[c].dtype, pd.CategoricalDtype)
               and not pd.api.types.is_bool_dtype(X[c])]  # fmt: skip
        # A constant numerical column carries nothing and breaks the bin computation.
        self.num_cols_ = [c for c in num if X[c].nunique() > 1]
        self.cat_cols_ = [c for c in X.columns if c not in num]
        self.medians_ = X[self.num_cols_].median()
        if self.num_cols_:
            n = len(X)
            self.qt_ = QuantileTransformer(
                output_distribution="normal",
                n_quantiles=max(min(n // 30, 1000), 10),
                subsample=1_000_000_000,
                random_state=self.random_state,
            ).fit(X[self.num_cols_].fillna(self.medians_).to_numpy(np.float64))
        self.levels_ = {c: pd.Index(X[c].dropna().astype(str).unique()) for c in self.cat_cols_}

    def _prep(self, X: pd.DataFrame) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        xn = xc = None
        if self.num_cols_:
            a = X[self.num_cols_].astype(float).fillna(self.medians_).to_numpy(np.float64)
            xn = torch.as_tensor(self.qt_.transform(a), dtype=torch.float32)
        if self.cat_cols_:
            codes = []
            for c in self.cat_cols_:
                s = X[c].astype(object).where(X[c].notna(), None)
                idx = self.levels_[c].get_indexer([None if v is None else str(v) for v in s])
                codes.append(np.where(idx < 0, len(self.levels_[c]), idx))  # missing/unseen
            xc = torch.as_tensor(np.stack(codes, 1), dtype=torch.long)
        return xn, xc

    # -- training --------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y) -> TabMClassifier:
        torch.manual_seed(self.random_state)
        y = np.asarray(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        Xtr, Xva, ytr, yva = train_test_split(
            X, yi, test_size=self.val_fraction, random_state=self.random_state, stratify=yi
        )
        self._fit_prep(Xtr)
        ntr, ctr = self._prep(Xtr)
        nva, cva = self._prep(Xva)
        ytr_t = torch.as_tensor(ytr, dtype=torch.long)
        emb = None
        if ntr is not None:
            emb = rtdl_num_embeddings.PiecewiseLinearEmbeddings(
                rtdl_num_embeddings.compute_bins(ntr, n_bins=self.n_bins),
                d_embedding=self.d_embedding,
                activation=False,
                version="B",
            )
        self.model_ = TabM.make(
            n_num_features=0 if ntr is None else ntr.shape[1],
            cat_cardinalities=[len(self.levels_[c]) + 1 for c in self.cat_cols_],
            d_out=len(self.classes_),
            num_embeddings=emb,
            k=self.k,
        )
        opt = torch.optim.AdamW(
            self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        gen = torch.Generator().manual_seed(self.random_state)
        best, best_state, bad = -1.0, None, 0
        t0 = time.perf_counter()
        self.epochs_ = 0
        for _ in range(self.max_epochs):
            self.model_.train()
            for idx in torch.randperm(len(ytr_t), generator=gen).split(self.batch_size):
                out = self.model_(
                    None if ntr is None else ntr[idx], None if ctr is None else ctr[idx]
                )  # (batch, k, classes)
                loss = F.cross_entropy(out.flatten(0, 1), ytr_t[idx].repeat_interleave(self.k))
                opt.zero_grad()
                loss.backward()
                opt.step()
            self.epochs_ += 1
            acc = float((self._proba(nva, cva).argmax(1) == yva).mean())
            if acc > best:
                best, bad = acc, 0
                best_state = {k: v.clone() for k, v in self.model_.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
            if self.time_limit_s is not None and time.perf_counter() - t0 > self.time_limit_s:
                break
        self.model_.load_state_dict(best_state)
        self.val_accuracy_ = best
        return self

    @torch.no_grad()
    def _proba(self, xn, xc) -> np.ndarray:
        self.model_.eval()
        n = len(xn) if xn is not None else len(xc)
        parts = []
        for s in range(0, n, 2048):
            out = self.model_(
                None if xn is None else xn[s : s + 2048], None if xc is None else xc[s : s + 2048]
            )
            parts.append(out.softmax(-1).mean(1))  # mean of the k members' probabilities
        return torch.cat(parts).numpy()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self._proba(*self._prep(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]
