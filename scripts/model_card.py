"""The shipped model's card: what it answers, how it holds up elsewhere, how sure it is.

Written by ``scripts/train_default_model.py`` from the benchmark's JSON
(``benchmarks/accuracy.py --out``), so every figure in it is one the benchmark printed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Genres with so few songs that the card names them as thin, with their own figures.
THIN_BELOW = 20
DATASETS = {
    "emotify": (
        'Emotify: A. Aljanaki, F. Wiering and R. C. Veltkamp, "Studying emotion induced by music '
        'through a crowdsourcing game", *Information Processing & Management* 52(1), 2016 '
        "(research use)"
    ),
    "4q": (
        '4Q audio emotion dataset: R. Panda, R. Malheiro and R. P. Paiva, "Novel audio '
        'features for music emotion recognition", *IEEE Transactions on Affective Computing*, '
        "2018; 30-s AllMusic previews (research use)"
    ),
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _summary(benchmark: dict, name: str) -> dict | None:
    return next((s for s in benchmark["variants"] if s["variant"]["name"] == name), None)


def headline(summary: dict) -> dict[str, float | None]:
    """Return the figures songs from elsewhere see: per source, cross-source, third source."""
    per = summary.get("per_source", {})
    return {
        "all": summary["pooled_by_rule"]["mean"],
        "emotify": per.get("emotify", {}).get("mean"),
        "4q": per.get("4q", {}).get("mean"),
        "cross": (summary.get("cross_source") or {}).get("overall"),
        "third": (summary.get("third_source") or {}).get("accuracy"),
    }


def lstm_section(benchmark: dict, shipped: dict) -> str:
    """Return what the LSTM branch adds or costs: the model against its own read-out."""
    readout = _summary(benchmark, f"{shipped['variant']['name']} · read-out")
    if readout is None:
        return "The linear read-out of the same embeddings was not measured in this run.\n"
    ours, base = headline(shipped), headline(readout)
    rows = [
        "| | all songs | Emotify | 4Q (artists held out) | cross-source | GTZAN samples |",
        "|---|---|---|---|---|---|",
    ]
    for label, figures in (
        ("this model (read-out voice + LSTM voice)", ours),
        ("a logistic regression on the same embeddings", base),
    ):
        rows.append(
            f"| {label} | "
            + " | ".join(_pct(figures[k]) for k in ("all", "emotify", "4q", "cross", "third"))
            + " |"
        )
    deltas = {
        k: (ours[k] - base[k]) * 100 for k in ours if ours[k] is not None and base[k] is not None
    }
    verdict = ", ".join(f"{k} {v:+.1f} points" for k, v in deltas.items())
    return (
        "\n".join(rows)
        + f"\n\nThis model against the linear read-out of the same embeddings: {verdict}. "
        "Why it ships all the same, and each lever's own figure: `docs/accuracy.md`.\n"
    )


def thin_section(benchmark: dict, shipped: dict) -> str:
    """Return the genres with few songs, each with its own figures."""
    genres = benchmark["genres"]
    confusion = np.asarray(shipped["confusion_matrix"])
    support = confusion.sum(axis=1)
    thin = [g for g, n in zip(genres, support, strict=True) if n < THIN_BELOW]
    if not thin:
        return ""
    lines = [
        "## Thin genres",
        "",
        f"{', '.join(thin)} have fewer than {THIN_BELOW} songs in the kit: the model learnt them "
        "from few examples, and their figures rest on few songs (pooled over the folds, by vote):",
        "",
        "| genre | songs | recall | F1 | most often taken for |",
        "|---|---|---|---|---|",
    ]
    for genre in thin:
        i = genres.index(genre)
        row = confusion[i].astype(float)
        recall = row[i] / max(row.sum(), 1)
        others = [(row[j], genres[j]) for j in range(len(genres)) if j != i and row[j] > 0]
        confused = ", ".join(f"{g} ({int(n)})" for n, g in sorted(others, reverse=True)[:2])
        lines.append(
            f"| {genre} | {int(row.sum())} | {recall:.0%} | "
            f"{shipped['per_genre_f1'][genre]:.2f} | {confused or '-'} |"
        )
    return "\n".join(lines) + "\n"


def method_section(variant: dict, *, genres: list[str], epochs: int) -> str:
    """How the shipped model is built, from its recipe."""
    loudness = variant.get("loudness_db")
    lstm = f"LSTM({variant.get('lstm_units', 64)})"
    cmvn = (
        " normalised per song (cepstral mean and variance normalisation: every coefficient "
        "standardised over all the song's frames, which takes a recording chain's colouring "
        "away),"
        if variant.get("cmvn")
        else ""
    )
    inputs = "`mfcc` float32 `(n, 130, 13)`, `logmel` float32 `(n, 187, 96)`"
    ear = ""
    if variant.get("audioset"):
        inputs += ", `audioset` float32 `(n, 384)`"
        ear = (
            " Beside it, the **AudioSet ear** (EfficientAT mn04, Schmid, Koutini & Widmer, "
            "ICASSP 2023; MIT), frozen, hears the same segment resampled to 32 kHz (its own "
            "128-band log-mel front end, `shared/core/audio/audioset_input.py`) and gives a "
            "384-wide embedding."
        )
    if variant.get("fusion") == "late":
        head = (
            "A **linear read-out** of the standardised embeddings (dropout, Dense(n genres), L2) "
            f"and the {lstm}'s own voice (dropout, Dense(n genres)) each give genre logits; they "
            "are added before the softmax: the LSTM is one voice beside the read-out."
        )
        if variant.get("mfcc_dropout"):
            head += (
                f" While training, the LSTM's voice is dropped for whole batches "
                f"({variant['mfcc_dropout']:.0%} of them), so the read-out must answer alone and "
                "the head cannot lean on what the MFCCs say about a recording's source."
            )
    else:
        head = (
            "The embeddings go through dropout and Dense(64, relu, L2); with the LSTM's output "
            "they meet in dropout → Dense(64, relu, L2) → softmax."
        )
    augment = (
        " Each training song also appears as a copy with a random EQ tilt (± 9 dB across the "
        "spectrum), gain (± 6 dB) and a re-encoding (mp3 32/48/128 kbit/s or Vorbis 64), its "
        "MFCCs only (`shared/core/learning/augment.py`)."
        if variant.get("channel_augment")
        else ""
    )
    return f"""## Method

