// Verify the shuffle: the pre-queue's order comes from a seed fixed when the event was created.
// Its SHA-256 (the commitment) is public from the start, the seed once the sale opens; this page
// recomputes the hash in the browser (SubtleCrypto) and says whether they match, explains how the
// order follows from the seed, and recomputes the order from a list of joiners.
import { get } from '../api.js';
import { field, h, replace, when } from '../dom.js';
import { hexBytes, sha256Hex, shuffledOrder } from '../shuffle.js';

const STEPS = [
  'Take the user ids of everyone who joined before the sale opened, drop duplicates and sort them.',
  'Walk the list from its last index i down to 1; for each, draw j between 0 and i and swap items i and j (Fisher-Yates).',
  'A draw between 0 and n - 1 reads the first 8 bytes of HMAC-SHA256(key = the seed, message = a counter as 8 big-endian bytes) as an unsigned number; the counter starts at 0 and grows by one per HMAC.',
  'A number of 2^64 - (2^64 mod n) or more is discarded and the next counter tried (so no position is favoured); otherwise the draw is the number mod n.',
  'The resulting list is the queue at the opening: its first user is number 1.',
];

export async function render(main, [eventId], { user }) {
  const event = await get(`/events/${encodeURIComponent(eventId)}`);
  document.title = `Verify the shuffle · ${event.name}`;
  const result = h('div', { role: 'status', 'aria-live': 'polite', id: 'verify-result', class: 'card' }, 'Checking…');
  const { seed, seed_sha256: commitment } = event.queue;
  replace(main, h('h1', {}, `Verify the shuffle: ${event.name}`), result);
  if (!event.queue.enabled || !commitment) {
    replace(result, h('p', {}, 'This event has no waiting room, so there is no shuffle to verify.'));
    return;
  }
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'Commitment, published before anyone could join: SHA-256 of the seed'), h('dd', {}, h('code', { id: 'commitment' }, commitment)),
    h('dt', {}, 'Seed'), h('dd', {}, seed ? h('code', { id: 'seed' }, seed) : `revealed when the sale opens (${when(event.sale_starts_at)})`));
  main.append(facts, h('h2', {}, 'How the order is derived'), h('ol', {}, STEPS.map((step) => h('li', {}, step))),
    h('p', { class: 'muted' }, 'The service does not publish who joined (that would expose its buyers); anyone holding the list, an auditor for example, can recompute the whole order below.'));
  if (!seed) {
    replace(result, h('p', {}, 'The sale has not opened yet: the seed is still secret, so the shuffle cannot be checked before the opening. Its commitment is above.'));
    return;
  }
  const computed = await sha256Hex(hexBytes(seed));
  replace(result, computed === commitment
    ? h('p', { class: 'ok' }, 'The seed matches its commitment: the order was fixed before anyone joined.')
    : h('p', { class: 'bad' }, 'The seed does NOT match its commitment: this shuffle cannot be trusted.'),
  h('p', {}, 'SHA-256 of the seed, computed in this browser: ', h('code', { id: 'computed' }, computed)));

  const joiners = h('textarea', { rows: '6', spellcheck: 'false' });
  const compute = h('button', { type: 'button' }, 'Compute the order');
  const answer = h('div', { role: 'status', 'aria-live': 'polite', id: 'order-result' });
  compute.addEventListener('click', async () => {
    const ids = joiners.value.split(/\s+/).map((id) => id.trim()).filter(Boolean);
    if (!ids.length) {
      replace(answer, h('p', { class: 'error' }, 'Paste at least one user id.'));
      return;
    }
    const order = await shuffledOrder(hexBytes(seed), ids);
    const mine = user ? order.indexOf(user.user_id) : -1;
    replace(answer,
      h('p', {}, mine >= 0 ? `You are number ${mine + 1} of ${order.length}.` : `The order of ${order.length} joiner${order.length === 1 ? '' : 's'}:`),
      h('ol', { id: 'order' }, order.map((id) => h('li', { class: id === user?.user_id ? 'me' : null }, h('code', {}, id)))));
  });
  main.append(h('h2', {}, 'Recompute the order'),
    field('Joiners, one user id per line', joiners, user ? `Your user id: ${user.user_id}` : undefined),
    h('p', {}, compute), answer);
}
