// Dashboard: today's matches, strangers and spoof attempts, counts per source/device, the gallery's size and
// the service health. One call: GET /stats?tz_offset=<the browser's> gives today's totals and per-source
// counts in the operator's own day (the answer names the zone it used); GET /health for the service.
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Loading } from '../ui';

interface Counts { match?: number; stranger?: number; spoof?: number; total?: number }
interface Stats { from?: number; to?: number; timezone?: string; totals?: Counts; by_source?: (Counts & { source?: string })[]; gallery?: { persons?: number; faces?: number } }

export function Dashboard(_: { me: Me }) {
  const [stats, setStats] = useState<Stats | null>(null);
  const [health, setHealth] = useState<any>(null);
  const [err, setErr] = useState('');
  const [herr, setHerr] = useState('');

  const load = () => {
    setErr(''); setHerr('');
    get('health').then(setHealth).catch((e) => setHerr(errMsg(e)));
    get<Stats>('stats', { tz_offset: -new Date().getTimezoneOffset() }).then(setStats).catch((e) => setErr(errMsg(e)));
  };
  useEffect(load, []);

  const healthy = health && health.status === 'ok';
  const n = (k: keyof Counts) => (stats ? stats.totals?.[k] ?? 0 : '—');
  const rows = stats?.by_source ?? [];
  return (
    <section>
      <div class="page-head"><h2>{t('nav.dashboard')}</h2><button type="button" onClick={load}>{t('common.refresh')}</button></div>
      <Msg kind="error" text={err} />
      <div class="tiles">
        <div class="tile tile-good" data-testid="tile-matches"><b>{n('match')}</b><span>{t('dash.matches')}</span></div>
        <div class="tile" data-testid="tile-strangers"><b>{n('stranger')}</b><span>{t('dash.strangers')}</span></div>
        <div class="tile tile-warn" data-testid="tile-spoofs"><b>{n('spoof')}</b><span>{t('dash.spoofs')}</span></div>
      </div>
      {stats && (
        <p class="muted" data-testid="stats-range">
          {t('dash.range', { from: fmtTime(stats.from), to: fmtTime(stats.to), tz: stats.timezone ?? '' })}
          {stats.gallery && <> · {t('dash.gallery', { persons: stats.gallery.persons ?? 0, faces: stats.gallery.faces ?? 0 })}</>}
        </p>
      )}
      <h3>{t('dash.by_source')}</h3>
      {!stats && !err && <Loading />}
      {stats && (rows.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <div class="table-wrap"><table data-testid="sources-table">
          <thead><tr><th>{t('dash.source')}</th><th>{t('dash.matches')}</th><th>{t('dash.strangers')}</th><th>{t('dash.spoofs')}</th><th>{t('dash.total')}</th></tr></thead>
          <tbody>{rows.map((c) => (
            <tr key={c.source} data-source={c.source ?? ''}><td>{c.source || '—'}</td><td>{c.match ?? 0}</td><td>{c.stranger ?? 0}</td><td>{c.spoof ?? 0}</td><td>{c.total ?? 0}</td></tr>
          ))}</tbody>
        </table></div>
      ))}
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
