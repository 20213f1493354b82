import { get } from '../api.js';
import { h, replace, when } from '../dom.js';

export async function render(main) {
  replace(main, h('h1', {}, 'Events'), h('p', { class: 'muted' }, 'Loading events…'));
  const { items } = await get('/events', { auth: false });
  const list = h('div', { class: 'grid' });
  for (const event of items) {
    list.append(h('article', { class: 'card' },
      h('h2', {}, h('a', { href: `#/event/${event.event_id}` }, event.name)),
      h('p', {}, event.venue, h('br'), when(event.starts_at)),
      h('p', { class: 'muted' }, event.status === 'on_sale' ? `On sale from ${when(event.sale_starts_at)}` : 'Sale closed'),
    ));
  }
  document.title = 'Events · booking-rush';
  replace(main, h('h1', {}, 'Events'), items.length ? list : h('p', {}, 'No event is on sale right now.'));
}
