// What the pages of this tab share in memory: queue passes by event id (never stored: a reload
// asks GET /queue/position for the pass again).
export const passes = new Map();

export function passLeft(pass) {
  return pass && pass.pass_expires_at ? (new Date(pass.pass_expires_at) - Date.now()) / 1000 : 0;
}

// Which events this tab joined the queue of (so a page asks for a pass only where one may be).
const JOINED = 'booking-rush.joined';

export function markJoined(eventId, joined) {
  const all = new Set(JSON.parse(sessionStorage.getItem(JOINED) || '[]'));
  if (joined) all.add(eventId);
  else all.delete(eventId);
  sessionStorage.setItem(JOINED, JSON.stringify([...all]));
}

export function hasJoined(eventId) {
  return JSON.parse(sessionStorage.getItem(JOINED) || '[]').includes(eventId);
}