Audio → ffmpeg (pydub) → 22,050 Hz mono → 3-s segments{
        f", each scaled to {loudness:g} dBFS RMS" if loudness is not None else ""
    }. Per segment: 13 MFCCs (librosa, n_fft 2048, hop 512: 130 x 13),{cmvn} into an {lstm};
a 16 kHz, 96-band log-mel patch (187 x 96) into **musicnn** (Pons & Serra, 2019; MSD weights,
ISC licence, `shared/core/nets/musicnn_weights/`), frozen, whose pool embedding (1,506) is
read.{ear} {head}{augment} Adam (1e-3), batch {variant.get("batch_size", 32)}, each genre
weighted by the inverse of its share of segments, {epochs} epoch(s) on all songs (the median
best epoch of the folds). The segments vote by mean probability.

Model inputs (one row per segment): {inputs}; output `(n, {len(genres)})` softmax in the order
of `genres` in the sidecar. The answer policy (song rule, temperature, threshold, novelty
check) is the sidecar's `answer` entry.
"""


def model_card(
    *,
    version: str,
    genres: list[str],
    benchmark: dict,
    shipped: dict,
    policy: Any,
    epochs: int,
    n_tracks: int,
    sources: dict[str, int],
    train_seconds: float,
    answer: str,
    benchmark_command: str,
) -> str:
    """Return the model card (Markdown) with the benchmark's figures."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import accuracy
    import generalisation

    name = shipped["variant"]["name"]
    table = accuracy.format_report(benchmark["variants"], benchmark["genres"], "")
    elsewhere = "\n".join(generalisation.format_generalisation(benchmark["variants"]))
    probe = benchmark.get("source_probe") or {}
    probe_lines = "\n".join(
        f"- segments {'as decoded' if level == 'None' else f'normalised to {level} dBFS'}: "
        + ", ".join(f"{view} {value:.2f}" for view, value in views.items())
        for level, views in probe.items()
    )
    data_lines = "\n".join(
        f"- **{source}** ({n} songs): {DATASETS.get(source, source)}"
        for source, n in sources.items()
    )
    chosen = [r for r in policy.figures["curve"] if r["threshold"] == policy.uncertain_below]
    unknown = chosen[0].get("unknown_flagged") if chosen else None
    caught = "an unmeasured share" if unknown is None else f"{unknown:.0%}"
    figures = headline(shipped)
    third = shipped.get("third_source") or {}
    answers = ", ".join(
        f"{clip.split('.')[0]} → {genre}" for clip, genre in third.get("answers", {}).items()
    )
    return f"""# Model card: genreflow's shipped model `{version}`

The model genreflow registers and activates on first start, so a fresh installation answers
real songs with no training step. A model you train yourself takes over through the normal
activation policy (`GENREFLOW_ACTIVATE_POLICY`), and you can roll back to this one on the models
page or with `POST /api/v1/models/{version}/activate`.

## What it answers

One of **{len(genres)} genres: {", ".join(genres)}**, with the probability of each, and
`uncertain: true` when it is not sure (below). A song of another genre (metal, folk, disco,
…) gets the closest of these; in the test below, {caught} of such songs were flagged
uncertain, and the rest got a confident answer of a neighbouring genre.

**Sounds like.** Every answer also carries `sounds_like`: the top three of AudioSet's fifty
music-genre classes ("Heavy metal", "Disco", "Soul music", …) with their scores, a second opinion
from a network trained on AudioSet (EfficientAT mn04, MIT; `shared/core/nets/audioset_weights/`),
in AudioSet's names. It is not one of this model's genres and does not change its answer; it is
most useful when the answer is `uncertain` or the song's genre is not among those above.

## How it holds up on songs it never heard

Chosen on songs the models never saw, never on mixed folds alone: {len(shipped["folds"])}-fold
cross-validation **by artist** (4Q's artists; Emotify, which has no artist lists, by track),
scored per source; **cross-source** (electronic, the one genre in both sources: a model trained
on one source's electronic songs only scores the other's, both ways, the other songs as in the
folds); and the kit's ten GTZAN clips, a **third source** no model trained on (the
{third.get("n", 0)} of its genres, scored by every fold's model). Every row's **linear
read-out** of the same features (a logistic regression, the baseline a model must beat) is the
row below it.

This model (**{name}**): **{_pct(figures["all"])}** of all held-out songs, **{
        _pct(figures["emotify"])
    }** of Emotify's, **{_pct(figures["4q"])}** of 4Q's (artists held out), **{
        _pct(figures["cross"])
    }** cross-source, **{_pct(figures["third"])}** of the GTZAN clips ({answers or "-"}).
{elsewhere}

### What the LSTM branch adds or costs

{lstm_section(benchmark, shipped)}
{thin_section(benchmark, shipped)}
## Every variant

Measured with `benchmarks/accuracy.py` on the shared 2-core development VM; the seed recipe
first:
{table}

**Two sources, one shortcut.** The source probe says how well the source of an electronic
track can be told from what the model sees (balanced accuracy of a logistic regression on track
means, cross-validated by artist; 0.5 = nothing, 1.0 = gives it away):

{probe_lines or "- not measured"}

{answer}
## The shipped model

The **{name}** row, trained once more on all {n_tracks} songs for {epochs} epoch(s) in
{train_seconds:.0f} s. The held-back songs the team keeps (artists the kit does not have, and a
third source) are the real test; the figures above are this kit's proxies for them.

{method_section(shipped["variant"], genres=genres, epochs=epochs)}
## Data and its terms

{data_lines}

Both are published for research use; this model inherits that: use it for research and
evaluation, and check the datasets' terms before any other use. The audio is not part of
genreflow. The pretrained networks: musicnn (ISC, `shared/core/nets/musicnn_weights/LICENSE`)
and EfficientAT mn04 (MIT; its provenance and AudioSet's class names, CC BY 4.0, in
`shared/core/nets/audioset_weights/`).

Reproduce: `{benchmark_command}`, then `python scripts/train_default_model.py
../shared/data/emotify ../shared/data/4q --benchmark <that run's JSON> --variant {name}`.
"""
