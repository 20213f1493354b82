// Organizer console: the organizer's events, drafts included (GET /events?mine=true), each
// draft with its Publish button; create an event (general-admission and seated zones, the seats
// from a rows x seats generator), publish it, open its live drop view.
import { get, post } from '../api.js';
import { errorBox, field, h, replace, when } from '../dom.js';

const ROWS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function seatLabels(rows, perRow) {
  const labels = [];
  for (let r = 0; r < rows; r++) {
    const row = r < 26 ? ROWS[r] : ROWS[Math.floor(r / 26) - 1] + ROWS[r % 26];
    for (let s = 1; s <= perRow; s++) labels.push(`${row}-${s}`);
  }
  return labels;
}

function zoneEditor(index, onRemove) {
  const name = h('input', { type: 'text', value: index === 0 ? 'Floor' : `Zone ${index + 1}`, required: true });
  const kind = h('select', {}, h('option', { value: 'seated' }, 'Seated'), h('option', { value: 'ga' }, 'General admission'));
  const price = h('input', { type: 'number', min: '0', step: '0.01', value: '45.00', required: true });
  const capacity = h('input', { type: 'number', min: '1', value: '100' });
  const rows = h('input', { type: 'number', min: '1', max: '100', value: '4' });
  const perRow = h('input', { type: 'number', min: '1', max: '200', value: '10' });
  const seatedBox = h('div', { class: 'row' }, field('Rows', rows), field('Seats per row', perRow));
  const gaBox = h('div', { class: 'row', hidden: true }, field('Capacity', capacity));
  const preview = h('p', { class: 'muted' });
  const sync = () => {
    const seated = kind.value === 'seated';
    seatedBox.hidden = !seated;
    gaBox.hidden = seated;
    preview.textContent = seated ? `${Number(rows.value) * Number(perRow.value)} seats, labelled A-1 … ` : '';
  };
  [kind, rows, perRow].forEach((el) => el.addEventListener('input', sync));
  sync();
  const remove = h('button', { type: 'button', class: 'secondary' }, 'Remove zone');
  remove.addEventListener('click', onRemove);
  const element = h('fieldset', { class: 'zone-editor' }, h('legend', {}, `Zone ${index + 1}`),
    h('div', { class: 'row' }, field('Zone name', name), field('Kind', kind), field('Price', price)), seatedBox, gaBox, preview, remove);
  return {
    element,
    value() {
      const zone = { name: name.value.trim(), price_minor: Math.round(Number(price.value) * 100) };
      if (kind.value === 'seated') zone.seats = seatLabels(Number(rows.value), Number(perRow.value));
      else zone.capacity = Number(capacity.value);
      return zone;
    },
  };
}

const STATUS_WORDS = { draft: 'draft (not on sale)', on_sale: 'on sale', closed: 'closed' };

function publishButton(event, problem, go) {
  const button = h('button', { type: 'button', 'aria-label': `Publish ${event.name}` }, 'Publish');
  button.addEventListener('click', async () => {
    button.disabled = true;
    replace(problem);
    try {
      await post(`/events/${encodeURIComponent(event.event_id)}/publish`);
      go(`#/drop/${event.event_id}`);
    } catch (err) {
      replace(problem, errorBox(err.message));
      button.disabled = false;
    }
  });
  return button;
}

function eventLine(event, problem, go) {
  return h('li', { class: 'event-line' }, h('a', { href: `#/drop/${event.event_id}` }, event.name),
    ` · ${STATUS_WORDS[event.status] || event.status} · ${when(event.starts_at)} `,
    event.status === 'draft' ? publishButton(event, problem, go) : null);
}

