// The waiting room: one stream (the queue position SSE), no polling.
import { authStream, request, get, post } from '../api.js';
import { duration, errorBox, h, replace, when } from '../dom.js';
import { markJoined, passes, passLeft } from '../state.js';

export async function render(main, [eventId], { user, go }) {
  if (!user) {
    go(`#/signin?next=${encodeURIComponent('#/queue/' + eventId)}`);
    return undefined;
  }
  const event = await get(`/events/${encodeURIComponent(eventId)}`);
  document.title = `Waiting room · ${event.name}`;
  const status = h('p', { class: 'big' }, 'Joining…');
  const detail = h('p', {}, '');
  const bar = h('progress', { max: '100', value: '0', 'aria-label': 'Progress through the waiting room' });
  const region = h('div', { role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true', class: 'card', id: 'queue-status' }, status, detail, bar);
  const notice = h('div');
  const problem = h('div');
  const leave = h('button', { type: 'button', class: 'secondary' }, 'Leave the waiting room');
  replace(main, h('h1', {}, `Waiting room: ${event.name}`), h('p', {}, `${event.venue} · ${when(event.starts_at)}`),
    region, notice, problem, h('p', {}, leave));

  let first = null;
  let stop = () => {};
  let finished = false;

  function showPosition(place) {
    const position = Number(place.position) || 0;
    if (first === null || position > first) first = position;
    const ahead = Math.max(0, position - 1);
    status.textContent = place.pre_queue
      ? `You are in the pre-queue (${position} joined so far).`
      : `You are number ${position} in line.`;
    const eta = Number(place.estimated_wait_s);
    detail.textContent = place.pre_queue
      ? 'Your place is drawn at random when the sale opens.'
      : `${ahead} ${ahead === 1 ? 'person' : 'people'} ahead of you. Estimated wait: ${Number.isFinite(eta) ? (eta < 1 ? 'under a second' : 'about ' + duration(eta)) : 'unknown'}.`;
    bar.value = first > 0 ? Math.round(((first - position) / first) * 100) : 0;
    if (place.pre_queue) {
      replace(notice, h('div', { class: 'notice' },
        h('p', {}, `The sale opens ${when(event.sale_starts_at)}. Everyone who joins before then is placed in a random order at the opening, so arriving early is no advantage.`),
        event.queue.seed_sha256 ? h('p', {}, 'Commitment to the shuffle seed (SHA-256): ', h('code', {}, event.queue.seed_sha256),
          '. The seed itself is published when the sale opens, so anyone can ', h('a', { href: `#/verify/${event.event_id}` }, 'verify the shuffle'), '.') : null));
    } else if (event.queue.seed) {
      replace(notice, h('p', { class: 'muted' }, 'The pre-queue was shuffled with the seed ', h('code', {}, event.queue.seed),
        ', published now that the sale is open: ', h('a', { href: `#/verify/${event.event_id}` }, 'verify the shuffle'), '.'));
    }
  }

  function admitted(pass) {
    finished = true;
    passes.set(eventId, pass);
    status.textContent = 'It is your turn!';
    detail.textContent = `Your pass is valid for ${duration(passLeft(pass))}. Taking you to the tickets…`;
    bar.value = 100;
    leave.hidden = true;
    setTimeout(() => go(`#/buy/${eventId}`), 600);
  }

  function soldOut() {
    finished = true;
    status.textContent = 'Sold out.';
    detail.textContent = 'Every ticket of this event is gone, so the waiting room has closed. Thank you for waiting.';
    bar.value = 0;
    leave.hidden = true;
  }

  try {
    const place = await post('/queue/join', { event_id: eventId });
    markJoined(eventId, true);
    if (place.status === 'admitted') {
      admitted(place);
      return undefined;
    }
    showPosition(place);
  } catch (err) {
    if (err.code === 'sold_out') soldOut();
    else replace(problem, errorBox(err.message));
    leave.hidden = true;
    return undefined;
  }

  stop = authStream(`/queue/position/${encodeURIComponent(eventId)}/stream`, {
    onState: (state) => { if (state === 'reconnecting' && !finished) detail.textContent = 'Connection lost; reconnecting (your place is kept)…'; },
    onEvent: (name, data) => {
      if (name === 'position') showPosition(data);
      else if (name === 'pass') { admitted(data); return true; }
      else if (name === 'sold_out') { soldOut(); return true; }
      else if (name === 'error') { finished = true; replace(problem, errorBox(data.message)); return true; }
      return false;
    },
  });

  leave.addEventListener('click', async () => {
    leave.disabled = true;
    try {
      await request('DELETE', `/queue/position/${encodeURIComponent(eventId)}`);
      markJoined(eventId, false);
      stop();
      finished = true;
      status.textContent = 'You left the waiting room.';
      detail.textContent = 'Your place was given up. You can join again, at the back of the line.';
      bar.value = 0;
      leave.hidden = true;
    } catch (err) {
      replace(problem, errorBox(err.message));
      leave.disabled = false;
    }
  });
  return () => stop();
}
