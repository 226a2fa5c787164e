// Entry of the classify page ("/" and "/jobs/<id>"): uploads, the result panel and history,
// with in-page navigation so running uploads survive opening a result.

import { jobPageUrl, poll, ROOT } from "./api.js";
import { setUpClientKey } from "./clientkey.js";
import { announce } from "./dom.js";
import { genreName } from "./format.js";
import { HistoryView } from "./history.js";
import { watchReadiness } from "./readiness.js";
import { ResultView } from "./result.js";
import { setUpUploads } from "./uploads.js";

const root = document.getElementById("classify");
const resultView = new ResultView(document.getElementById("result"));
let stopPolling = null;
let autoOpen = false; // open the next job the server accepts

function jobIdFromPath() {
  const rest = window.location.pathname.slice(ROOT.length);
  const match = rest.match(/^jobs\/([^/]+)\/?$/);
  return match ? decodeURIComponent(match[1]) : null;
}

/** Show one job in the result panel and follow it until it finishes. */
function openJob(id, { push = false, focus = false } = {}) {
  if (push && jobIdFromPath() !== id) window.history.pushState({ jobId: id }, "", jobPageUrl(id));
  if (stopPolling) stopPolling();
  stopPolling = null;
  recent.setCurrent(id);
  if (!id) {
    resultView.hide();
    document.title = "genreflow · what genre is this song?";
    return;
  }
  let first = true;
  stopPolling = poll(`/jobs/${encodeURIComponent(id)}`, (job) => {
    resultView.show(job);
    const verdict = job.status === "done" && job.result ? `${genreName(job.result.genre)} · ` : "";
    document.title = `${verdict}${job.filename || "Song"} · genreflow`;
    if (first && focus) revealResult();
    first = false;
  }, {
    onError: (error, { retrying } = {}) => {
      if (!retrying) resultView.showMissing(id, error);
    },
  });
}

/** Move focus to the result (for screen readers) and scroll it into view if it is off screen. */
function revealResult() {
  const section = resultView.section;
  section.focus({ preventScroll: true });
  const top = section.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.6) {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    section.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
  }
}

/** Make a link to a job open in place (plain clicks only; new-tab clicks keep working). */
function linkTo(job, anchor) {
  anchor.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    autoOpen = false;
    openJob(job.id, { push: true, focus: true });
  });
  return anchor;
}

const recent = new HistoryView({
  list: document.getElementById("history"),
  status: document.getElementById("history-status"),
  pager: document.getElementById("history-pager"),
  pageLabel: document.getElementById("history-page"),
  refreshButton: document.getElementById("history-refresh"),
  linkTo,
  onDeleted: (id) => {
    // The song shown in the result panel is gone: back to the upload page.
    if (recent.currentId !== id) return;
    window.history.pushState({}, "", ROOT);
    openJob(null);
  },
});

setUpUploads({
  dropzone: document.getElementById("dropzone"),
  input: document.getElementById("file-input"),
  list: document.getElementById("uploads"),
  hooks: {
    linkTo,
    onBatch: () => { autoOpen = true; },
    onJob: (job) => {
      recent.load(1);
      // The first file of a batch the server accepts opens at once: its progress, then result.
      if (autoOpen) {
        autoOpen = false;
        openJob(job.id, { push: true });
        announce(`Showing ${job.filename}; its result appears here when it is ready.`);
      }
    },
    onFinished: () => recent.load(recent.page),
  },
});

window.addEventListener("popstate", () => openJob(jobIdFromPath()));

watchReadiness(document.getElementById("service-status"));

// With keys required, a stored key is checked before the first requests that need it.
setUpClientKey({ onChange: () => recent.load(1) }).finally(() => {
  recent.load(1);
  openJob(root.dataset.jobId || jobIdFromPath(), { focus: Boolean(root.dataset.jobId) });
});
