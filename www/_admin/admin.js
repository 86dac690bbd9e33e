// The admin page: calls the worker's admin API with the bearer token,
// which stays in this tab's sessionStorage and is sent nowhere else.
'use strict';
// The worker serves this page only at its own spelling of ADMIN_PATH; the
// origin is spelled out so that no path can make the API another site's.
const base = location.origin + location.pathname.replace(/\/[^/]*$/, '');
const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem('edge-cache-token') || '';

function show(text, ok) {
  const out = $('result');
  out.textContent = text;
  out.className = ok ? 'ok' : 'error';
}

async function call(method, route, body) {
  if (!token()) throw new Error('Enter the admin token first.');
  const res = await fetch(base + route, {
    method,
    headers: { authorization: 'Bearer ' + token(), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const data = await res.json().catch(() => ({ error: 'the worker answered ' + res.status }));
  if (!res.ok) throw new Error(res.status + ': ' + (data.error || JSON.stringify(data)));
  return data;
}

const lines = (id) => $(id).value.split('\n').map((l) => l.trim()).filter(Boolean);

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('edge-cache-token', $('token').value.trim());
  $('token').value = '';
  show('Token set for this tab.', true);
  loadPurges();
});
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem('edge-cache-token');
  show('Token forgotten.', true);
});

$('purge-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const kind = document.querySelector('input[name=kind]:checked').value;
  const body = kind === 'everything' ? { everything: true } : { [kind]: lines('items') };
  if ($('soft').checked) body.soft = true;
  if (kind === 'everything' && !confirm('Purge everything?')) return;
  try {
    const data = await call('POST', '/purge', body);
    show(`Purged (${data.soft ? 'soft' : 'hard'}), id ${data.id}. Every location within ${data.propagation_seconds} s.`, true);
    loadPurges();
  } catch (err) {
    show(err.message, false);
  }
});

$('warm-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const devices = [...document.querySelectorAll('input[name=device]:checked')].map((i) => i.value);
  try {
    const data = await call('POST', '/warm', { urls: lines('warm-urls'), devices });
    show(data.results.map((r) => `${r.status} ${r.device} ${r.url}  ${r.cache_status}`).join('\n'), true);
  } catch (err) {
    show(err.message, false);
  }
});

async function loadPurges() {
  if (!token()) return;
  try {
    const data = await call('GET', '/purges');
    $('bound').textContent = `Purges reach every location within ${data.propagation_seconds} s.`;
    const body = $('purges').querySelector('tbody');
    body.replaceChildren(...data.purges.map((p) => {
      const row = document.createElement('tr');
      const what = p.everything ? 'everything' : [...p.tags.map((t) => 'tag ' + t), ...p.urls, ...p.prefixes.map((x) => 'prefix ' + x)].join(', ');
      for (const text of [new Date(p.at).toLocaleString(), p.soft ? 'soft' : 'hard', what, p.id]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
  } catch (err) {
    show(err.message, false);
  }
}
$('refresh').addEventListener('click', loadPurges);
loadPurges();
