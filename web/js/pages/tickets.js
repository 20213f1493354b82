// My tickets: every booking with its status and, once confirmed, its signed tickets (one per
// seat or unit, the code a door scanner checks); pay a hold, cancel (a paid one is refunded).
import { get, post } from '../api.js';
import { errorBox, h, money, replace, when } from '../dom.js';

export function ticketState(ticket) {
  if (ticket.status === 'void') return 'void (refunded or cancelled)';
  if (ticket.checked_in_at) return `checked in ${when(ticket.checked_in_at)}`;
  return 'valid';
}

export function ticketLabel(ticket) {
  return ticket.seat_id ? `Seat ${ticket.seat_id}` : 'Admission';
}

function ticketList(booking) {
  const tickets = booking.tickets || [];
  if (!tickets.length) return null;
  return h('ul', { class: 'tickets' }, tickets.map((ticket) => h('li', { dataset: { ticket: ticket.ticket_id } },
    `${ticketLabel(ticket)} · ${ticketState(ticket)} · code `, h('code', { class: 'ticket-code' }, ticket.code))));
}

export async function render(main, args, { user, go }) {
  if (!user) {
    go(`#/signin?next=${encodeURIComponent('#/tickets')}`);
    return;
  }
  document.title = 'My tickets · booking-rush';
  const problem = h('div');
  const { items } = await get('/bookings');
  const events = new Map();
  await Promise.all([...new Set(items.map((b) => b.event_id))].map(async (id) => {
    try { events.set(id, await get(`/events/${encodeURIComponent(id)}`)); } catch { /* gone */ }
  }));
  const list = h('div', { id: 'bookings' });
  for (const booking of items) list.append(card(booking));

  function card(booking) {
    const event = events.get(booking.event_id);
    const zone = event && event.zones.find((z) => z.zone_id === booking.zone_id);
    const actions = h('p', { class: 'row' });
    const article = h('article', { class: 'card booking', dataset: { booking: booking.booking_id, status: booking.status } },
      h('h2', {}, event ? event.name : 'Event'),
      h('p', {}, h('span', { class: `status-pill status-${booking.status}` }, booking.status), ' ',
        `${zone ? zone.name + ' · ' : ''}${booking.seats && booking.seats.length ? 'Seats ' + booking.seats.join(', ') : booking.quantity + ' ticket(s)'} · ${money(booking.amount_minor, booking.currency)}`),
      h('p', { class: 'muted' }, booking.status === 'CONFIRMED' ? `Confirmed ${when(booking.confirmed_at)}` : booking.status === 'RESERVED' ? `Hold ends ${when(booking.expires_at)}` : `Booked ${when(booking.created_at)}`),
      ticketList(booking),
      actions);
    if ((booking.tickets || []).length) {
      actions.append(h('a', { class: 'button secondary', href: `#/ticket/${booking.booking_id}` }, 'Show tickets to print'));
    }
    if (booking.status === 'RESERVED') actions.append(h('a', { class: 'button', href: `#/checkout/${booking.booking_id}` }, 'Pay'));
    if (booking.status === 'RESERVED' || booking.status === 'CONFIRMED') {
      const label = booking.status === 'CONFIRMED' ? 'Cancel and refund' : 'Cancel';
      const cancel = h('button', { type: 'button', class: 'secondary' }, label);
      let armed = false;
      cancel.addEventListener('click', async () => {
        if (!armed) {
          armed = true;
          cancel.textContent = `${label}: click again to confirm`;
          return;
        }
        cancel.disabled = true;
        try {
          const updated = await post(`/bookings/${encodeURIComponent(booking.booking_id)}/cancel`);
          article.replaceWith(card(updated));
        } catch (err) {
          replace(problem, errorBox(err.message));
          cancel.disabled = false;
        }
      });
      actions.append(cancel);
    }
    return article;
  }
  replace(main, h('h1', {}, 'My tickets'), problem,
    items.length ? list : h('p', {}, 'No bookings yet. ', h('a', { href: '#/events' }, 'Find an event')));
}
