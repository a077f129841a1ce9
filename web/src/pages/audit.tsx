// Audit (auditor, admin): query the log by who/what/when/status, the hash chain status from the service's
// verify, CSV export of the same query (GET /audit.csv), and the recorded login failures.
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get, download, qs } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Pager, Field, Loading } from '../ui';

const PER = 50;
type F = { actor: string; action: string; status: string; from: string; to: string };
const EMPTY: F = { actor: '', action: '', status: '', from: '', to: '' };
const unix = (s: string) => (s ? Math.floor(new Date(s).getTime() / 1000) : '');
const params = (f: F) => ({ actor: f.actor, action: f.action, status: f.status, from: unix(f.from), to: unix(f.to) });

export function Audit(_: { me: Me }) {
  const [f, setF] = useState<F>(EMPTY);
  const [applied, setApplied] = useState<F>(EMPTY);
  const [page, setPage] = useState(1);
  const [data, setData] = useState<{ items: any[]; total: number } | null>(null);
  const [chain, setChain] = useState<any>(null);
  const [fails, setFails] = useState<any[] | null>(null);
  const [err, setErr] = useState('');

  useEffect(() => {
    setErr('');
    get<any>('audit', { ...params(applied), limit: PER, offset: (page - 1) * PER })
      .then((r) => setData({ items: r.items ?? [], total: r.total ?? 0 })).catch((e) => setErr(errMsg(e)));
  }, [applied, page]);
  const verify = () => { setChain(null); get<any>('audit/verify').then(setChain).catch((e) => setChain({ error: errMsg(e) })); };
  useEffect(() => {
    verify();
    get<any>('login-failures', { limit: 20 }).then((r) => setFails(r.items ?? [])).catch(() => setFails(null));
  }, []);

  const set = (k: keyof F) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const csv = () => download(`/api/v1/audit.csv${qs(params(applied))}`, 'audit.csv').catch((e) => setErr(errMsg(e)));

  return (
    <section>
      <div class="page-head"><h2>{t('nav.audit')}</h2><button type="button" data-testid="audit-csv" onClick={csv}>{t('common.csv')}</button></div>
      <div class="chain" data-testid="chain">
        {t('audit.chain')}:{' '}
        {!chain && <span class="muted">{t('common.loading')}</span>}
        {chain?.error && <span class="bad">{chain.error}</span>}
        {chain && !chain.error && (chain.ok
          ? <span class="good" data-ok="1">✔ {t('audit.chain_ok', { n: chain.entries ?? '' })}</span>
          : <span class="bad" data-ok="0">✘ {t('audit.chain_bad', { id: chain.first_bad ?? '?' })}</span>)}
        {' '}<button type="button" class="link" onClick={verify}>{t('audit.verify')}</button>
      </div>
      <form class="filters" data-testid="audit-filters" onSubmit={(e) => { e.preventDefault(); setPage(1); setApplied({ ...f }); }}>
        <Field label={t('audit.actor')}><input name="actor" value={f.actor} placeholder="user:admin" onInput={set('actor')} /></Field>
        <Field label={t('audit.action')}><input name="action" value={f.action} placeholder="POST /api/v1/persons" onInput={set('action')} /></Field>
        <Field label={t('audit.status')}><input type="number" name="status" value={f.status} onInput={set('status')} /></Field>
        <Field label={t('records.from')}><input type="datetime-local" name="from" value={f.from} onInput={set('from')} /></Field>
        <Field label={t('records.to')}><input type="datetime-local" name="to" value={f.to} onInput={set('to')} /></Field>
        <div class="row"><button type="submit" class="primary">{t('common.search')}</button><button type="button" onClick={() => { setF(EMPTY); setApplied(EMPTY); }}>{t('common.reset')}</button></div>
      </form>
      <Msg kind="error" text={err} />
      {!data && !err && <Loading />}
      {data && (
        <div class="table-wrap"><table data-testid="audit-table">
          <thead><tr><th>{t('records.time')}</th><th>{t('audit.actor')}</th><th class="hide-sm">{t('users.role')}</th><th class="hide-sm">{t('audit.address')}</th><th>{t('audit.action')}</th><th>{t('audit.target')}</th><th>{t('audit.status')}</th></tr></thead>
          <tbody>
            {data.items.length === 0 && <tr><td colSpan={7} class="muted">{t('common.none')}</td></tr>}
            {data.items.map((a) => (
              <tr key={a.id} title={a.detail ?? ''}><td>{fmtTime(a.time)}</td><td>{a.actor}</td><td class="hide-sm">{a.role ?? ''}</td><td class="hide-sm">{a.address ?? ''}</td><td class="mono">{a.action}</td><td>{a.target ?? ''}</td><td>{a.status}</td></tr>
            ))}
          </tbody>
        </table></div>
      )}
      {data && <Pager page={page} pages={Math.ceil(data.total / PER)} onPage={setPage} />}
      <h3>{t('audit.failures')}</h3>
      {fails && (fails.length === 0 ? <p class="muted">{t('common.none')}</p> : (
        <div class="table-wrap"><table data-testid="failures-table">
          <thead><tr><th>{t('records.time')}</th><th>{t('login.username')}</th><th class="hide-sm">{t('audit.address')}</th><th>{t('audit.reason')}</th></tr></thead>
          <tbody>{fails.map((x) => <tr key={x.id}><td>{fmtTime(x.time)}</td><td>{x.username}</td><td class="hide-sm">{x.address}</td><td>{reasonText(x.reason)}</td></tr>)}</tbody>
        </table></div>
      ))}
    </section>
  );
}

// The service records login-failure reasons in English; Chinese words for the known ones.
function reasonText(r: unknown): string {
  const k = `reason.${String(r ?? '')}`;
  const w = t(k);
  return w === k ? String(r ?? '') : w;
}
