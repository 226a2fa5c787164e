// The service's readiness, shown above the dropzone until a predict worker is warm:
// "Warming up" while workers load the model, the reason while no model is active.

import { ROOT } from "./api.js";

const RETRY_MS = 2000;

/** Describe a /ready answer in a sentence, or return "" when the service is ready. */
export function readinessText(status, body) {
  if (status === 200) return "";
  const failed = (body && body.failed) || [];
  const checks = (body && body.checks) || {};
  if (failed.includes("database") || failed.includes("broker")) {
    return "The service is starting: its database or queue is not reachable yet.";
  }
  if (failed.includes("model")) {
    return "No model is active yet, so songs cannot be classified. Train one first.";
  }
  if (failed.includes("worker")) {
    return "Warming up: the workers are loading the model. Songs you drop now wait until it is ready.";
  }
  return (checks.worker && checks.worker.detail) || "The service is not ready yet.";
}

/** Poll /ready into `element` until the service is ready; return a function that stops it. */
export function watchReadiness(element) {
  let timer = null;
  let stopped = false;
  async function check() {
    let status = 0;
    let body = null;
    try {
      const response = await fetch(`${ROOT}ready`, { headers: { Accept: "application/json" } });
      status = response.status;
      body = await response.json().catch(() => null);
    } catch {
      status = 0;
    }
    if (stopped) return;
    const text = status === 0 ? "" : readinessText(status, body);
    element.textContent = text;
    element.hidden = !text;
    if (text) timer = window.setTimeout(check, RETRY_MS);
  }
  check();
  return () => {
    stopped = true;
    if (timer) window.clearTimeout(timer);
  };
}