export async function render(main, args, { user, go }) {
  if (!user) {
    go(`#/signin?next=${encodeURIComponent('#/organizer')}`);
    return;
  }
  document.title = 'Organizer console · booking-rush';
  if (user.role !== 'organizer' && user.role !== 'admin') {
    replace(main, h('h1', {}, 'Organizer console'), h('p', {}, 'This console is for organizers. Your account is a buyer account.'));
    return;
  }
  const { items: mine } = await get('/events?mine=true');
  const problem = h('div');
  const listProblem = h('div');
  const result = h('div', { role: 'status' });
  const now = new Date();
  const name = h('input', { type: 'text', required: true, value: 'New drop' });
  const venue = h('input', { type: 'text', required: true, value: 'Arena' });
  const startsAt = h('input', { type: 'datetime-local', required: true, value: localInput(new Date(now.getTime() + 30 * 864e5)) });
  const saleAt = h('input', { type: 'datetime-local', required: true, value: localInput(new Date(now.getTime() - 60e3)) });
  const maxPerUser = h('input', { type: 'number', min: '1', max: '100', value: '4' });
  const currency = h('input', { type: 'text', value: 'EUR', maxlength: '3', pattern: '[A-Z]{3}' });
  const queueOn = h('input', { type: 'checkbox', checked: true });
  const maxConcurrent = h('input', { type: 'number', min: '1', value: '100' });
  const perTick = h('input', { type: 'number', min: '1', value: '50' });
  const passTtl = h('input', { type: 'number', min: '5', max: '3600', value: '120' });
  const zones = [];
  const zoneBox = h('div');
  const addZone = () => {
    const editor = zoneEditor(zones.length, () => {
      if (zones.length === 1) return;
      zones.splice(zones.indexOf(editor), 1);
      editor.element.remove();
    });
    zones.push(editor);
    zoneBox.append(editor.element);
  };
  addZone();
  const add = h('button', { type: 'button', class: 'secondary' }, 'Add a zone');
  add.addEventListener('click', addZone);
  const create = h('button', { type: 'submit' }, 'Create event');
  const form = h('form', {},
    h('div', { class: 'row' }, field('Event name', name), field('Venue', venue)),
    h('div', { class: 'row' }, field('Show starts', startsAt), field('Sale opens', saleAt)),
    h('div', { class: 'row' }, field('Tickets per buyer', maxPerUser), field('Currency', currency)),
    h('h2', {}, 'Zones'), zoneBox, h('p', {}, add),
    h('h2', {}, 'Waiting room'),
    h('label', {}, queueOn, ' Buyers go through a virtual queue'),
    h('div', { class: 'row' }, field('Passes out at once (max_concurrent)', maxConcurrent), field('Admitted per tick (release_per_tick)', perTick), field('Pass lifetime, s', passTtl)),
    h('p', {}, create), problem, result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    create.disabled = true;
    replace(problem);
    try {
      const body = {
        name: name.value, venue: venue.value,
        starts_at: new Date(startsAt.value).toISOString(), sale_starts_at: new Date(saleAt.value).toISOString(),
        max_per_user: Number(maxPerUser.value), currency: currency.value.trim().toUpperCase(),
        zones: zones.map((z) => z.value()),
        queue: { enabled: queueOn.checked, max_concurrent: Number(maxConcurrent.value), release_per_tick: Number(perTick.value), pass_ttl_s: Number(passTtl.value) },
      };
      const event = await post('/events', body);
      replace(result, h('div', { class: 'notice' }, h('p', {}, `Draft “${event.name}” created with ${event.zones.length} zone(s). Publishing loads its inventory and opens the sale at the sale time.`), publishButton(event, problem, go)));
    } catch (err) {
      replace(problem, errorBox(err.message));
    } finally {
      create.disabled = false;
    }
  });
  replace(main, h('h1', {}, 'Organizer console'),
    h('h2', {}, 'Your events'), listProblem,
    mine.length ? h('ul', { id: 'my-events' }, mine.map((e) => eventLine(e, listProblem, go)))
      : h('p', { class: 'muted' }, 'No event yet: create one below.'),
    h('h2', {}, 'Create an event'), h('div', { class: 'card' }, form));
}
