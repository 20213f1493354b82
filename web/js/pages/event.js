import { get } from '../api.js';
import { h, money, replace, when } from '../dom.js';
import { watchAvailability } from '../feed.js';

export async function render(main, [eventId], { user }) {
  const event = await get(`/events/${encodeURIComponent(eventId)}`);
  document.title = `${event.name} · booking-rush`;
  const counters = new Map();
  const rows = h('tbody');
  const opened = new Date(event.sale_starts_at) <= new Date();
  for (const zone of event.zones) {
    const cell = h('td', {}, '…');
    counters.set(zone.zone_id, { cell, zone });
    let action;
    if (event.status !== 'on_sale') action = h('span', { class: 'muted' }, 'Not on sale');
    else if (event.queue.enabled) action = h('span', { class: 'muted' }, 'Through the waiting room');
    else action = h('a', { class: 'button', href: `#/buy/${event.event_id}/${zone.zone_id}` }, zone.seats ? `Choose seats in ${zone.name}` : `Buy ${zone.name} tickets`);
    rows.append(h('tr', {}, h('th', { scope: 'row' }, zone.name), h('td', {}, zone.seats ? 'Seated' : 'General admission'),
      h('td', {}, money(zone.price_minor, event.currency)), cell, h('td', {}, action)));
  }
  const live = h('p', { class: 'muted', role: 'status' }, 'Connecting to live availability…');
  let queueBlock = null;
  if (event.status === 'on_sale' && event.queue.enabled) {
    queueBlock = h('div', { class: 'notice' },
      h('p', {}, 'This sale runs through a waiting room: join it, and you move on to choose tickets when it is your turn.'),
      user ? h('a', { class: 'button', href: `#/queue/${event.event_id}` }, 'Join the waiting room')
        : h('a', { class: 'button', href: `#/signin?next=${encodeURIComponent('#/queue/' + event.event_id)}` }, 'Sign in to join the waiting room'));
  }
  replace(main,
    h('h1', {}, event.name),
    h('p', {}, `${event.venue} · ${when(event.starts_at)}`),
    h('p', {}, opened ? `On sale since ${when(event.sale_starts_at)}` : `Sale opens ${when(event.sale_starts_at)}`,
      ` · at most ${event.max_per_user} tickets per buyer`),
    queueBlock,
    h('h2', {}, 'Zones'),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Zone'), h('th', {}, 'Kind'), h('th', {}, 'Price'), h('th', {}, 'Available'), h('th', {}, h('span', { class: 'muted' }, 'Buy')))),
      rows)),
    live);
  if (event.status === 'draft') return undefined;
  return watchAvailability(event.event_id, {
    onState: (state) => { live.textContent = state === 'open' ? 'Availability is live.' : 'Reconnecting to live availability…'; },
    onZones: (zones) => {
      for (const zone of zones) {
        const entry = counters.get(zone.zone_id);
        if (entry) entry.cell.textContent = `${zone.available} of ${entry.zone.capacity}`;
      }
    },
  });
}
