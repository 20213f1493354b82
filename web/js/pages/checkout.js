// Checkout: the hold's countdown, pay with the provider, then the booking's status as the
// payment saga moves it. The mock provider's test outcomes are offered only when GET /config
// says the mock is the provider (development and tests); with a real one there is no picker.
import { clientConfig, get, newKey, request } from '../api.js';
import { duration, errorBox, field, h, money, replace } from '../dom.js';

const OUTCOMES = { succeed: 'Payment succeeds', decline: 'Card declined', no_answer: 'Provider does not answer' };

const FINAL = {
  CONFIRMED: 'Payment received: your booking is confirmed. Your tickets are in My tickets.',
  CANCELLED: 'The booking was cancelled; its seats went back on sale.',
  EXPIRED: 'The hold lapsed before it was paid; its seats went back on sale.',
  REFUNDED: 'The booking was refunded.',
};

export async function render(main, [bookingId], { user, go }) {
  if (!user) {
    go(`#/signin?next=${encodeURIComponent('#/checkout/' + bookingId)}`);
    return undefined;
  }
  let booking = await get(`/bookings/${encodeURIComponent(bookingId)}`);
  const event = await get(`/events/${encodeURIComponent(booking.event_id)}`);
  const zone = event.zones.find((z) => z.zone_id === booking.zone_id);
  document.title = `Checkout · ${event.name}`;
  const countdown = h('p', { class: 'big', id: 'hold-countdown' }, '');
  const status = h('div', { role: 'status', 'aria-live': 'polite', id: 'checkout-status' }, '');
  const problem = h('div');
  const { test_outcomes: testOutcomes = [] } = await clientConfig();
  const outcome = testOutcomes.length
    ? h('select', { name: 'test_outcome' }, testOutcomes.map((value) => h('option', { value }, OUTCOMES[value] || value)))
    : null;
  const pay = h('button', { type: 'button' }, `Pay ${money(booking.amount_minor, booking.currency)}`);
  const payBlock = h('div', { class: 'card' },
    outcome ? [h('p', { class: 'muted' }, 'Test payments (mock provider): choose what the provider answers.'), field('Test outcome', outcome)] : null,
    h('p', {}, pay));
  const timers = [];
  const keys = new Map();
  let paying = false;

  function showStatus() {
    if (booking.status === 'RESERVED') {
      replace(status, paying ? h('p', {}, 'Payment sent; waiting for the provider\'s answer…') : h('p', {}, 'Reserved: pay before the hold ends.'));
      return;
    }
    clearInterval(countdownTimer);
    countdown.textContent = '';
    payBlock.hidden = true;
    const ok = booking.status === 'CONFIRMED';
    replace(status, h('p', { class: ok ? 'ok' : 'bad' }, FINAL[booking.status] || booking.status),
      h('p', {}, h('a', { href: '#/tickets' }, 'Go to My tickets')));
  }

  function tick() {
    const left = (new Date(booking.expires_at) - Date.now()) / 1000;
    if (booking.status !== 'RESERVED') return;
    countdown.textContent = left > 0 ? `Your hold ends in ${duration(left)}` : 'Your hold has ended.';
    if (left <= 0 && !paying) pay.disabled = true;
  }
  const countdownTimer = setInterval(tick, 1000);
  timers.push(countdownTimer);

  async function follow() {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 700));
      if (!main.isConnected || !document.getElementById('checkout-status')) return;
      try {
        booking = await get(`/bookings/${encodeURIComponent(bookingId)}`);
      } catch (err) {
        replace(problem, errorBox(err.message));
        continue;
      }
      if (booking.status !== 'RESERVED') {
        paying = false;
        showStatus();
        return;
      }
    }
  }

  pay.addEventListener('click', async () => {
    pay.disabled = true;
    replace(problem);
    const choice = outcome ? outcome.value : '';
    if (!keys.has(choice)) keys.set(choice, newKey());
    const body = outcome ? { booking_id: bookingId, test_outcome: choice } : { booking_id: bookingId };
    try {
      await request('POST', '/payments', { body, headers: { 'Idempotency-Key': keys.get(choice) } });
      paying = true;
      if (outcome) outcome.disabled = true;
      showStatus();
      follow();
    } catch (err) {
      replace(problem, errorBox(err.message));
      pay.disabled = false;
    }
  });

  const what = booking.seats && booking.seats.length ? `Seats ${booking.seats.join(', ')}` : `${booking.quantity} ticket${booking.quantity === 1 ? '' : 's'}`;
  replace(main, h('h1', {}, 'Checkout'),
    h('div', { class: 'card' }, h('h2', {}, event.name), h('p', {}, `${zone ? zone.name : ''} · ${what}`),
      h('p', {}, 'Total: ', h('strong', {}, money(booking.amount_minor, booking.currency)))),
    countdown, payBlock, status, problem);
  tick();
  showStatus();
  if (booking.payment_id && booking.status === 'RESERVED') { paying = true; showStatus(); follow(); }
  return () => timers.forEach(clearInterval);
}
