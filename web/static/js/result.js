// The result panel: one job's status while it runs, then its genre, every genre's probability,
// and a timeline to listen along with.

import { playableAudioUrl } from "./api.js";
import { h, replace } from "./dom.js";
import { SOUNDS_LIKE_NOTE, UNSURE_REASONS, bytes, clock, dateTime, genreColor, genreName, percent, ranked, soundsLikeText } from "./format.js";
import { labelSection } from "./label.js";
import { keepLoading } from "./player.js";
import { createTimeline } from "./timeline.js";

const pct = (x) => `${(Math.max(0, Math.min(1, x)) * 100).toFixed(2)}%`;

/** Status words for a job that is not finished yet. */
export function statusText(job) {
  if (job.status === "queued") return "Waiting for a worker…";
  if (job.status === "processing") {
    const p = Number(job.progress) || 0;
    return p > 0 ? `Listening… ${percent(p)}` : "Listening…";
  }
  if (job.status === "done") return "Done";
  if (job.status === "failed") return "Failed";
  return job.status || "";
}

export class ResultView {
  constructor(section) {
    this.section = section;
    this.body = section.querySelector("#result-body");
    this.jobId = null;
    this.renderedKey = null;
    this.timeline = null;
    this.audio = null;
  }

  /** Show a job (any status). Re-rendering the same finished job is a no-op. */
  show(job) {
    const key = `${job.id}:${job.status}:${job.status === "done" ? "" : job.progress}`;
    if (key === this.renderedKey) return;
    this.renderedKey = key;
    this.setVisible(true);
    this.section.dataset.status = job.status;
    this.section.dataset.jobId = job.id;
    if (this.jobId !== job.id || job.status !== "done") this.destroyTimeline();
    this.jobId = job.id;
    if (job.status === "done" && job.result) this.renderDone(job);
    else if (job.status === "failed") this.renderFailed(job);
    else this.renderPending(job);
  }

  /** Show that a job could not be loaded at all (e.g. 404). */
  showMissing(jobId, error) {
    this.destroyTimeline();
    this.jobId = jobId;
    this.renderedKey = null;
    this.setVisible(true);
    this.section.dataset.status = "missing";
    replace(this.body, h("div", { class: "notice notice--error", role: "alert" },
      h("h3", { class: "notice__title" }, error.status === 404 ? "No such song" : error.title),
      h("p", {}, error.status === 404
        ? `There is no job with the id “${jobId}”. It may have been removed, or the link is incomplete.`
        : error.detail || error.message)));
  }

  hide() {
    this.destroyTimeline();
    this.jobId = null;
    this.renderedKey = null;
    this.setVisible(false);
    replace(this.body);
  }

  setVisible(visible) {
    this.section.hidden = !visible;
    this.section.closest(".layout")?.classList.toggle("has-result", visible);
  }

  destroyTimeline() {
    if (this.timeline) this.timeline.destroy();
    this.timeline = null;
    if (this.stopWatching) this.stopWatching();
    this.stopWatching = null;
    // A detached <audio> keeps playing: silence the previous song before showing another.
    if (this.audio) {
      this.audio.pause();
      if (this.audio.src.startsWith("blob:")) URL.revokeObjectURL(this.audio.src);
      this.audio.removeAttribute("src");
      this.audio.load();
    }
    this.audio = null;
  }

  header(job, extra = []) {
    const meta = [];
    if (job.result?.duration_s) meta.push(clock(job.result.duration_s));
    if (job.size_bytes) meta.push(bytes(job.size_bytes));
    if (job.created_at) meta.push(h("time", { datetime: job.created_at, title: dateTime(job.created_at) }, `uploaded ${dateTime(job.created_at)}`));
    return h("header", { class: "result__head" },
      h("div", { class: "result__file" },
        h("p", { class: "eyebrow" }, "Song"),
        h("h3", { class: "result__filename" }, job.filename || job.id),
        h("p", { class: "result__meta" }, meta.flatMap((m, i) => (i ? [" · ", m] : [m])))),
      h("div", { class: "result__actions" }, extra));
  }

  renderPending(job) {
    const p = Number(job.progress) || 0;
    const progress = h("progress", { class: "progress", max: "1", "aria-label": "Classification progress" });
    if (job.status === "processing" && p > 0) progress.value = p;
    replace(this.body,
      this.header(job),
      h("div", { class: "pending" },
        h("div", { class: "pending__pulse", "aria-hidden": "true" }, h("span"), h("span"), h("span"), h("span"), h("span")),
        h("p", { class: "pending__text", role: "status" }, statusText(job)),
        progress,
        h("p", { class: "muted" }, job.status === "queued"
          ? "The song is uploaded and waiting in the queue."
          : "Cutting the song into 3-second slices and scoring each one.")));
  }

