import { analyse, api, authHeaders, bytes, esc, stateBadge } from './common.js';

const tbody = document.querySelector('#slides tbody');
const tokenInput = document.getElementById('token');
tokenInput.value = localStorage.getItem('lamina-token') || '';
tokenInput.addEventListener('change', () => localStorage.setItem('lamina-token', tokenInput.value));

/** The Deep Zoom level whose single tile holds the whole slide (a 254-px thumbnail). */
const thumbLevel = (s) => {
  const max = Math.max(s.width, s.height);
  return Math.ceil(Math.log2(max)) - Math.max(0, Math.ceil(Math.log2(max / 254)));
};

async function refresh() {
  const { slides } = await api('/api/slides');
  document.getElementById('empty').hidden = slides.length > 0;
  tbody.innerHTML = slides.map((s) => {
    const a = s.analyses.at(-1);
    return `<tr data-id="${esc(s.id)}">
      <td><a href="/slides/${esc(s.id)}"><img class="thumb" loading="lazy" alt="" src="/api/slides/${esc(s.id)}/dzi_files/${thumbLevel(s)}/0_0.jpeg"></a></td>
      <td><a href="/slides/${esc(s.id)}">${esc(s.name)}</a></td>
      <td>${esc(s.format)}</td><td class="num">${bytes(s.size)}</td><td class="num">${s.width} × ${s.height}</td>
      <td>${a ? stateBadge(a.state, a.fraction) : '<span class="muted">none</span>'}</td>
      <td class="num">${a && a.score != null ? a.score.toFixed(3) : ''}</td>
      <td>${!a || ['failed', 'cancelled'].includes(a.state) ? `<button data-analyse="${esc(s.id)}">Analyse</button>` : ''}</td>
    </tr>`;
  }).join('');
  const { batches } = await api('/api/batches').catch(() => ({ batches: [] }));
  document.getElementById('batches-section').hidden = batches.length === 0;
  document.getElementById('batches').innerHTML = batches.map((b) => `
    <h3 class="muted">batch ${esc(b.id)} — ${Math.round(b.fraction * 100)}% ${esc(Object.entries(b.counts).map(([k, v]) => `${v} ${k}`).join(', '))}</h3>
    <table><thead><tr><th>Slide</th><th>State</th><th class="num">Score</th><th>Reason</th></tr></thead><tbody>
    ${b.items.map((it) => `<tr><td><a href="/slides/${esc(it.slideId)}">${esc(it.name || it.slideId)}</a></td><td>${stateBadge(it.state, it.fraction)}</td>
      <td class="num">${it.score != null ? it.score.toFixed(3) : ''}</td><td class="error">${esc(it.reason || '')}</td></tr>`).join('')}
    </tbody></table>`).join('');
}

tbody.addEventListener('click', async (e) => {
  const id = e.target.dataset && e.target.dataset.analyse;
  if (!id) return;
  e.target.disabled = true;
  try { await analyse(id); } catch (err) { alert(err.message); }
  refresh();
});

/** Uploads one file with XMLHttpRequest, whose upload events give a progress bar (fetch has none). */
function upload(file, row) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/slides?filename=${encodeURIComponent(file.name)}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    const bar = row.querySelector('progress');
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      const body = JSON.parse(xhr.responseText || '{}');
      if (xhr.status < 300) resolve(body); else reject(new Error(body.error ? body.error.message : `HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error('network error'));
    xhr.send(file);
  });
}

document.getElementById('upload').addEventListener('submit', async (e) => {
  e.preventDefault();
  const box = document.getElementById('uploads');
  for (const file of document.getElementById('files').files) {
    const row = document.createElement('div');
    row.innerHTML = `${esc(file.name)} <progress max="1" value="0"></progress> <span></span>`;
    box.append(row);
    const status = row.querySelector('span');
    try {
      const { slide, duplicate } = await upload(file, row);
      status.textContent = duplicate ? 'already stored' : 'stored';
      if (document.getElementById('analyse').checked) { await analyse(slide.id); status.textContent += ', analysis queued'; }
    } catch (err) {
      status.className = 'error';
      status.textContent = err.message;
    }
    refresh();
  }
});

refresh();
setInterval(refresh, 3000);
