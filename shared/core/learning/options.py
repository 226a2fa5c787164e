"""Training options: the hyper-parameters of a run, and how they map to and from a recipe."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from shared.core.audio.features import DEFAULT_FEATURES, FeatureConfig
from shared.core.nets import hparams
from shared.core.nets.recipe import Recipe


@dataclass(frozen=True)
class TrainOptions:
    """Training hyper-parameters; the defaults are the article's baseline."""

    epochs: int = hparams.EPOCHS
    batch_size: int = hparams.BATCH_SIZE
    learning_rate: float = hparams.LEARNING_RATE
    architecture: str = hparams.ARCHITECTURE
    patience: int = hparams.PATIENCE
    seed: int = hparams.SEED
    valid_fraction: float = hparams.VALID_FRACTION
    test_fraction: float = hparams.TEST_FRACTION
    split_dir: str | None = None
    cache_dir: str | None = None
    normalize: bool = True
    augment: bool = False
    progress_bar: bool = True
    embedding: str = "pool"  # musicnn output fed beside the MFCCs (FeatureConfig.musicnn)
    networks: tuple[str, ...] = ("MSD_musicnn",)  # musicnn weights whose embeddings are joined
    balanced: bool = False  # every genre weighs the same in the loss
    l2: float | None = None  # the musicnn head's weight decay (None: its default)
    embedding_dropout: float | None = None  # dropout on the embedding (None: the default)
    fusion: str = "early"  # how the LSTM meets the embeddings (fusion_model.py)
    lstm_units: int = 64  # the LSTM's width beside the embeddings
    mfcc_dropout: float = 0.0  # drop the MFCC branch for whole batches (musicnn models)
    channel_augment: bool = False  # EQ / gain / re-encoded copies of the training tracks

    @classmethod
    def from_recipe(cls, recipe: Recipe, **settings: Any) -> TrainOptions:
        """Return the options of ``recipe``; ``settings`` (cache, split, progress...) override."""
        values: dict[str, Any] = {
            "epochs": recipe.epochs,
            "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate,
            "architecture": recipe.architecture,
            "patience": recipe.patience,
            "normalize": recipe.normalize,
            "augment": recipe.augment,
            "embedding": recipe.embedding or cls.embedding,
            "networks": recipe.networks,
            "balanced": recipe.balanced,
            "l2": recipe.l2,
            "embedding_dropout": recipe.embedding_dropout,
            "fusion": recipe.fusion,
            "lstm_units": recipe.lstm_units,
            "mfcc_dropout": recipe.mfcc_dropout,
            "channel_augment": recipe.channel_augment,
        }
        return cls(**{**values, **settings})


def recipe_features(recipe: Recipe, base: FeatureConfig = DEFAULT_FEATURES) -> FeatureConfig:
    """Return the feature config a model of ``recipe`` reads (``base`` for the rest)."""
    return replace(
        base,
        n_mfcc=recipe.n_mfcc,
        deltas=recipe.deltas,
        musicnn=recipe.musicnn,
        loudness_db=recipe.loudness_db,
        cmvn=recipe.cmvn,
        audioset=recipe.audioset,
    )


def recipe_of(options: TrainOptions, feature_config: FeatureConfig) -> Recipe:
    """Return the recipe that ``options`` and ``feature_config`` train (named after its preset)."""
    return Recipe(
        architecture=options.architecture,
        n_mfcc=feature_config.n_mfcc,
        deltas=feature_config.deltas,
        augment=options.augment,
        normalize=options.normalize,
        embedding=options.embedding if feature_config.musicnn else None,
        networks=tuple(options.networks),
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        patience=options.patience,
        balanced=options.balanced,
        loudness_db=feature_config.loudness_db,
        l2=options.l2,
        embedding_dropout=options.embedding_dropout,
        cmvn=feature_config.cmvn,
        audioset=feature_config.audioset and feature_config.musicnn,
        fusion=options.fusion if feature_config.musicnn else "early",
        lstm_units=options.lstm_units,
        mfcc_dropout=options.mfcc_dropout if feature_config.musicnn else 0.0,
        channel_augment=options.channel_augment,
    ).named()