  renderFailed(job) {
    const error = job.error || {};
    replace(this.body,
      this.header(job),
      h("div", { class: "notice notice--error", role: "alert" },
        h("h3", { class: "notice__title" }, `Could not classify this song: ${error.title || "failed"}`),
        h("p", { class: "notice__detail" }, error.detail || "The worker gave no reason."),
        error.code ? h("p", { class: "notice__code" }, "Error code: ", h("code", {}, error.code)) : null));
  }

  renderDone(job) {
    if (this.timeline && this.body.querySelector(".verdict")) return;
    const result = job.result;
    const genre = result.genre;
    const colour = genreColor(genre);
    const rows = ranked(result.probabilities);
    // The genre is the vote's winner; the runner-up is the most probable of the others.
    const runnerUp = rows.find(([g]) => g !== genre);
    const votes = result.votes?.[genre] ?? 0;

    const copyButton = h("button", { type: "button", class: "button button--ghost button--small", onclick: () => copyLink(copyButton) }, "Copy link");

    const unsure = result.uncertain === true;
    const soundsLike = soundsLikeText(result);
    const verdict = h("section", { class: unsure ? "verdict verdict--unsure" : "verdict", style: { "--genre": colour }, "aria-label": "Verdict" },
      h("p", { class: "eyebrow" }, unsure ? "Not sure — closest genre" : "Genre"),
      h("p", { class: "verdict__genre", dataset: { genre } }, genreName(genre)),
      unsure
        ? h("p", { class: "verdict__unsure", role: "note" },
          UNSURE_REASONS[result.uncertain_reason] || UNSURE_REASONS.low_confidence)
        : null,
      soundsLike
        ? h("p", { class: "verdict__sounds", title: SOUNDS_LIKE_NOTE, "aria-description": SOUNDS_LIKE_NOTE }, soundsLike)
        : null,
      h("p", { class: "verdict__confidence" },
        h("span", { class: "verdict__value" }, percent(result.confidence)),
        h("span", { class: "verdict__label" }, " confidence")),
      h("p", { class: "verdict__votes" },
        `Won the vote: ${votes} of ${result.n_segments} slices`),
      runnerUp && runnerUp[1] > 0.15
        ? h("p", { class: "verdict__runner" }, `Runner-up: ${genreName(runnerUp[0])} ${percent(runnerUp[1])}`)
        : null);

    const votesOf = (g) => result.votes?.[g] ?? 0;
    const bars = h("section", { class: "probabilities", "aria-labelledby": "prob-title" },
      h("h3", { id: "prob-title", class: "subhead" }, "Every genre"),
      h("p", { class: "probabilities__legend", "aria-hidden": "true" },
        h("span", {}, "average probability"), h("span", {}, "slices")),
      h("ul", { class: "prob-bars" },
        rows.map(([g, p]) => h("li", {
          class: g === genre ? "is-top" : "",
          dataset: { genre: g },
          "aria-label": `${genreName(g)}: ${percent(p)} average probability, won ${votesOf(g)} of ${result.n_segments} slices`,
        },
        h("span", { class: "prob-bars__name" },
          h("span", { class: "swatch", style: { backgroundColor: genreColor(g) }, "aria-hidden": "true" }),
          genreName(g)),
        h("span", { class: "prob-bars__track", "aria-hidden": "true" },
          h("span", { class: "prob-bars__fill", style: { width: pct(p), backgroundColor: genreColor(g) } })),
        h("span", { class: "prob-bars__value", "aria-hidden": "true" }, percent(p)),
        h("span", { class: "prob-bars__votes", "aria-hidden": "true" }, String(votesOf(g)))))));

    // preload "auto" buffers ahead, so seeking on the timeline answers at once.
    const audio = h("audio", {
      class: "player",
      controls: true,
      preload: "auto",
      "aria-label": `Play ${job.filename || "the song"}`,
    });
    this.audio = audio;
    playableAudioUrl(job).then((url) => {
      if (this.audio === audio) audio.src = url;
      else if (url.startsWith("blob:")) URL.revokeObjectURL(url);
    }, () => { audio.replaceWith(h("p", { class: "muted" }, "The audio could not be loaded.")); });
    this.stopWatching = keepLoading(audio);
    this.timeline = createTimeline({ result, audio });

    const listen = h("section", { class: "listen", "aria-labelledby": "listen-title" },
      h("div", { class: "listen__head" },
        h("h3", { id: "listen-title", class: "subhead" }, "Listen along"),
        h("p", { class: "muted listen__hint" },
          "Each band is a 3-second slice in the colour of its top genre. Click a band to jump there.")),
      audio,
      this.timeline.element);

    replace(this.body,
      this.header(job, [copyButton]),
      h("div", { class: "result__summary" }, verdict, bars),
      labelSection(job),
      listen,
      h("p", { class: "result__model muted" }, `Model ${result.model_version || job.model_version || "?"}`));
  }
}

async function copyLink(button) {
  const url = window.location.href;
  try {
    await navigator.clipboard.writeText(url);
    button.textContent = "Link copied";
  } catch {
    window.prompt("Copy this link:", url);
  }
  setTimeout(() => { button.textContent = "Copy link"; }, 2000);
}
