// Keep an <audio> element loading while it plays.
//
// Chromium can stop fetching for good after a burst of seeks (arrow keys held on the timeline)
// followed by play(): the element says it is playing, waits for data, and its network is idle.
// A seek to where it already is restarts the loader, so that is what the watchdog does.

const STALL_MS = 1500;

/** Watch `audio` for that stall and nudge it; returns a function that stops watching. */
export function keepLoading(audio, { afterMs = STALL_MS } = {}) {
  let timer = 0;

  const stuck = () => !audio.paused
    && audio.readyState < HTMLMediaElement.HAVE_FUTURE_DATA
    && audio.networkState === HTMLMediaElement.NETWORK_IDLE;

  const check = () => {
    timer = 0;
    if (!stuck()) return;
    audio.currentTime = audio.currentTime; // eslint-disable-line no-self-assign
    arm();
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(check, afterMs);
  };
  const disarm = () => {
    clearTimeout(timer);
    timer = 0;
  };

  audio.addEventListener("waiting", arm);
  audio.addEventListener("stalled", arm);
  audio.addEventListener("playing", disarm);
  audio.addEventListener("pause", disarm);
  return () => {
    disarm();
    audio.removeEventListener("waiting", arm);
    audio.removeEventListener("stalled", arm);
    audio.removeEventListener("playing", disarm);
    audio.removeEventListener("pause", disarm);
  };
}
