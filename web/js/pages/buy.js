// Choose tickets: the seat map of a seated zone or a quantity for general admission, then one
// reserve with an Idempotency-Key (the same key for the same choice, so a double click or a
// retry makes one hold).
import { get, newKey, request } from '../api.js';
import { duration, errorBox, field, h, money, replace } from '../dom.js';
import { watchAvailability } from '../feed.js';
import { SeatMap, mount } from '../seatmap.js';
import { hasJoined, passes, passLeft } from '../state.js';

const WHY = {
  seat_unavailable: 'Someone else has just taken one of these seats. Choose another seat.',
  sold_out: 'Not enough tickets are left in this zone.',
  user_limit_exceeded: 'That would take you past the ticket limit per buyer for this event.',
  queue_pass_required: 'This sale runs through the waiting room: join it first.',
  queue_pass_invalid: 'Your queue pass has been used or has lapsed. Join the waiting room again.',
  sale_not_open: 'The sale has not opened yet.',
};

export async function render(main, [eventId, zoneId], { user, go }) {
  const here = `#/buy/${eventId}${zoneId ? '/' + zoneId : ''}`;
  if (!user) {
    go(`#/signin?next=${encodeURIComponent(here)}`);
    return undefined;
  }
  const event = await get(`/events/${encodeURIComponent(eventId)}`);
  document.title = `Tickets · ${event.name}`;
  const cleanups = [];
  let pass = passes.get(eventId) || null;
  if (event.queue.enabled && !pass && hasJoined(eventId)) {
    try {
      const place = await get(`/queue/position/${encodeURIComponent(eventId)}`);
      if (place.status === 'admitted') { pass = place; passes.set(eventId, place); }
    } catch { /* not in the queue */ }
  }
  // Without a pass the map is shown (live) but nothing can be reserved.
  const needsPass = event.queue.enabled && !pass;
  const queueNotice = needsPass ? h('p', { class: 'notice' }, 'This sale runs through a waiting room. ',
    h('a', { href: `#/queue/${eventId}` }, 'Join the waiting room'), ' and you come back here when it is your turn.') : null;
  const zone = event.zones.find((z) => z.zone_id === zoneId) || (event.zones.length === 1 ? event.zones[0] : null);
  const passLine = h('p', { class: 'notice', hidden: !pass });
  if (pass) {
    const tick = () => {
      const left = passLeft(pass);
      passLine.textContent = left > 0 ? `Your queue pass is valid for ${duration(left)} more: reserve before it lapses.` : 'Your queue pass has lapsed.';
    };
    tick();
    const timer = setInterval(tick, 1000);
    cleanups.push(() => clearInterval(timer));
  }
  if (!zone) {
    replace(main, h('h1', {}, event.name), queueNotice, passLine, h('h2', {}, 'Choose a zone'),
      h('ul', {}, event.zones.map((z) => h('li', {}, h('a', { href: `#/buy/${eventId}/${z.zone_id}` },
        `${z.name} (${z.seats ? 'seated' : 'general admission'}, ${money(z.price_minor, event.currency)})`)))));
    return () => cleanups.forEach((fn) => fn());
  }

  const limit = Math.min(event.max_per_user, 100);
  const problem = h('div', { 'aria-live': 'assertive' });
  const summary = h('p', { role: 'status' }, '');
  const reserve = h('button', { type: 'button', disabled: true }, 'Reserve');
  const availability = h('p', { class: 'muted' }, '');
  let key = newKey();
  let busy = false;
  let choice = () => ({});
  const selected = new Set();

  async function submit() {
    if (busy) return;
    busy = true;
    reserve.disabled = true;
    replace(problem);
    const headers = { 'Idempotency-Key': key };
    if (pass) headers['X-Queue-Pass'] = pass.queue_pass;
    const body = { event_id: eventId, zone_id: zone.zone_id, ...choice() };
    try {
      let booking = null;
      for (let attempt = 0; attempt < 20 && !booking; attempt++) {
        try {
          booking = await request('POST', '/bookings/reserve', { body, headers });
        } catch (err) {
          if (err.code !== 'idempotency_in_flight') throw err;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      if (!booking) throw new Error('The reservation is taking too long. Please try again.');
      passes.delete(eventId);
      go(`#/checkout/${booking.booking_id}`);
    } catch (err) {
      replace(problem, errorBox(WHY[err.code] ? `${WHY[err.code]} (${err.problem.detail || err.message})` : err.message));
      if (err.code === 'seat_unavailable' && map) {
        for (const label of selected) if (map.states.get(label) !== 'available') selected.delete(label);
        map.render();
      }
      key = newKey();
      busy = false;
      update();
    }
  }
  reserve.addEventListener('click', submit);

  let map = null;
  let update = () => {};
  let picker;
  if (zone.seats) {
    update = () => {
      const labels = [...selected];
      summary.textContent = labels.length
        ? `${labels.length} seat${labels.length === 1 ? '' : 's'} selected: ${labels.join(', ')} · total ${money(labels.length * zone.price_minor, event.currency)}`
        : `Choose up to ${limit} seat${limit === 1 ? '' : 's'}.`;
      reserve.disabled = busy || needsPass || labels.length === 0;
      reserve.textContent = labels.length ? `Reserve ${labels.length} seat${labels.length === 1 ? '' : 's'}` : 'Reserve';
    };
    map = new SeatMap({
      eventId, zone,
      isSelected: (label) => selected.has(label),
      onZones: (zones) => {
        const mine = zones.find((z) => z.zone_id === zone.zone_id);
        if (mine) availability.textContent = `${mine.available} of ${zone.capacity} seats available.`;
      },
      onClick: (label, state) => {
        if (busy) return;
        replace(problem);
        if (selected.has(label)) selected.delete(label);
        else if (state !== 'available') { replace(problem, errorBox(`Seat ${label} is not available.`)); return; }
        else if (selected.size >= limit) { replace(problem, errorBox(`You can choose at most ${limit} seats.`)); return; }
        else selected.add(label);
        key = newKey();
        map.render();
        update();
      },
    });
    cleanups.push(() => map.close());
    choice = () => ({ seats: [...selected] });
    picker = h('div', { id: 'seatmap' });
    mount(picker, map);
    map.ready.catch((err) => replace(problem, errorBox(err.message)));
  } else {
    const quantity = h('input', { type: 'number', min: '1', max: String(limit), value: '1', inputmode: 'numeric' });
    update = () => {
      const n = Math.max(1, Math.min(limit, Math.floor(Number(quantity.value) || 1)));
      summary.textContent = `${n} ticket${n === 1 ? '' : 's'} · total ${money(n * zone.price_minor, event.currency)}`;
      reserve.disabled = busy || needsPass;
      reserve.textContent = `Reserve ${n} ticket${n === 1 ? '' : 's'}`;
    };
    quantity.addEventListener('input', () => { key = newKey(); update(); });
    choice = () => ({ quantity: Math.max(1, Math.min(limit, Math.floor(Number(quantity.value) || 1))) });
    picker = field(`Tickets (at most ${limit})`, quantity);
    cleanups.push(watchAvailability(eventId, {
      onZones: (zones) => {
        const mine = zones.find((z) => z.zone_id === zone.zone_id);
        if (mine) availability.textContent = `${mine.available} of ${zone.capacity} places available.`;
      },
    }));
  }
  update();
  replace(main, h('h1', {}, `${event.name}: ${zone.name}`), queueNotice, passLine,
    h('p', {}, `${money(zone.price_minor, event.currency)} each · at most ${event.max_per_user} per buyer`),
    availability, picker, summary, h('p', {}, reserve), problem);
  return () => cleanups.forEach((fn) => fn());
}
