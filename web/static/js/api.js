// The page's only door to the server: the JSON API under /api/v1 (see docs/architecture.md).

/** Where the pages live ("/" unless the app is mounted under a prefix) and where the API lives. */
export const ROOT = document.body.dataset.root || "/";
export const API = `${ROOT}api/v1`;

/** The shareable page URL of a job. */
export const jobPageUrl = (id) => `${ROOT}jobs/${encodeURIComponent(id)}`;

/** An error answer of the API, carrying its problem+json fields. */
export class ApiError extends Error {
  constructor(status, problem = {}, fallback = "") {
    const title = problem.title || fallback || (status ? `HTTP ${status}` : "Network error");
    super(problem.detail || title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = problem.detail || "";
    this.code = problem.code || "";
  }
}

/** A network failure (the server could not be reached at all). */
function networkError() {
  return new ApiError(0, {
    title: "Could not reach genreflow",
    detail: "The server did not answer. Check your connection and try again.",
  });
}

function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const FALLBACK_DETAIL = {
  413: "The file is larger than the server accepts.",
  415: "That file is not an audio type genreflow can read.",
  503: "The service is not ready (no active model, or a backend is down).",
  507: "The server's disk is full; try again later.",
};

// ---- the API key -------------------------------------------------------------------------
// Asked for on the models page (admin) and, when the server requires keys
// (GENREFLOW_REQUIRE_KEYS=1), on the upload page; kept for this browser session only
// (sessionStorage): closing the tab forgets it. Every request sends it unless told otherwise.

const KEY_ITEM = "genreflow.adminKey";

/** The API key of this browser session, or "". */
export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM) || "";
  } catch {
    return "";
  }
}

/** Keep `key` for this browser session ("" forgets it). */
export function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_ITEM, key);
    else sessionStorage.removeItem(KEY_ITEM);
  } catch {
    // storage disabled: the key lives until the page is left
  }
}

async function request(method, url, body, { key = storedKey() } = {}) {
  let res;
  const headers = body === undefined
    ? { Accept: "application/json" }
    : { Accept: "application/json", "Content-Type": "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    res = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw networkError();
  }
  const data = parseBody(await res.text());
  if (!res.ok) {
    throw new ApiError(res.status, data || { detail: FALLBACK_DETAIL[res.status] }, res.statusText);
  }
  return data;
}

export const getJSON = (path, options) => request("GET", API + path, undefined, options);
export const postJSON = (path, body = {}, options) => request("POST", API + path, body, options);
export const putJSON = (path, body = {}, options) => request("PUT", API + path, body, options);
export const deleteJSON = (path, options) => request("DELETE", API + path, undefined, options);

/**
 * Upload one file to POST /jobs with XMLHttpRequest, so the upload reports progress.
 * Resolves with the job; rejects with ApiError (413, 415, 503, ...).
 */
export function uploadFile(file, { onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${API}/jobs`);
    xhr.setRequestHeader("Accept", "application/json");
    const key = storedKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      const data = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        if (onProgress) onProgress(1);
        resolve(data);
      } else {
        reject(new ApiError(xhr.status, data || { detail: FALLBACK_DETAIL[xhr.status] }, xhr.statusText));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, {
      title: "Upload interrupted",
      detail: "The connection closed during the upload. The file may be larger than the server accepts, or the server is down.",
    })));
    xhr.addEventListener("abort", () => reject(new ApiError(0, { title: "Upload cancelled", detail: "The upload was cancelled." })));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

const FINISHED = new Set(["done", "failed", "skipped"]);

/**
 * Poll `path` until its status is final. Calls onUpdate(resource) on every answer.
 * Network hiccups and 5xx answers are retried with a growing delay; 4xx answers end the poll.
 * Returns a function that stops polling.
 */
export function poll(path, onUpdate, { onError, interval = 600, maxInterval = 2500 } = {}) {
  let stopped = false;
  let timer = null;
  let delay = interval;
  let failures = 0;

  async function tick() {
    if (stopped) return;
    try {
      const resource = await getJSON(path);
      if (stopped) return;
      failures = 0;
      onUpdate(resource);
      if (FINISHED.has(resource.status)) return;
      delay = Math.min(maxInterval, delay * 1.25);
    } catch (error) {
      if (stopped) return;
      if (error.status >= 400 && error.status < 500) {
        if (onError) onError(error);
        return;
      }
      failures += 1;
      if (failures === 3 && onError) onError(error, { retrying: true });
      delay = Math.min(10000, delay * 2);
    }
    timer = setTimeout(tick, delay);
  }

  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Is this resource in a final state? */
export const isFinished = (resource) => FINISHED.has(resource?.status);

/** The audio URL of a job. */
export const audioUrl = (job) => job?.links?.audio || `${API}/jobs/${encodeURIComponent(job.id)}/audio`;

/**
 * Where the player reads a job's audio: its URL, or, while a key is in use (an <audio> element
 * cannot send one), a blob: URL of the audio fetched with the key. Revoke blob: URLs when done.
 */
export async function playableAudioUrl(job) {
  const key = storedKey();
  if (!key) return audioUrl(job);
  const res = await fetch(audioUrl(job), { headers: { Authorization: `Bearer ${key}` } });
  if (!res.ok) throw new ApiError(res.status, parseBody(await res.text()) || {}, res.statusText);
  return URL.createObjectURL(await res.blob());
}
