// Recent songs: GET /jobs, newest first, each linking to its result page, each deletable.

import { deleteJSON, getJSON, jobPageUrl } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { SOUNDS_LIKE_NOTE, answerName, dateTime, genreColor, genreName, percent, timeAgo } from "./format.js";

const PER_PAGE = 8;

export class HistoryView {
  constructor({ list, status, pager, pageLabel, refreshButton, linkTo, onDeleted = () => {} }) {
    this.list = list;
    this.onDeleted = onDeleted;
    this.status = status;
    this.pager = pager;
    this.pageLabel = pageLabel;
    this.linkTo = linkTo;
    this.page = 1;
    this.total = 0;
    this.currentId = null;
    this.loading = null;
    refreshButton.addEventListener("click", () => this.load(this.page, { announce: true }));
    pager.addEventListener("click", (event) => {
      const dir = Number(event.target.closest("button")?.dataset.dir || 0);
      if (dir) this.load(this.page + dir);
    });
  }

  /** Mark the job shown in the result panel. */
  setCurrent(id) {
    this.currentId = id;
    for (const a of this.list.querySelectorAll("a[data-job-id]")) {
      if (a.dataset.jobId === id) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
  }

  async load(page = this.page, { announce = false } = {}) {
    this.list.setAttribute("aria-busy", "true");
    try {
      const data = await getJSON(`/jobs?page=${page}&per_page=${PER_PAGE}`);
      this.page = data.page || page;
      this.total = data.total ?? data.items.length;
      this.render(data.items || []);
      this.status.textContent = announce ? `Recent songs updated: ${this.total} in all.` : "";
    } catch (error) {
      this.status.textContent = `Could not load recent songs: ${error.detail || error.message}`;
    } finally {
      this.list.removeAttribute("aria-busy");
    }
  }

  render(items) {
    if (!items.length) {
      replace(this.list, h("li", { class: "history__empty" }, "No songs yet. Upload one to start."));
    } else {
      replace(this.list, items.map((job) => this.renderItem(job)));
    }
    const pages = Math.max(1, Math.ceil(this.total / PER_PAGE));
    this.pager.hidden = pages <= 1;
    this.pageLabel.textContent = `Page ${this.page} of ${pages}`;
    const [newer, older] = this.pager.querySelectorAll("button");
    newer.disabled = this.page <= 1;
    older.disabled = this.page >= pages;
    this.setCurrent(this.currentId);
  }

  renderItem(job) {
    const genre = job.result?.genre;
    let badge;
    if (job.status === "done" && genre) {
      badge = h("span", { class: job.result.uncertain ? "chip chip--unsure" : "chip", style: { "--genre": genreColor(genre) } }, answerName(job.result));
    } else {
      badge = h("span", { class: `badge badge--${job.status}` }, job.status === "processing" ? `processing ${percent(job.progress)}` : job.status);
    }
    const link = h("a", { class: "history__link", href: jobPageUrl(job.id), dataset: { jobId: job.id } },
      h("span", { class: "history__name" }, job.filename || job.id),
      h("span", { class: "history__meta" },
        badge,
        job.status === "done" && job.result ? h("span", { class: "history__conf" }, percent(job.result.confidence)) : null,
        job.status === "done" && job.result?.uncertain && job.result.sounds_like?.length
          ? h("span", { class: "history__sounds", title: SOUNDS_LIKE_NOTE }, `sounds like ${job.result.sounds_like[0].name}`)
          : null,
        h("time", { datetime: job.created_at, title: dateTime(job.created_at) }, timeAgo(job.created_at))));
    const name = job.filename || job.id;
    const remove = h("button", {
      type: "button",
      class: "button button--ghost button--small history__delete",
      "aria-label": `Delete ${name}`,
      title: "Delete this song, its result and its audio",
      onclick: () => this.remove(job, name),
    }, "Delete");
    return h("li", { class: "history__item" }, this.linkTo(job, link), remove);
  }

  /** DELETE the job (after a confirmation), then reload the page of the list. */
  async remove(job, name) {
    if (!window.confirm(`Delete "${name}", its result and its audio? This cannot be undone.`)) return;
    try {
      await deleteJSON(`/jobs/${encodeURIComponent(job.id)}`);
    } catch (error) {
      this.status.textContent = `Could not delete ${name}: ${error.detail || error.message}`;
      return;
    }
    announce(`Deleted ${name}.`);
    this.onDeleted(job.id);
    await this.load(this.page);
  }
}
