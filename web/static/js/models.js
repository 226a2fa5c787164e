// Entry of the models page: the active model and its metrics, every version (activate / roll
// back), and retraining with live progress. The admin buttons appear once an admin key is given.

import { API, getJSON, isFinished, poll, postJSON, storedKey, storeKey } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { dateTime, genreColor, genreName, percent, timeAgo } from "./format.js";
import { loadPendingLabels } from "./label_review.js";

const activeBox = document.getElementById("active-model");
const versionsBox = document.getElementById("model-versions");
const trainButton = document.getElementById("train-button");
const trainStatus = document.getElementById("train-status");
const runsBox = document.getElementById("training-runs");
const trainLocked = document.getElementById("train-locked");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("key-input");
const keyStatus = document.getElementById("key-status");
const keyForget = document.getElementById("key-forget");
const KEY_NEEDED = keyStatus.textContent;

let stopTrainingPoll = null;
/** The admin key in use ("" until one is given and checked). */
let adminKey = "";
const withKey = () => ({ key: adminKey });

const metric = (m, key) => (m && typeof m[key] === "number" ? percent(m[key], { digits: 1 }) : "—");
const modelPath = (v) => `/models/${encodeURIComponent(v)}`;

function errorNotice(error, prefix = "") {
  return h("div", { class: "notice notice--error", role: "alert" },
    h("h3", { class: "notice__title" }, `${prefix}${error.title}`),
    error.detail && error.detail !== error.title ? h("p", { class: "notice__detail" }, error.detail) : null);
}

function tile(label, value, hint) {
  return h("div", { class: "tile" },
    h("dt", { class: "tile__label" }, label),
    h("dd", { class: "tile__value" }, value),
    hint ? h("dd", { class: "tile__hint" }, hint) : null);
}

function scrollTable(label, table) {
  return h("div", { class: "table-scroll", role: "region", "aria-label": label, tabindex: "0" }, table);
}

function renderActive(model) {
  if (!model) {
    replace(activeBox, h("div", { class: "notice notice--warn", role: "status" },
      h("h3", { class: "notice__title" }, "No active model"),
      h("p", {}, "Songs cannot be classified until a model is trained or activated. Train one below, or activate a version from the list.")));
    return;
  }
  const m = model.metrics || {};
  const perGenre = m.per_genre || {};
  const genres = model.genres || m.genres || Object.keys(perGenre);
  const cmUrl = model.links?.confusion_matrix || `${API}${modelPath(model.version)}/confusion-matrix.png`;

  const perGenreTable = Object.keys(perGenre).length ? scrollTable("Per-genre scores",
    h("table", { class: "table table--numbers" },
      h("caption", { class: "visually-hidden" }, "Per-genre precision, recall and F1 on the held-out test tracks"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Genre"), h("th", { scope: "col" }, "Precision"),
        h("th", { scope: "col" }, "Recall"), h("th", { scope: "col" }, "F1"),
        h("th", { scope: "col" }, "Support"))),
      h("tbody", {}, genres.filter((g) => perGenre[g]).map((g) => h("tr", {},
        h("th", { scope: "row" },
          h("span", { class: "swatch", style: { backgroundColor: genreColor(g) }, "aria-hidden": "true" }), genreName(g)),
        h("td", {}, metric(perGenre[g], "precision")),
        h("td", {}, metric(perGenre[g], "recall")),
        h("td", {}, metric(perGenre[g], "f1")),
        h("td", {}, String(perGenre[g].support ?? "—"))))))) : null;

  replace(activeBox,
    h("div", { class: "model-id" },
      h("p", { class: "eyebrow" }, "Version"),
      h("p", { class: "model-id__version", dataset: { version: model.version } }, model.version),
      h("p", { class: "muted" }, "Trained ", h("time", { datetime: model.created_at, title: dateTime(model.created_at) }, timeAgo(model.created_at)),
        ` · ${genres.length} genres`),
      m.evaluation ? h("p", { class: "muted model-id__evaluation" }, `Figures: ${m.evaluation}.`) : null,
      model.links?.card ? h("p", {}, h("a", { href: model.links.card, class: "model-card-link" }, "Model card"),
        " — its data and terms, method, accuracy and limits") : null),
    h("dl", { class: "tiles" },
      tile("Track accuracy (vote)", metric(m, "track_accuracy_vote"), "songs whose slices voted for the right genre"),
      tile("Slice accuracy", metric(m, "segment_accuracy"), "3-second slices scored right"),
      tile("Track accuracy (mean)", metric(m, "track_accuracy_mean"), "by mean probability"),
      tile("Test tracks", m.n_test_tracks ?? "—", m.evaluation ? "each scored by a model that never saw it" : "held out from training")),
    h("ul", { class: "genre-chips", "aria-label": "Genres this model knows" },
      genres.map((g) => h("li", { class: "chip", style: { "--genre": genreColor(g) } }, genreName(g)))),
    h("div", { class: "model-detail" },
      h("figure", { class: "confusion" },
        h("img", {
          src: cmUrl,
          alt: `Confusion matrix of model ${model.version} on its held-out test tracks: rows are true genres, columns the genres the tracks voted for.`,
          loading: "lazy",
          onerror: (event) => replace(event.target.parentNode, h("p", { class: "muted" }, "No confusion-matrix image for this model.")),
        }),
        h("figcaption", { class: "muted" }, "Confusion matrix on the held-out test tracks: rows are the true genre, columns the genre each track's slices voted for.")),
      perGenreTable));
}

