// The upload page's API key, asked for when the server requires keys (GENREFLOW_REQUIRE_KEYS=1;
// the page then carries the #client-key panel). Any valid key may upload and read its own jobs.
// The key is kept for this browser session (api.js storedKey) and sent with every request.

import { getJSON, storedKey, storeKey } from "./api.js";
import { announce } from "./dom.js";

/** Ask the server about `key`; resolve with "" when it is usable, else the sentence to show. */
async function refusalOf(key) {
  try {
    await getJSON("/whoami", { key });
    return "";
  } catch (error) {
    if (error.status === 401) return "That key is unknown or has been revoked. Enter another key.";
    return `The key could not be checked (${error.title}). Try again.`;
  }
}

/**
 * Wire the key panel, if the page has one. `onChange()` runs whenever the key in use changes
 * (reload what the key may see). Resolves once a stored key has been checked.
 */
export async function setUpClientKey({ onChange }) {
  const panel = document.getElementById("client-key");
  if (!panel) return;
  const form = document.getElementById("client-key-form");
  const input = document.getElementById("client-key-input");
  const status = document.getElementById("client-key-status");
  const forget = document.getElementById("client-key-forget");
  const NEEDED = status.textContent;

  function use(key, refusal) {
    const inUse = refusal ? "" : key;
    storeKey(inUse);
    form.hidden = Boolean(inUse);
    forget.hidden = !inUse;
    status.textContent = inUse ? `Using the API key ${inUse.slice(0, 11)}… for this browser session.` : refusal || NEEDED;
    status.classList.toggle("key-status--refused", Boolean(refusal));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    input.value = "";
    const refusal = await refusalOf(key);
    use(key, refusal);
    announce(refusal || "API key accepted; you can upload songs.");
    onChange();
  });
  forget.addEventListener("click", () => {
    use("", "");
    announce("API key forgotten.");
    input.focus();
    onChange();
  });

  const saved = storedKey();
  use(saved, saved ? await refusalOf(saved) : "");
}
