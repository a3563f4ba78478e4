// The one-tap rating after a real call (PROTOCOL.md section 15): five faces and
// "skip", gone after RATING_MS or on a tap. Only the score is sent; nothing of
// what was said is linked to it. Pure: the page (kiosk.js) draws and sends.

/** How long the faces stay up, then the tablet goes home. */
export const RATING_MS = 20000;

/** The scores, worst first (a face each: pictograms face1 … face5). */
export const SCORES = [1, 2, 3, 4, 5];

/** The language code of the daily automatic test call (never rated). */
export const TEST_LANGUAGE = "test";

/**
 * Whether the resident is asked to rate the call that just ended: only a real
 * call that was answered (the tablet was in the call), never one cancelled or
 * never answered, and never a test call.
 */
export function ratingOffered({ wasInCall, call, reason }) {
  if (!wasInCall || !call || !call.id) return false;
  if (reason === "transferred" || reason === "cancelled") return false;
  return call.language !== TEST_LANGUAGE && !call.test;
}