function renderVersions(items, activeVersion) {
  if (!items.length) {
    replace(versionsBox, h("p", { class: "muted" }, "No models yet."));
    return;
  }
  const active = items.find((m) => m.version === activeVersion);
  const table = h("table", { class: "table table--stack" },
    h("caption", { class: "visually-hidden" }, "Every model version, newest first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Version"), h("th", { scope: "col" }, "Trained"),
      h("th", { scope: "col", class: "num" }, "Track acc."), h("th", { scope: "col", class: "num" }, "Slice acc."),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Action")))),
    h("tbody", {}, items.map((model) => {
      const isActive = model.version === activeVersion;
      const older = active && Date.parse(model.created_at) < Date.parse(active.created_at);
      return h("tr", { class: isActive ? "is-active" : "", dataset: { version: model.version } },
        h("th", { scope: "row" }, h("code", {}, model.version)),
        h("td", { dataset: { label: "Trained" } }, h("time", { datetime: model.created_at, title: dateTime(model.created_at) }, timeAgo(model.created_at))),
        h("td", { class: "num", dataset: { label: "Track acc." } }, metric(model.metrics, "track_accuracy_vote")),
        h("td", { class: "num", dataset: { label: "Slice acc." } }, metric(model.metrics, "segment_accuracy")),
        h("td", { class: "actions" }, isActive
          ? h("span", { class: "badge badge--done" }, "Active")
          : !adminKey ? null : h("button", {
            type: "button",
            class: "button button--small",
            "aria-label": `${older ? "Roll back to" : "Activate"} model ${model.version}`,
            onclick: (event) => activate(model.version, event.currentTarget),
          }, older ? "Roll back" : "Activate")));
    })));
  const locked = adminKey || items.length < 2 ? null : h("p", { class: "muted", id: "versions-locked" },
    "The Activate and Roll back buttons are hidden: they need an admin API key (enter it above).");
  replace(versionsBox, h("div", { id: "activate-status", role: "status" }), scrollTable("Model versions", table), locked);
}

async function loadModels() {
  try {
    const data = await getJSON("/models", withKey());
    const items = data.items || [];
    const activeVersion = data.active_version ?? items.find((m) => m.active)?.version ?? null;
    renderActive(items.find((m) => m.version === activeVersion));
    renderVersions(items, activeVersion);
  } catch (error) {
    replace(activeBox, errorNotice(error, "Could not load models: "));
  } finally {
    activeBox.removeAttribute("aria-busy");
  }
}

async function activate(version, button) {
  button.disabled = true;
  const status = document.getElementById("activate-status");
  try {
    await postJSON(`${modelPath(version)}/activate`, {}, withKey());
    await loadModels();
    announce(`Model ${version} is now active.`);
    document.getElementById("activate-status").textContent = `Model ${version} is now active.`;
  } catch (error) {
    button.disabled = false;
    replace(status, errorNotice(error, "Could not activate: "));
  }
}

// ---- training -----------------------------------------------------------------------------

const STAGES = {
  queued: "Waiting for the training worker…",
  features: "Extracting MFCC slices…",
  training: "Training the LSTM…",
  evaluating: "Scoring the test tracks…",
  comparing: "Comparing with the active model…",
};

function runSummary(run) {
  if (run.status === "done") {
    const m = run.metrics || {};
    const t = m.timings;
    const took = t ? ` Features took ${Math.round(t.features_s)} s, training ${Math.round(t.training_s)} s.` : "";
    const recipe = m.recipe ? ` with the ${m.recipe.name} recipe` : "";
    const why = m.comparison?.reason || "the active model scores better";
    return `Trained ${run.model_version || "a model"}${recipe}: track accuracy ${metric(m, "track_accuracy_vote")}, ` +
      `slice accuracy ${metric(m, "segment_accuracy")}.${took} ${run.activated ? "It is now the active model." : `It was not activated: ${why}.`}`;
  }
  if (run.status === "skipped") return run.error?.detail || "Skipped: the training data has not changed since the last model.";
  if (run.status === "failed") return run.error?.detail || "Training failed.";
  return "";
}

