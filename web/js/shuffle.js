// The pre-queue's order, recomputed in the browser exactly as the service computes it
// (booking.queue.service.shuffled_order): the joiners (user ids, duplicates dropped) sorted,
// then Fisher-Yates from the last index down; for index i, j = draw(i + 1) and items i and j
// swap. draw(n) reads the first 8 bytes of HMAC-SHA256(key = seed, message = a counter as 8
// big-endian bytes) as an unsigned integer, the counter starting at 0 and growing by one per
// HMAC; values >= 2^64 - (2^64 mod n) are rejected (no modulo bias), else the draw is value mod n.

const SPACE = 1n << 64n;

export function hexBytes(hex) {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) throw new Error('not a hex string');
  return Uint8Array.from(hex.match(/../g), (pair) => parseInt(pair, 16));
}

export function toHex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256Hex(bytes) {
  return toHex(await crypto.subtle.digest('SHA-256', bytes));
}

export async function shuffledOrder(seed, joiners) {
  const key = await crypto.subtle.importKey('raw', seed, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  // Python's sorted() on str compares code points; so does this comparison (not localeCompare).
  const order = [...new Set(joiners)].sort((a, b) => {
    const x = [...a].map((c) => c.codePointAt(0));
    const y = [...b].map((c) => c.codePointAt(0));
    for (let k = 0; k < Math.min(x.length, y.length); k++) if (x[k] !== y[k]) return x[k] - y[k];
    return x.length - y.length;
  });
  let counter = 0n;
  const message = new DataView(new ArrayBuffer(8));
  async function draw(bound) {
    const n = BigInt(bound);
    const limit = SPACE - (SPACE % n);
    for (;;) {
      message.setBigUint64(0, counter);
      counter += 1n;
      const digest = new DataView(await crypto.subtle.sign('HMAC', key, message.buffer));
      const value = digest.getBigUint64(0);
      if (value < limit) return Number(value % n);
    }
  }
  for (let i = order.length - 1; i > 0; i--) {
    const j = await draw(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
