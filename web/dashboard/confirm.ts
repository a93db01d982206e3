import { h } from './dom.js';

/**
 * A button whose action needs a second, explicit click: the first shows "Confirm" and
 * "Keep" in its place (both real buttons, focus moves to Confirm).
 */
export function confirmButton(
  label: string,
  question: string,
  action: () => Promise<void>,
  opts: { testid?: string; danger?: boolean } = {},
): HTMLElement {
  const wrap = h('span', { class: 'confirm' });
  const status = h('span', { class: 'confirm-status', role: 'status' });
  const start = h('button', { type: 'button', class: opts.danger ? 'danger' : '', 'data-testid': opts.testid }, label);
  const reset = (): void => wrap.replaceChildren(start, status);
  start.addEventListener('click', () => {
    const yes = h('button', { type: 'button', class: 'danger', 'data-testid': 'confirm' }, 'Confirm');
    const no = h('button', { type: 'button', 'data-testid': 'confirm-keep' }, 'Keep');
    yes.addEventListener('click', () => {
      yes.disabled = true;
      no.disabled = true;
      action().then(
        () => {
          reset();
          status.textContent = 'done';
        },
        (e: Error) => {
          reset();
          status.textContent = e.message;
        },
      );
    });
    no.addEventListener('click', () => {
      reset();
      start.focus();
    });
    wrap.replaceChildren(h('span', { class: 'question' }, question), yes, no);
    yes.focus();
  });
  reset();
  return wrap;
}
