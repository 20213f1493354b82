// The live availability feed of one event: EventSource on the public SSE stream (it reconnects
// by itself and sends Last-Event-ID). `availability` is the snapshot of zone counters,
// `seat_update` one change (seats and the zone's new `available`).

export function watchAvailability(eventId, { onZones = () => {}, onSeats = () => {}, onState = () => {} }) {
  const source = new EventSource(`/api/v1/events/${encodeURIComponent(eventId)}/availability/stream`);
  source.addEventListener('open', () => onState('open'));
  source.addEventListener('error', () => onState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
  source.addEventListener('availability', (message) => {
    const data = JSON.parse(message.data);
    onZones(data.zones || []);
  });
  source.addEventListener('seat_update', (message) => {
    const update = JSON.parse(message.data);
    onZones([{ zone_id: update.zone_id, available: update.available }]);
    if (Array.isArray(update.seats)) onSeats(update);
  });
  return () => source.close();
}

// The state a seat_update leaves its seats in.
export function stateAfter(eventType) {
  switch (eventType) {
    case 'SEAT_RESERVED': return 'held';
    case 'SEAT_CONFIRMED': return 'sold';
    case 'SEAT_SUSPENDED': return 'suspended';
    case 'SEAT_AVAILABLE': return 'available';
    case 'SEAT_WITHHELD': return 'held'; // back, but offered to the waitlist first
    case 'SEAT_CANCELLED': return null; // followed by SEAT_AVAILABLE for the same seats
    default: return null;
  }
}
