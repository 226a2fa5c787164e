// Genre colours and number / time formatting shared by every view.

/** Fixed colours for the GTZAN genres and the shipped model's (electronic), chosen to stay apart
 * and to carry white text. Any other genre gets a stable colour from its name. */
export const GENRE_COLORS = Object.freeze({
  blues: "#2563eb",
  classical: "#a16207",
  country: "#c2410c",
  disco: "#c026d3",
  electronic: "#0e7490",
  hiphop: "#7c3aed",
  jazz: "#0f766e",
  metal: "#475569",
  pop: "#db2777",
  reggae: "#15803d",
  rock: "#dc2626",
});

const FALLBACK_COLORS = ["#0369a1", "#9333ea", "#b45309", "#4d7c0f", "#be123c", "#1d4ed8"];

const DISPLAY_NAMES = { hiphop: "Hip-hop" };

/** The colour of a genre; genres outside GTZAN get a stable colour from their name. */
export function genreColor(genre) {
  if (GENRE_COLORS[genre]) return GENRE_COLORS[genre];
  let hash = 0;
  for (const ch of String(genre)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return FALLBACK_COLORS[hash % FALLBACK_COLORS.length];
}

/** Why a result is flagged "not sure", in words (the API's `uncertain_reason`). */
export const UNSURE_REASONS = Object.freeze({
  low_confidence: "No genre this model knows fits the song well, so this is only the closest one.",
  unfamiliar_sound: "This does not sound like the music the model was trained on (speech, noise, a test tone?), so its answer means little.",
});

/** "Not sure — closest: Jazz" for an uncertain result, else the genre's name. */
export function answerName(result) {
  const name = genreName(result.genre);
  return result.uncertain ? `Not sure — closest: ${name}` : name;
}

/** What the AudioSet network says it sounds like: a second opinion, not one of the model's genres. */
export const SOUNDS_LIKE_NOTE =
  "A second opinion in AudioSet's class names, from a network trained on AudioSet (EfficientAT mn04), not one of this model's genres.";

/** "Sounds like: Heavy metal 0.45 · Punk rock 0.25 · Grunge 0.10", or null without the field. */
export function soundsLikeText(result) {
  const sounds = result?.sounds_like;
  if (!Array.isArray(sounds) || !sounds.length) return null;
  const items = sounds.map(({ name, score }) => `${name} ${(Number(score) || 0).toFixed(2)}`);
  return `Sounds like: ${items.join(" · ")}`;
}

/** "hiphop" → "Hip-hop", "rock" → "Rock". */
export function genreName(genre) {
  if (!genre) return "—";
  return DISPLAY_NAMES[genre] || genre.charAt(0).toUpperCase() + genre.slice(1);
}

/** 0.7123 → "71%"; small values keep one decimal ("0.4%"). */
export function percent(p, { digits } = {}) {
  const v = Math.max(0, Math.min(1, Number(p) || 0)) * 100;
  const d = digits ?? (v > 0 && v < 1 ? 1 : 0);
  return `${v.toFixed(d)}%`;
}

/** 83.4 → "1:23"; 3725 → "1:02:05". */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** A duration in words for screen readers: 83 → "1 minute 23 seconds". */
export function spokenDuration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const m = Math.floor(s / 60);
  const r = s % 60;
  const parts = [];
  if (m) parts.push(`${m} minute${m === 1 ? "" : "s"}`);
  if (r || !m) parts.push(`${r} second${r === 1 ? "" : "s"}`);
  return parts.join(" ");
}

/** 1536 → "1.5 KB". */
export function bytes(n) {
  const v = Number(n) || 0;
  if (v < 1024) return `${v} B`;
  const units = ["KB", "MB", "GB"];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}

/** An ISO time as "3 min ago" (falls back to the local date for older times). */
export function timeAgo(iso, now = Date.now()) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const s = Math.round((now - t) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** An ISO time as a full local date and time, for title attributes. */
export function dateTime(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso) : new Date(t).toLocaleString();
}

/** Genres of a probability map, highest first. */
export function ranked(probabilities) {
  return Object.entries(probabilities || {}).sort((a, b) => b[1] - a[1]);
}
