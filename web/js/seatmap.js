// A seated zone's map: one button per seat, named "Seat A-12, available" (its state is in the
// name and in data-state, never in colour alone), grouped in rows by the label's prefix
// ("A-12" is row A). Live: the states come from GET /events/{id}/seats, then from the feed.
import { h, replace } from './dom.js';
import { get } from './api.js';
import { stateAfter, watchAvailability } from './feed.js';

const WORDS = { available: 'available', held: 'held by someone', sold: 'sold', suspended: 'unavailable (suspended)', unavailable: 'unavailable' };

function rowOf(label) {
  const dash = label.lastIndexOf('-');
  if (dash > 0) return label.slice(0, dash);
  const match = /^([A-Za-z]+)\d+$/.exec(label);
  return match ? match[1] : '';
}

export class SeatMap {
  // onClick(label, state) is called for a click on a seat; isSelected(label) marks the chosen.
  constructor({ eventId, zone, onClick, isSelected = () => false, onZones = () => {} }) {
    this.eventId = eventId;
    this.zone = zone;
    this.onClick = onClick;
    this.isSelected = isSelected;
    this.states = new Map(zone.seats.map((label) => [label, 'unavailable']));
    this.buttons = new Map();
    this.element = h('div', { class: 'seatmap', role: 'group', 'aria-label': `Seat map of ${zone.name}` });
    const rows = new Map();
    for (const label of zone.seats) {
      const row = rowOf(label);
      if (!rows.has(row)) rows.set(row, []);
      rows.get(row).push(label);
    }
    for (const [row, labels] of rows) {
      const line = h('div', { class: 'seatrow' }, h('span', { class: 'rowlabel', 'aria-hidden': 'true' }, row));
      for (const label of labels) {
        const button = h('button', { type: 'button', class: 'seat', dataset: { seat: label } }, label.slice(row ? row.length + 1 : 0) || label);
        button.addEventListener('click', () => this.onClick(label, this.states.get(label)));
        this.buttons.set(label, button);
        line.append(button);
      }
      this.element.append(line);
    }
    this.pending = [];
    this.loaded = false;
    // The feed first, then the snapshot: updates that arrive meanwhile are applied after it.
    this.stop = watchAvailability(eventId, {
      onZones,
      onSeats: (update) => {
        if (update.zone_id !== zone.zone_id) return;
        if (this.loaded) this.apply(update);
        else this.pending.push(update);
      },
    });
    this.ready = this.load();
  }

  async load() {
    const body = await get(`/events/${encodeURIComponent(this.eventId)}/seats`, { auth: false });
    const mine = (body.zones || []).find((z) => z.zone_id === this.zone.zone_id);
    for (const [label, state] of Object.entries(mine ? mine.seats : {})) this.states.set(label, state);
    this.loaded = true;
    for (const update of this.pending.splice(0)) this.apply(update);
    this.render();
  }

  apply(update) {
    const state = stateAfter(update.event_type);
    if (!state) return;
    for (const label of update.seats) if (this.states.has(label)) this.states.set(label, state);
    this.render();
  }

  set(label, state) {
    this.states.set(label, state);
    this.render();
  }

  render() {
    for (const [label, button] of this.buttons) {
      const state = this.states.get(label);
      const selected = this.isSelected(label);
      button.dataset.state = state;
      button.setAttribute('aria-pressed', selected ? 'true' : 'false');
      button.setAttribute('aria-label', `Seat ${label}, ${selected ? 'selected' : WORDS[state] || state}`);
    }
  }

  legend() {
    return h('p', { class: 'legend', 'aria-hidden': 'true' },
      h('span', {}, 'available'), h('span', { class: 'l-mine' }, 'selected'),
      h('span', { class: 'l-held' }, 'held'), h('span', { class: 'l-sold' }, 'sold'),
      h('span', { class: 'l-suspended' }, 'unavailable'));
  }

  close() {
    this.stop();
  }
}

export function mount(container, map) {
  replace(container, map.legend(), map.element);
}