function renderRun(run) {
  const running = !isFinished(run);
  trainButton.disabled = running;
  trainButton.textContent = running ? "Training…" : "Train a new model";
  if (running) {
    const progress = h("progress", { class: "progress", max: "1", "aria-label": "Training progress" });
    if (run.status === "running" && run.progress > 0) progress.value = run.progress;
    const stage = run.status === "queued" ? STAGES.queued : STAGES[run.stage] || (run.stage ? `${run.stage}…` : "Training…");
    replace(trainStatus, h("div", { class: "train-run", dataset: { status: run.status } },
      h("p", { class: "train-run__stage" }, h("strong", {}, stage), run.progress > 0 ? ` ${percent(run.progress)}` : ""),
      progress));
  } else if (run.status === "failed") {
    replace(trainStatus, h("div", { class: "notice notice--error", role: "alert", dataset: { status: run.status } },
      h("h3", { class: "notice__title" }, `Training failed${run.error?.title ? `: ${run.error.title}` : ""}`),
      h("p", {}, runSummary(run))));
  } else {
    replace(trainStatus, h("div", { class: `notice ${run.status === "done" ? "notice--ok" : ""}`, role: "status", dataset: { status: run.status } },
      h("p", {}, runSummary(run))));
  }
}

function followRun(run) {
  if (stopTrainingPoll) stopTrainingPoll();
  renderRun(run);
  if (isFinished(run)) return;
  stopTrainingPoll = poll(`/training-runs/${encodeURIComponent(run.id)}`, (r) => {
    renderRun(r);
    if (isFinished(r)) {
      announce(`Training ${r.status}. ${runSummary(r)}`);
      loadModels();
      loadRuns();
    }
  }, { interval: 1000, maxInterval: 3000 });
}

async function loadRuns({ resume = false } = {}) {
  try {
    const data = await getJSON("/training-runs?per_page=5", withKey());
    const runs = (data.items || []).slice(0, 5);
    if (!runs.length) {
      replace(runsBox, h("p", { class: "muted" }, "No training runs yet."));
    } else {
      replace(runsBox, h("ol", { class: "runs" }, runs.map((run) => h("li", { class: "runs__item" },
        h("span", { class: `badge badge--${run.status}` }, run.status),
        h("span", {}, run.model_version ? h("code", {}, run.model_version) : run.stage || ""),
        h("span", { class: "muted" }, run.trigger ? `${run.trigger} · ` : "",
          h("time", { datetime: run.created_at, title: dateTime(run.created_at) }, timeAgo(run.created_at)))))));
    }
    const live = runs.find((run) => !isFinished(run));
    if (resume && live) followRun(live);
  } catch (error) {
    replace(runsBox, h("p", { class: "muted" }, `Could not load training runs: ${error.detail || error.message}`));
  }
}

trainButton.addEventListener("click", async () => {
  trainButton.disabled = true;
  replace(trainStatus, h("p", { class: "muted", role: "status" }, "Asking the server to train…"));
  try {
    const run = await postJSON("/models/train", {}, withKey());
    announce("Training started.");
    followRun(run);
    loadRuns();
  } catch (error) {
    trainButton.disabled = false;
    replace(trainStatus, errorNotice(error, "Training refused: "));
  }
});

// ---- the admin key -----------------------------------------------------------------------

/** Ask the server what `key` may do; resolve with the sentence to show when it is not admin. */
async function checkKey(key) {
  try {
    const me = await getJSON("/whoami", { key });
    if (me.can_admin) return "";
    return `This key has the "${me.scope}" scope: it can upload and read its own jobs, but not ` +
      "train, activate or roll back, so those buttons stay hidden. Enter a key with the admin scope.";
  } catch (error) {
    if (error.status === 401) return "That key is unknown or has been revoked, so the admin buttons stay hidden.";
    return `The key could not be checked (${error.title}); the admin buttons stay hidden.`;
  }
}

function useKey(key, refusal) {
  adminKey = refusal ? "" : key;
  // A refused key (say, a classify key the upload page uses) stays stored; "" forgets.
  if (!refusal) storeKey(adminKey);
  trainButton.hidden = !adminKey;
  trainLocked.hidden = Boolean(adminKey);
  keyForm.hidden = Boolean(adminKey);
  keyForget.hidden = !adminKey;
  keyStatus.textContent = adminKey
    ? `Using the admin key ${adminKey.slice(0, 11)}… for this browser session.`
    : refusal || KEY_NEEDED;
  keyStatus.classList.toggle("key-status--refused", Boolean(refusal));
  loadModels();
  loadPendingLabels(adminKey);
}

keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  keyInput.value = "";
  const refusal = await checkKey(key);
  useKey(key, refusal);
  announce(refusal || "Admin key accepted; the admin buttons are shown.");
});

keyForget.addEventListener("click", () => {
  useKey("", "");
  announce("Admin key forgotten; the admin buttons are hidden.");
  keyInput.focus();
});

async function start() {
  const saved = storedKey();
  if (saved) useKey(saved, await checkKey(saved));
  else useKey("", "");
  loadRuns({ resume: true });
}

start();
