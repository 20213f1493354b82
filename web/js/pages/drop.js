// The live drop view: seats by state per zone, sales per second, the queue (length, passes
// outstanding, admitted per second) and the live figures (watchers, feed events per second,
// pass-delivery p99, summed over every booking process) from the event's stats endpoint
// (its organizer's or an admin's), refreshed every second; queue controls; suspend / unsuspend
// seats by clicking the seat map.
import { get, post, request } from '../api.js';
import { errorBox, field, h, replace } from '../dom.js';
import { SeatMap, mount } from '../seatmap.js';

// A bar chart of the last minute of one series (one bar per refresh), described in words.
function chart(label) {
  const bars = h('div', { class: 'spark', role: 'img', 'aria-label': label });
  const values = [];
  return {
    element: h('figure', {}, bars, h('figcaption', { class: 'muted' }, label)),
    push(value) {
      values.push(value);
      if (values.length > 60) values.shift();
      const most = Math.max(1e-9, ...values);
      bars.replaceChildren(...values.map((v) => {
        const bar = h('i');
        bar.style.height = `${(100 * v) / most}%`;
        return bar;
      }));
      bars.setAttribute('aria-label', `${label}, last minute: now ${value}, peak ${Math.max(...values)}`);
    },
  };
}

function seconds(value) {
  if (value < 0.001) return '< 1 ms';
  return value < 1 ? `≤ ${Math.round(value * 1000)} ms` : `≤ ${value.toFixed(1)} s`;
}

function stat(label, id) {
  const value = h('b', { id }, '–');
  return { value, element: h('div', { class: 'stat' }, value, label) };
}

