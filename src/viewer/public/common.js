// Shared by the viewer pages: JSON calls with the optional bearer token, small formatters.
export const token = () => localStorage.getItem('lamina-token') || '';
export const authHeaders = () => (token() ? { authorization: `Bearer ${token()}` } : {});

export async function api(path, init = {}) {
  const r = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error ? body.error.message : `${r.status} ${r.statusText}`);
  return body;
}

export const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
export const bytes = (n) => (n > 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n > 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(0)} kB`);
export const stateBadge = (state, fraction) =>
  `<span class="state ${esc(state)}">${esc(state)}</span>${['running', 'aggregating'].includes(state) ? ` <span class="muted">${Math.round((fraction || 0) * 100)}%</span>` : ''}`;

/** Queues an analysis with default parameters. */
export const analyse = (slideId) => api(`/api/slides/${slideId}/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
