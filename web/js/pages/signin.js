import { signIn, signUp } from '../api.js';
import { errorBox, field, h, replace } from '../dom.js';

export async function render(main, args, { page, go }) {
  const next = new URLSearchParams(location.hash.split('?')[1] || '').get('next') || '#/events';
  const signup = page === 'signup' || location.hash.startsWith('#/signup');
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true, minlength: signup ? 8 : 1 });
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'name', required: true });
  const problem = h('div');
  const submit = h('button', { type: 'submit' }, signup ? 'Create account' : 'Sign in');
  const form = h('form', { novalidate: false },
    signup ? field('Name', name) : null,
    field('Email', email),
    field('Password', password, signup ? 'At least 8 characters.' : null),
    h('p', {}, submit),
    problem);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    replace(problem);
    try {
      if (signup) await signUp(email.value.trim(), password.value, name.value.trim());
      else await signIn(email.value.trim(), password.value);
      go(next.startsWith('#/') ? next : '#/events');
    } catch (err) {
      replace(problem, errorBox(err.message));
    } finally {
      submit.disabled = false;
    }
  });
  document.title = `${signup ? 'Sign up' : 'Sign in'} · booking-rush`;
  const other = signup
    ? h('p', {}, 'Have an account? ', h('a', { href: `#/signin?next=${encodeURIComponent(next)}` }, 'Sign in'))
    : h('p', {}, 'New here? ', h('a', { href: `#/signup?next=${encodeURIComponent(next)}` }, 'Create an account'));
  replace(main, h('h1', {}, signup ? 'Create an account' : 'Sign in'), h('div', { class: 'card' }, form), other);
}