export async function render(main, [eventId], { user, go }) {
  if (!user) {
    go(`#/signin?next=${encodeURIComponent('#/drop/' + eventId)}`);
    return undefined;
  }
  const event = await get(`/events/${encodeURIComponent(eventId)}`);
  document.title = `Drop · ${event.name}`;
  const problem = h('div', { 'aria-live': 'polite' });
  const cards = {
    available: stat('available', 'stat-available'), held: stat('held', 'stat-held'), sold: stat('sold', 'stat-sold'),
    rate: stat('sold per second', 'stat-rate'), waiting: stat('waiting in queue', 'stat-waiting'),
    passes: stat('passes outstanding', 'stat-passes'), admitted: stat('admitted per second', 'stat-admitted'),
    p99: stat('pass delivery p99 (last minute)', 'stat-p99'), watchers: stat('watching the seat feed', 'stat-watchers'),
    streams: stat('waiting-room streams', 'stat-streams'), events: stat('feed events per second', 'stat-events'),
  };
  const coverage = h('p', { class: 'muted', id: 'live-coverage' }, '');
  const zoneRows = h('tbody');
  const queueState = h('p', { id: 'queue-state', role: 'status' }, '');
  const updated = h('p', { class: 'muted' }, '');
  let history = [];
  let lastSold = null;
  const charts = {
    sales: chart('Sold per second'), events: chart('Feed events per second'), watchers: chart('Watchers (feed and waiting room)'),
    waiting: chart('Waiting in queue'), passes: chart('Passes outstanding'),
  };
  let paused = event.queue.paused;

  async function refresh() {
    let stats;
    try {
      stats = await get(`/admin/events/${encodeURIComponent(eventId)}/stats`);
    } catch (err) {
      replace(problem, errorBox(err.status === 403 ? 'Live counters are for the event\'s organizer and admins.' : err.message));
      return;
    }
    replace(problem);
    const now = Date.now();
    history.push([now, stats.sold]);
    history = history.filter(([t]) => now - t <= 10000);
    const [t0, s0] = history[0];
    cards.available.value.textContent = stats.available;
    cards.held.value.textContent = stats.held;
    cards.sold.value.textContent = stats.sold;
    cards.rate.value.textContent = now > t0 ? ((stats.sold - s0) / ((now - t0) / 1000)).toFixed(1) : '0.0';
    const q = stats.queue;
    charts.sales.push(lastSold === null ? 0 : Math.max(0, stats.sold - lastSold));
    lastSold = stats.sold;
    if (q) {
      charts.waiting.push(q.waiting + q.pre_queue);
      charts.passes.push(q.passes_outstanding);
    }
    cards.waiting.value.textContent = q ? q.waiting + q.pre_queue : '–';
    cards.passes.value.textContent = q ? q.passes_outstanding : '–';
    cards.admitted.value.textContent = q ? q.admitted_per_s.toFixed(1) : '–';
    if (q) {
      paused = q.paused;
      queueState.textContent = q.sold_out ? 'Queue closed: sold out.' : paused ? 'Queue paused: nobody is admitted.' : 'Queue running.';
      pause.textContent = paused ? 'Resume the queue' : 'Pause the queue';
    }
    showLive(stats.live);
    replace(zoneRows, stats.zones.map((z) => {
      const zone = event.zones.find((e) => e.zone_id === z.zone_id);
      const suspended = z.capacity - z.available - z.held - z.sold;
      const bar = h('div', { class: 'bar', 'aria-hidden': 'true' });
      for (const [cls, n] of [['b-sold', z.sold], ['b-held', z.held], ['b-susp', suspended], ['b-avail', z.available]]) {
        const part = h('i', { class: cls });
        part.style.width = `${(100 * n) / Math.max(1, z.capacity)}%`;
        bar.append(part);
      }
      return h('tr', {}, h('th', { scope: 'row' }, zone ? zone.name : z.zone_id), h('td', {}, z.capacity), h('td', {}, z.available),
        h('td', {}, z.held), h('td', {}, z.sold), h('td', {}, suspended), h('td', {}, z.drift), h('td', { class: 'barcell' }, bar));
    }));
    updated.textContent = `Updated ${new Date(now).toLocaleTimeString()}`;
  }

  function showLive(live) {
    if (!live) return;
    cards.watchers.value.textContent = live.feed_watchers;
    cards.streams.value.textContent = live.queue_streams;
    cards.events.value.textContent = live.events_per_s.toFixed(1);
    cards.p99.value.textContent = live.pass_delivery_p99_s === null ? 'no pass yet' : seconds(live.pass_delivery_p99_s);
    charts.events.push(live.events_per_s);
    charts.watchers.push(live.feed_watchers + live.queue_streams);
    coverage.textContent = `Live figures from ${live.processes} booking process${live.processes === 1 ? '' : 'es'}`
      + ` (watchers summed; events per second as the busiest one saw them; p99 over ${live.pass_deliveries} pass${live.pass_deliveries === 1 ? '' : 'es'} in the last ${live.window_s} s).`;
  }

  const pause = h('button', { type: 'button' }, paused ? 'Resume the queue' : 'Pause the queue');
  const maxConcurrent = h('input', { type: 'number', min: '1', value: String(event.queue.max_concurrent) });
  const perTick = h('input', { type: 'number', min: '1', value: String(event.queue.release_per_tick) });
  const apply = h('button', { type: 'button', class: 'secondary' }, 'Apply outflow');
  async function patch(body) {
    try {
      const settings = await request('PATCH', `/events/${encodeURIComponent(eventId)}/queue`, { body });
      paused = settings.paused;
      pause.textContent = paused ? 'Resume the queue' : 'Pause the queue';
      queueState.textContent = paused ? 'Queue paused: nobody is admitted.' : 'Queue running.';
    } catch (err) {
      replace(problem, errorBox(err.message));
    }
  }
  pause.addEventListener('click', () => patch({ paused: !paused }));
  apply.addEventListener('click', () => patch({ max_concurrent: Number(maxConcurrent.value), release_per_tick: Number(perTick.value) }));

  const maps = [];
  const mapBlocks = [];
  for (const zone of event.zones.filter((z) => z.seats)) {
    const box = h('div');
    const map = new SeatMap({
      eventId, zone,
      onClick: async (label, state) => {
        replace(problem);
        try {
          if (state === 'available') {
            await post(`/events/${encodeURIComponent(eventId)}/seats/suspend`, { zone_id: zone.zone_id, seats: [label], reason: 'Suspended from the organizer console' });
          } else if (state === 'suspended') {
            await post(`/events/${encodeURIComponent(eventId)}/seats/unsuspend`, { zone_id: zone.zone_id, seats: [label] });
          } else {
            replace(problem, errorBox(`Seat ${label} is ${state}: only a free seat can be suspended.`));
          }
        } catch (err) {
          replace(problem, errorBox(err.message));
        }
      },
    });
    maps.push(map);
    mount(box, map);
    map.ready.catch((err) => replace(problem, errorBox(err.message)));
    mapBlocks.push(h('h3', {}, zone.name), box);
  }

  replace(main, h('h1', {}, `Live drop: ${event.name}`),
    h('p', {}, h('a', { href: `#/event/${eventId}` }, 'Buyer page'), ` · ${event.status}`), problem,
    h('div', { class: 'stats' }, Object.values(cards).map((c) => c.element)), updated, coverage,
    h('div', { class: 'charts' }, charts.sales.element, charts.events.element, charts.watchers.element,
      event.queue.enabled ? [charts.waiting.element, charts.passes.element] : null),
    h('h2', {}, 'Zones'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'zones' },
      h('thead', {}, h('tr', {}, ['Zone', 'Capacity', 'Available', 'Held', 'Sold', 'Suspended', 'Drift', 'Share'].map((t) => h('th', { scope: 'col' }, t)))), zoneRows)),
    event.queue.enabled ? [h('h2', {}, 'Queue'), queueState, h('p', {}, pause),
      h('div', { class: 'row' }, field('Passes out at once (max_concurrent)', maxConcurrent), field('Admitted per tick (release_per_tick)', perTick)), h('p', {}, apply)] : null,
    mapBlocks.length ? [h('h2', {}, 'Seats'), h('p', { class: 'muted' }, 'Click a free seat to suspend it (take it out of sale), a suspended one to put it back.'), ...mapBlocks] : null);
  if (event.status === 'draft') {
    replace(problem, h('p', { class: 'notice' }, 'This event is a draft: publish it from the organizer console to open the sale.'));
  }
  await refresh();
  const timer = setInterval(refresh, 1000);
  return () => {
    clearInterval(timer);
    maps.forEach((m) => m.close());
  };
}
