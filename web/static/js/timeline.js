// The song timeline: one band per 3-second slice, coloured by the slice's top genre,
// a playhead that follows the <audio> player, hover/focus to inspect a slice, click or keys to seek.

import { h, replace } from "./dom.js";
import { clock, genreColor, genreName, percent, ranked, spokenDuration } from "./format.js";

let uid = 0;

const pct = (x) => `${(Math.max(0, Math.min(1, x)) * 100).toFixed(4)}%`;

/**
 * Build the timeline for a finished job's result and bind it to `audio`.
 * Returns {element, destroy}.
 */
export function createTimeline({ result, audio }) {
  const segments = result.segments || [];
  const lastEnd = segments.length ? segments[segments.length - 1].end : 0;
  const total = Math.max(Number(result.duration_s) || 0, lastEnd) || 1;
  const id = `timeline-${(uid += 1)}`;

  const bands = segments.map((seg) => h("div", {
    class: "band",
    dataset: { index: seg.index, genre: seg.genre },
    style: {
      left: pct(seg.start / total),
      width: pct((seg.end - seg.start) / total),
      backgroundColor: genreColor(seg.genre),
    },
  }));
  const tail = lastEnd < total - 0.05
    ? h("div", { class: "timeline__tail", style: { left: pct(lastEnd / total), width: pct(1 - lastEnd / total) }, title: "Too short for a full slice: not scored" })
    : null;
  const hoverMark = h("div", { class: "timeline__hover", hidden: true });
  const playhead = h("div", { class: "timeline__playhead" });
  const track = h("div", { class: "timeline__track" },
    h("div", { class: "timeline__bands" }, bands, tail, hoverMark), playhead);
  const tooltip = h("div", { class: "timeline__tooltip", hidden: true, "aria-hidden": "true" });

  const slider = h("div", {
    class: `timeline${segments.length > 90 ? " timeline--dense" : ""}`,
    id,
    role: "slider",
    tabindex: "0",
    "aria-label": "Song timeline, one band per 3-second slice. Arrow keys move between slices, Space plays or pauses.",
    "aria-valuemin": "0",
    "aria-valuemax": String(Math.round(total)),
    "aria-valuenow": "0",
    "aria-describedby": `${id}-inspector`,
  }, track, tooltip);

  const axis = h("div", { class: "timeline__axis", "aria-hidden": "true" },
    axisTicks(total).map((t) => h("span", { style: { left: pct(t / total) } }, clock(t))));

  const inspector = h("div", { class: "inspector", id: `${id}-inspector` });

  const element = h("div", { class: "timeline-block" }, slider, axis, createLegend(result), inspector);

  // ---- state --------------------------------------------------------------------------
  let current = -1; // slice under the playhead
  let hovered = -1; // slice under the pointer (or -1)
  let shownInInspector = null;
  let raf = 0;
  let dragging = false;
  let keyboardFocus = false; // focused from the keyboard: the tooltip follows the playhead

  function segmentAt(t) {
    if (!segments.length) return -1;
    let lo = 0;
    let hi = segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (segments[mid].start <= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  function timeAtClientX(clientX) {
    const rect = track.getBoundingClientRect();
    return Math.max(0, Math.min(1, (clientX - rect.left) / rect.width)) * total;
  }

  function renderInspector(index, mode) {
    const key = `${index}:${mode}`;
    if (key === shownInInspector) return;
    shownInInspector = key;
    const seg = segments[index];
    if (!seg) {
      replace(inspector, h("p", { class: "muted" }, "No slices to show."));
      return;
    }
    const rows = ranked(seg.probabilities);
    replace(inspector,
      h("div", { class: "inspector__head" },
        h("span", { class: "inspector__mode" }, mode === "hover" ? "Under the pointer" : "At the playhead"),
        h("span", { class: "inspector__where" },
          `Slice ${seg.index + 1} of ${segments.length} · ${clock(seg.start)}–${clock(seg.end)}`),
        h("strong", { class: "inspector__genre" },
          h("span", { class: "swatch", style: { backgroundColor: genreColor(seg.genre) }, "aria-hidden": "true" }),
          `${genreName(seg.genre)} ${percent(seg.probabilities?.[seg.genre])}`)),
      h("ul", { class: "mini-bars", "aria-label": `Genre probabilities of slice ${seg.index + 1}` },
        rows.map(([genre, p]) => h("li", {},
          h("span", { class: "mini-bars__name" }, genreName(genre)),
          h("span", { class: "mini-bars__bar", "aria-hidden": "true" },
            h("span", { style: { width: pct(p), backgroundColor: genreColor(genre) } })),
          h("span", { class: "mini-bars__value" }, percent(p))))));
  }

  function setBandClass(index, cls, on) {
    if (bands[index]) bands[index].classList.toggle(cls, on);
  }

  function renderTime(t) {
    playhead.style.left = pct(t / total);
    const index = segmentAt(Math.min(t, lastEnd - 1e-6));
    if (index !== current) {
      setBandClass(current, "is-current", false);
      current = index;
      setBandClass(current, "is-current", true);
    }
    const seg = segments[current];
    slider.setAttribute("aria-valuenow", String(Math.round(t)));
    slider.setAttribute("aria-valuetext", seg
      ? `${spokenDuration(t)} of ${spokenDuration(total)}, slice ${seg.index + 1}: ${genreName(seg.genre)} ${percent(seg.probabilities?.[seg.genre])}`
      : `${spokenDuration(t)} of ${spokenDuration(total)}`);
    if (hovered < 0) {
      renderInspector(current, "playhead");
      if (keyboardFocus) showFocusTooltip();
    }
  }

  function placeTooltip(index, t) {
    const seg = segments[index];
    if (!seg) return;
    tooltip.hidden = false;
    replace(tooltip,
      h("span", { class: "timeline__tooltip-time" }, `${clock(seg.start)}–${clock(seg.end)}`),
      h("span", { class: "swatch", style: { backgroundColor: genreColor(seg.genre) } }),
      `${genreName(seg.genre)} ${percent(seg.probabilities?.[seg.genre])}`);
    // Centre it over the slice, kept inside the timeline.
    const width = slider.clientWidth || 1;
    const half = (tooltip.offsetWidth || 120) / 2;
    const x = track.offsetLeft + (t / total) * track.offsetWidth;
    tooltip.style.left = `${Math.max(half, Math.min(width - half, x))}px`;
  }

  function showHover(t) {
    const index = segmentAt(Math.min(t, lastEnd - 1e-6));
    if (index !== hovered) {
      setBandClass(hovered, "is-hover", false);
      hovered = index;
      setBandClass(hovered, "is-hover", true);
    }
    if (!segments[index]) return;
    hoverMark.hidden = false;
    hoverMark.style.left = pct(t / total);
    placeTooltip(index, t);
    renderInspector(index, "hover");
  }

  function clearHover() {
    setBandClass(hovered, "is-hover", false);
    hovered = -1;
    hoverMark.hidden = true;
    if (keyboardFocus) showFocusTooltip();
    else tooltip.hidden = true;
    renderInspector(current, "playhead");
  }

  // While the timeline has keyboard focus, the tooltip names the slice under the playhead.
  function showFocusTooltip() {
    const seg = segments[current];
    if (seg) placeTooltip(current, (seg.start + seg.end) / 2);
  }
  slider.addEventListener("focus", () => {
    keyboardFocus = slider.matches(":focus-visible");
    if (keyboardFocus && hovered < 0) showFocusTooltip();
  });
  slider.addEventListener("blur", () => {
    keyboardFocus = false;
    if (hovered < 0) tooltip.hidden = true;
  });

  function seek(t) {
    const target = Math.max(0, Math.min(total, t));
    try {
      audio.currentTime = target;
    } catch {
      /* not seekable yet: the visual position still moves */
    }
    renderTime(target);
  }

  function seekSegment(index) {
    const i = Math.max(0, Math.min(segments.length - 1, index));
    if (segments[i]) seek(segments[i].start);
  }

  // ---- events -------------------------------------------------------------------------
  track.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    dragging = true;
    track.setPointerCapture?.(event.pointerId);
    seek(timeAtClientX(event.clientX)); // the press focuses the slider by itself
  });
  track.addEventListener("pointermove", (event) => {
    const t = timeAtClientX(event.clientX);
    if (dragging) seek(t);
    if (event.pointerType !== "touch" || dragging) showHover(t);
  });
  const endDrag = () => { dragging = false; };
  track.addEventListener("pointerup", endDrag);
  track.addEventListener("pointercancel", () => { endDrag(); clearHover(); });
  track.addEventListener("pointerleave", () => { if (!dragging) clearHover(); });

  slider.addEventListener("keydown", (event) => {
    const playing = current >= 0 ? current : 0;
    const moves = {
      ArrowRight: playing + 1,
      ArrowUp: playing + 1,
      ArrowLeft: playing - 1,
      ArrowDown: playing - 1,
      PageUp: playing + 10,
      PageDown: playing - 10,
      Home: 0,
      End: segments.length - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      keyboardFocus = true;
      // From the middle of a slice, Left goes back to its start first.
      const seg = segments[playing];
      if (event.key === "ArrowLeft" && seg && audio.currentTime - seg.start > 1) seekSegment(playing);
      else seekSegment(moves[event.key]);
    } else if (event.key === " " || event.key === "Enter" || event.key === "k") {
      event.preventDefault();
      if (audio.paused) audio.play().catch(() => {});
      else audio.pause();
    }
  });

  const frame = () => {
    renderTime(audio.currentTime);
    raf = requestAnimationFrame(frame);
  };
  const onPlay = () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(frame); };
  const onStop = () => { cancelAnimationFrame(raf); renderTime(audio.currentTime); };
  const onTime = () => { if (audio.paused) renderTime(audio.currentTime); };
  audio.addEventListener("play", onPlay);
  audio.addEventListener("pause", onStop);
  audio.addEventListener("ended", onStop);
  audio.addEventListener("seeked", onTime);
  audio.addEventListener("timeupdate", onTime);

  renderTime(0);

  return {
    element,
    destroy() {
      cancelAnimationFrame(raf);
      audio.removeEventListener("play", onPlay);
      audio.removeEventListener("pause", onStop);
      audio.removeEventListener("ended", onStop);
      audio.removeEventListener("seeked", onTime);
      audio.removeEventListener("timeupdate", onTime);
    },
  };
}

/** Round tick times for an axis of `total` seconds (at most ~6), ending with the total itself. */
function axisTicks(total) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800];
  const step = steps.find((s) => total / s <= 6) || 3600;
  const ticks = [];
  for (let t = 0; t < total - step * 0.5; t += step) ticks.push(t);
  ticks.push(total);
  return ticks;
}

/** A legend of genre colours with how many slices each genre won. */
function createLegend(result) {
  const votes = result.votes || {};
  const genres = Object.keys(result.probabilities || votes);
  genres.sort((a, b) => (votes[b] || 0) - (votes[a] || 0) || a.localeCompare(b));
  return h("ul", { class: "legend", "aria-label": "Timeline colours" },
    genres.map((genre) => h("li", { class: votes[genre] ? "" : "legend__none" },
      h("span", { class: "swatch", style: { backgroundColor: genreColor(genre) }, "aria-hidden": "true" }),
      h("span", {}, genreName(genre)),
      h("span", { class: "legend__count" }, `${votes[genre] || 0}`))));
}
