// The models page's review of users' labels: GET /labels?status=pending, then approve or
// reject each one (admin key only). Approved labels, with their audio, join the next training.

import { getJSON, jobPageUrl, postJSON } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { dateTime, genreName, timeAgo } from "./format.js";

const box = document.getElementById("label-review");

/** Show the pending labels (or why they are hidden) for the admin key `key` ("" = none). */
export async function loadPendingLabels(key) {
  if (!box) return;
  if (!key) {
    replace(box, h("p", { class: "muted" }, "Labels waiting for review appear here once an admin key is given (above)."));
    return;
  }
  box.setAttribute("aria-busy", "true");
  try {
    const data = await getJSON("/labels?status=pending&per_page=50", { key });
    render(data.items || [], data.total ?? 0, key);
  } catch (error) {
    replace(box, h("p", { class: "muted" }, `Could not load labels: ${error.detail || error.message}`));
  } finally {
    box.removeAttribute("aria-busy");
  }
}

function render(items, total, key) {
  if (!items.length) {
    replace(box, h("p", { class: "muted" }, "No labels are waiting for review."));
    return;
  }
  const table = h("table", { class: "table table--stack" },
    h("caption", { class: "visually-hidden" }, "Labels waiting for review, newest first"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Song"), h("th", { scope: "col" }, "User says"),
      h("th", { scope: "col" }, "Model said"), h("th", { scope: "col" }, "Given"),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Listen")),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Decision")))),
    h("tbody", {}, items.map((label) => h("tr", { dataset: { jobId: label.job_id } },
      h("th", { scope: "row" }, h("a", { href: jobPageUrl(label.job_id) }, label.filename || label.job_id)),
      h("td", { dataset: { label: "User says" } }, h("strong", {}, genreName(label.genre))),
      h("td", { dataset: { label: "Model said" } }, label.predicted_genre ? genreName(label.predicted_genre) : "—"),
      h("td", { dataset: { label: "Given" } }, h("time", { datetime: label.created_at, title: dateTime(label.created_at) }, timeAgo(label.created_at))),
      h("td", {}, h("audio", { controls: true, preload: "none", src: label.links?.audio, "aria-label": `Play ${label.filename}` })),
      h("td", { class: "actions" },
        h("button", { type: "button", class: "button button--small", "aria-label": `Approve ${label.genre} for ${label.filename}`, onclick: (e) => decide(label, "approve", e.currentTarget, key) }, "Approve"),
        " ",
        h("button", { type: "button", class: "button button--ghost button--small", "aria-label": `Reject ${label.genre} for ${label.filename}`, onclick: (e) => decide(label, "reject", e.currentTarget, key) }, "Reject"))))));
  replace(box,
    h("p", { class: "muted" }, `${total} label(s) waiting. Approved labels and their audio join the next training run; a genre the training folder lacks needs 20 approved songs first.`),
    h("div", { id: "label-status", role: "status" }),
    h("div", { class: "table-scroll", role: "region", "aria-label": "Labels waiting for review", tabindex: "0" }, table));
}

async function decide(label, action, button, key) {
  button.disabled = true;
  try {
    await postJSON(`/labels/${encodeURIComponent(label.job_id)}/${action}`, {}, { key });
    announce(`${action === "approve" ? "Approved" : "Rejected"} ${label.genre} for ${label.filename}.`);
    await loadPendingLabels(key);
  } catch (error) {
    button.disabled = false;
    const status = document.getElementById("label-status");
    if (status) status.textContent = `Could not ${action}: ${error.detail || error.message}`;
  }
}
