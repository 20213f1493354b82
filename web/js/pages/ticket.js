// A booking's ticket document: one block per seat or unit with the event, the seat and its
// signed code, laid out to print (the code is what the door's scanner checks, offline).
import { get } from '../api.js';
import { h, replace, when } from '../dom.js';
import { ticketLabel, ticketState } from './tickets.js';

export async function render(main, [bookingId], { user, go }) {
  if (!user) {
    go(`#/signin?next=${encodeURIComponent(`#/ticket/${bookingId}`)}`);
    return;
  }
  const booking = await get(`/bookings/${encodeURIComponent(bookingId)}`);
  const event = await get(`/events/${encodeURIComponent(booking.event_id)}`);
  const zone = event.zones.find((z) => z.zone_id === booking.zone_id);
  document.title = `Tickets · ${event.name} · booking-rush`;
  const tickets = booking.tickets || [];
  const print = h('button', { type: 'button', class: 'secondary no-print' }, 'Print');
  print.addEventListener('click', () => window.print());
  replace(main,
    h('h1', {}, `Tickets: ${event.name}`),
    h('p', { class: 'muted' }, `${when(event.starts_at)} · booking ${booking.booking_id}`),
    tickets.length
      ? h('ol', { class: 'ticket-document' }, tickets.map((ticket) => h('li', { class: 'card ticket', dataset: { ticket: ticket.ticket_id } },
        h('h2', {}, `${ticketLabel(ticket)}${zone ? ' · ' + zone.name : ''}`),
        h('p', {}, `Status: ${ticketState(ticket)}`),
        h('p', {}, 'Code: ', h('code', { class: 'ticket-code' }, ticket.code)))))
      : h('p', {}, 'This booking has no tickets (it is not confirmed).'),
    h('p', { class: 'row no-print' }, print, h('a', { href: '#/tickets' }, 'Back to My tickets')));
}
