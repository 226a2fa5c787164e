// Uploading: drag-and-drop or the file picker, one row per file with its upload progress,
// then the job's live status until it is done or failed.

import { ApiError, jobPageUrl, poll, uploadFile } from "./api.js";
import { announce, h, replace, svg } from "./dom.js";
import { answerName, bytes, genreColor, percent } from "./format.js";
import { statusText } from "./result.js";

const NOTE_ICON = () => svg("svg", { viewBox: "0 0 24 24", "aria-hidden": "true", focusable: "false" },
  svg("path", {
    d: "M9 18V5l11-2v13M9 18a3 3 0 1 1-3-3 3 3 0 0 1 3 3Zm11-2a3 3 0 1 1-3-3 3 3 0 0 1 3 3Z",
    fill: "none",
    stroke: "currentColor",
    "stroke-width": "2",
    "stroke-linecap": "round",
    "stroke-linejoin": "round",
  }));

/** One uploaded file: its row in the list and its job. */
class UploadItem {
  constructor(file, { onJob, onFinished, linkTo }) {
    this.file = file;
    this.onJob = onJob;
    this.onFinished = onFinished;
    this.linkTo = linkTo;
    this.job = null;
    this.stopPolling = null;

    this.status = h("span", { class: "upload-item__status" }, "Uploading…");
    this.progress = h("progress", { class: "progress", max: "1", value: "0", "aria-label": `Progress of ${file.name}` });
    this.action = h("div", { class: "upload-item__action" });
    this.message = h("div", { class: "upload-item__message" });
    this.element = h("li", { class: "upload-item", dataset: { state: "uploading" } },
      h("span", { class: "upload-item__icon" }, NOTE_ICON()),
      h("div", { class: "upload-item__main" },
        h("div", { class: "upload-item__line" },
          h("span", { class: "upload-item__name", title: file.name }, file.name),
          h("span", { class: "upload-item__size" }, bytes(file.size))),
        this.status,
        this.progress,
        this.message),
      this.action);
  }

  setState(state, text) {
    this.element.dataset.state = state;
    this.status.textContent = text;
  }

  async start() {
    try {
      const job = await uploadFile(this.file, {
        onProgress: (f) => {
          this.progress.value = f;
          this.status.textContent = f < 1 ? `Uploading… ${percent(f)}` : "Uploaded, starting…";
        },
      });
      this.update(job);
      this.onJob(job, this);
      if (job.status !== "done" && job.status !== "failed") {
        this.stopPolling = poll(`/jobs/${encodeURIComponent(job.id)}`, (j) => this.update(j), {
          onError: (error, { retrying } = {}) => {
            if (!retrying) this.refused(error);
            else this.status.textContent = "Lost contact with the server, still trying…";
          },
        });
      }
    } catch (error) {
      this.refused(error instanceof ApiError ? error : new ApiError(0, { detail: String(error) }));
    }
  }

  update(job) {
    const previous = this.job?.status;
    this.job = job;
    if (job.status === "queued" || job.status === "processing") {
      this.setState(job.status, statusText(job));
      if (job.status === "processing" && job.progress > 0) this.progress.value = job.progress;
      else this.progress.removeAttribute("value"); // indeterminate while queued
      return;
    }
    if (job.status === "done" && job.result) {
      const { genre, confidence } = job.result;
      const answer = answerName(job.result);
      this.setState("done", "");
      replace(this.status,
        h("span", { class: job.result.uncertain ? "chip chip--unsure" : "chip", style: { "--genre": genreColor(genre) } }, answer),
        ` ${percent(confidence)} confidence`);
      this.progress.value = 1;
      replace(this.action, this.linkTo(job, h("a", { class: "button button--small", href: jobPageUrl(job.id) }, "View result")));
      if (previous !== "done") announce(`${job.filename}: ${answer}, ${percent(confidence)} confidence.`);
    } else if (job.status === "failed") {
      this.setState("failed", "Could not classify");
      const error = job.error || {};
      replace(this.message, h("p", { class: "upload-item__error", role: "alert" },
        h("strong", {}, `${error.title || "Failed"}: `), error.detail || "The worker gave no reason."));
      replace(this.action, this.linkTo(job, h("a", { class: "button button--small button--ghost", href: jobPageUrl(job.id) }, "Details")));
    }
    if (previous !== job.status) this.onFinished(job, this);
  }

  refused(error) {
    this.setState("refused", error.status ? `Refused (${error.status})` : "Upload failed");
    this.progress.hidden = true;
    replace(this.message, h("p", { class: "upload-item__error", role: "alert" },
      h("strong", {}, `${error.title}: `), error.detail || error.message));
    replace(this.action, h("button", {
      type: "button",
      class: "button button--small button--ghost",
      "aria-label": `Dismiss ${this.file.name}`,
      onclick: () => this.element.remove(),
    }, "Dismiss"));
  }
}

/**
 * Wire the drop zone and file input. Calls hooks.onJob(job) when the server accepts a file and
 * hooks.onFinished(job) when a job is done or failed; hooks.linkTo(job, anchor) decorates links.
 */
export function setUpUploads({ dropzone, input, list, hooks }) {
  function addFiles(files) {
    const items = [...files].map((file) => new UploadItem(file, hooks));
    for (const item of items.reverse()) list.prepend(item.element);
    if (items.length) {
      announce(`Uploading ${items.length} file${items.length === 1 ? "" : "s"}.`);
      hooks.onBatch?.();
    }
    for (const item of items) item.start();
  }

  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });

  let depth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  dropzone.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    dropzone.classList.add("is-dragging");
  });
  dropzone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  dropzone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) dropzone.classList.remove("is-dragging");
  });
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    dropzone.classList.remove("is-dragging");
    if (event.dataTransfer?.files?.length) addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone is uploaded too, instead of the browser navigating to it.
  window.addEventListener("dragover", (event) => { if (hasFiles(event)) event.preventDefault(); });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event) || event.defaultPrevented) return;
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });

  return { addFiles };
}
