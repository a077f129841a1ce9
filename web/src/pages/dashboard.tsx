// Dashboard: today's matches, strangers and spoof attempts, counts per source/device, and service health.
// The API has no statistics endpoint: the counts are the `total` of today's records per decision
// (GET /records?from=<local midnight>&decision=...&limit=1), and the per-source table counts today's
// records page by page (at most 2000 records; beyond that the table says it is partial).
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { get } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Loading } from '../ui';

const DECISIONS = ['match', 'stranger', 'spoof'] as const;
const SRC_MAX = 2000;

export function Dashboard(_: { me: Me }) {
  const [counts, setCounts] = useState<Record<string, number> | null>(null);
  const [sources, setSources] = useState<{ rows: [string, Record<string, number>][]; partial: boolean } | null>(null);
  const [health, setHealth] = useState<any>(null);
  const [err, setErr] = useState('');
  const [herr, setHerr] = useState('');

  const load = async () => {
    setErr(''); setHerr('');
    get('health').then(setHealth).catch((e) => setHerr(errMsg(e)));
    const d = new Date(); d.setHours(0, 0, 0, 0);
    const from = Math.floor(d.getTime() / 1000);
    try {
      const c: Record<string, number> = {};
      await Promise.all(DECISIONS.map(async (k) => { c[k] = (await get<any>('records', { from, decision: k, limit: 1 })).total ?? 0; }));
      setCounts(c);
      const per = new Map<string, Record<string, number>>();
      let offset = 0, total = 0;
      do {
        const r = await get<any>('records', { from, limit: 500, offset });
        total = r.total ?? 0;
        for (const rec of r.items ?? []) {
          const s = rec.source || '—';
          const row = per.get(s) ?? { match: 0, stranger: 0, spoof: 0, no_face: 0 };
          row[rec.decision] = (row[rec.decision] ?? 0) + 1;
          per.set(s, row);
        }
        offset += 500;
        if (!(r.items ?? []).length) break;
      } while (offset < total && offset < SRC_MAX);
      setSources({ rows: [...per.entries()].sort((a, b) => a[0].localeCompare(b[0])), partial: total > SRC_MAX });
    } catch (e) { setErr(errMsg(e)); }
  };
  useEffect(() => { load(); }, []);

  const healthy = health && health.status === 'ok';
  const n = (k: string) => (counts ? counts[k] : '—');
  return (
    <section>
      <div class="page-head"><h2>{t('nav.dashboard')}</h2><button type="button" onClick={load}>{t('common.refresh')}</button></div>
      <Msg kind="error" text={err} />
      <div class="tiles">
        <div class="tile tile-good" data-testid="tile-matches"><b>{n('match')}</b><span>{t('dash.matches')}</span></div>
        <div class="tile" data-testid="tile-strangers"><b>{n('stranger')}</b><span>{t('dash.strangers')}</span></div>
        <div class="tile tile-warn" data-testid="tile-spoofs"><b>{n('spoof')}</b><span>{t('dash.spoofs')}</span></div>
      </div>
      <h3>{t('dash.by_source')}</h3>
      {!sources && !err && <Loading />}
      {sources && (sources.rows.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <div class="table-wrap"><table>
          <thead><tr><th>{t('dash.source')}</th><th>{t('dash.matches')}</th><th>{t('dash.strangers')}</th><th>{t('dash.spoofs')}</th></tr></thead>
          <tbody>{sources.rows.map(([s, c]) => (
            <tr key={s}><td>{s}</td><td>{c.match}</td><td>{c.stranger}</td><td>{c.spoof}</td></tr>
          ))}</tbody>
        </table></div>
      ))}
      {sources?.partial && <p class="muted">{t('dash.partial', { n: SRC_MAX })}</p>}
      <h3>{t('dash.health')}</h3>
      <Msg kind="error" text={herr} />
      {health && (
        <div class="health" data-testid="health">
          <span class={`dot ${healthy ? 'good' : 'bad'}`} /> {healthy ? t('dash.healthy') : t('dash.unhealthy')}
          <span class="muted"> · {t('dash.version')} {health.version ?? ''} · {t('dash.uptime')} {fmtUptime(health.uptime)}</span>
        </div>
      )}
    </section>
  );
}

function fmtUptime(s: unknown): string {
  const v = Number(s);
  if (!isFinite(v)) return '';
  const h = Math.floor(v / 3600), m = Math.floor((v % 3600) / 60);
  return h ? `${h}h ${m}m` : `${m}m ${Math.floor(v % 60)}s`;
}
