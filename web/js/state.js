// What the pages of this tab share in memory: queue passes by event id (never stored: a reload
// asks GET /queue/position for the pass again).
export const passes = new Map();

export function passLeft(pass) {
  return pass && pass.pass_expires_at ? (new Date(pass.pass_expires_at) - Date.now()) / 1000 : 0;
}
