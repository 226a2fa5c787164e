// "Wrong genre?" under every result: PUT /jobs/<id>/label with the genre the song really is.
// The genre may be one the model does not know. A label from this page waits for an admin's
// review (on the models page) before it becomes training data.

import { deleteJSON, putJSON } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { genreName } from "./format.js";

const STATUS_TEXT = {
  pending: "waiting for an admin's review",
  approved: "approved: it joins the next training run",
  rejected: "not used for training (an admin rejected it)",
};

let formCount = 0;

/** The "Wrong genre?" section of a finished job. */
export function labelSection(job) {
  const id = ++formCount;
  const section = h("section", { class: "teach", "aria-labelledby": `teach-title-${id}` });
  render(section, job, job.label, id);
  return section;
}

function render(section, job, label, id) {
  const genres = Object.keys(job.result?.probabilities || {}).sort();
  const input = h("input", {
    id: `teach-genre-${id}`, name: "genre", required: true, maxlength: "64", autocomplete: "off",
    list: `teach-genres-${id}`, placeholder: "e.g. jazz, or a genre it does not know yet",
  });
  const status = h("p", { class: "teach__status", role: "status" });
  const form = h("form", {
    class: "teach__form",
    onsubmit: async (event) => {
      event.preventDefault();
      const genre = input.value.trim();
      if (!genre) return;
      form.querySelector("button").disabled = true;
      try {
        const saved = await putJSON(`/jobs/${encodeURIComponent(job.id)}/label`, { genre });
        render(section, job, saved, id);
        announce(`Thanks: you said ${genreName(saved.genre)}; ${STATUS_TEXT[saved.status] || saved.status}.`);
      } catch (error) {
        form.querySelector("button").disabled = false;
        status.textContent = `Could not save the label: ${error.detail || error.message}`;
      }
    },
  },
  h("label", { for: input.id }, "The right genre"),
  input,
  h("datalist", { id: `teach-genres-${id}` }, genres.map((g) => h("option", { value: g }))),
  h("button", { type: "submit", class: "button button--small" }, label ? "Change" : "Tell genreflow"));

  const uncertain = job.result?.uncertain;
  const current = label ? h("p", { class: "teach__current" },
    "You said ", h("strong", {}, genreName(label.genre)), ` (${STATUS_TEXT[label.status] || label.status}). `,
    h("button", {
      type: "button", class: "button button--ghost button--small",
      onclick: async () => {
        try {
          await deleteJSON(`/jobs/${encodeURIComponent(job.id)}/label`);
          render(section, job, null, id);
          announce("Label removed.");
        } catch (error) {
          status.textContent = `Could not remove the label: ${error.detail || error.message}`;
        }
      },
    }, "Remove")) : null;

  replace(section,
    h("h3", { id: `teach-title-${id}`, class: "subhead" }, "Wrong genre?"),
    h("p", { class: "muted" }, uncertain
      ? "The model is unsure about this song, so your answer helps most here. "
      : "If the model got it wrong, tell it what the song is. ",
      "Your answer is reviewed before it is used to train the next model, and the song is kept while it is."),
    current,
    form,
    status);
}
