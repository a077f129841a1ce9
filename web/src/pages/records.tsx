// Records: filters (time range, name, source/device, score range, matched or not), thumbnails of the probe
// and the enrolment photo, a detail view and CSV export of the current filter (GET /records.csv with the same
// filter, the service writes the file; the browser saves it as a download).
// Snapshots are for admin/operator only (an auditor sees the records without pictures).
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get, imgUrl, download, qs } from '../api';
import { rolesOf, can } from '../session';
import { Me } from '../session';
import { Msg, errMsg, Pager, Modal, Field, Loading } from '../ui';

const PER = 20;
type F = { from: string; to: string; name: string; source: string; min_score: string; max_score: string; matched: string };
const EMPTY: F = { from: '', to: '', name: '', source: '', min_score: '', max_score: '', matched: '' };

function params(f: F) {
  const unix = (s: string) => (s ? Math.floor(new Date(s).getTime() / 1000) : '');
  return { from: unix(f.from), to: unix(f.to), name: f.name, source: f.source, min_score: f.min_score, max_score: f.max_score, matched: f.matched };
}

export function Records({ me }: { me: Me }) {
  const pics = can(me, 'GET /api/v1/records/{id}/snapshot', rolesOf(me).some((r) => r === 'admin' || r === 'operator'));
  const [f, setF] = useState<F>(EMPTY);
  const [applied, setApplied] = useState<F>(EMPTY);
  const [page, setPage] = useState(1);
  const [data, setData] = useState<{ items: any[]; total: number } | null>(null);
  const [err, setErr] = useState('');
  const [detail, setDetail] = useState<any>(null);

  useEffect(() => {
    setErr('');
    get<any>('records', { ...params(applied), limit: PER, offset: (page - 1) * PER })
      .then((r) => setData({ items: r.items ?? [], total: r.total ?? 0 }))
      .catch((e) => setErr(errMsg(e)));
  }, [applied, page]);

  const set = (k: keyof F) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const [csvBusy, setCsvBusy] = useState(false);
  const csv = async () => {
    setCsvBusy(true); setErr('');
    try { await download(`/api/v1/records.csv${qs({ ...params(applied), bom: 1 })}`, 'records.csv'); }
    catch (e) { setErr(errMsg(e)); } finally { setCsvBusy(false); }
  };

  return (
    <section>
      <div class="page-head"><h2>{t('nav.records')}</h2><button type="button" data-testid="records-csv" disabled={csvBusy} onClick={csv}>{csvBusy ? t('common.wait') : t('common.csv')}</button></div>
      <form class="filters" onSubmit={(e) => { e.preventDefault(); setPage(1); setApplied({ ...f }); }}>
        <Field label={t('records.from')}><input type="datetime-local" name="from" value={f.from} onInput={set('from')} /></Field>
        <Field label={t('records.to')}><input type="datetime-local" name="to" value={f.to} onInput={set('to')} /></Field>
        <Field label={t('records.name')}><input name="name" value={f.name} onInput={set('name')} /></Field>
        <Field label={t('records.source')}><input name="source" value={f.source} onInput={set('source')} /></Field>
        <Field label={t('records.min_score')}><input type="number" name="min_score" step="0.01" min="0" max="1" value={f.min_score} onInput={set('min_score')} /></Field>
        <Field label={t('records.max_score')}><input type="number" name="max_score" step="0.01" min="0" max="1" value={f.max_score} onInput={set('max_score')} /></Field>
        <Field label={t('records.matched')}>
          <select name="matched" value={f.matched} onChange={set('matched')}>
            <option value="">{t('common.all')}</option><option value="true">{t('records.matched_yes')}</option><option value="false">{t('records.matched_no')}</option>
          </select></Field>
        <div class="row"><button type="submit" class="primary">{t('common.search')}</button><button type="button" onClick={() => { setF(EMPTY); setApplied(EMPTY); }}>{t('common.reset')}</button></div>
      </form>
      <Msg kind="error" text={err} />
      {!data && !err && <Loading />}
      {data && (
        <div class="table-wrap"><table data-testid="records-table">
          <thead><tr><th>{t('records.time')}</th><th>{t('records.probe')}</th><th>{t('records.enrolled')}</th><th>{t('records.name')}</th><th class="hide-sm">{t('records.score')}</th><th>{t('records.decision')}</th><th class="hide-sm">{t('records.source')}</th></tr></thead>
          <tbody>
            {data.items.length === 0 && <tr><td colSpan={7} class="muted">{t('common.none')}</td></tr>}
            {data.items.map((r) => (
              <tr key={r.id} class="click" onClick={() => setDetail(r)} data-record={r.id}>
                <td class="wrap-sm">{fmtTime(r.time)}</td>
                <td>{pics && r.snapshot_url && <img class="thumb" loading="lazy" src={imgUrl(r.snapshot_url)} alt="" />}</td>
                <td>{pics && r.enrolment_image_url && <img class="thumb" loading="lazy" src={imgUrl(r.enrolment_image_url)} alt="" />}</td>
                <td class="wrap-sm">{r.person_name ?? ''}</td>
                <td class="hide-sm">{typeof r.score === 'number' ? r.score.toFixed(3) : ''}</td>
                <td>{decision(r)}</td>
                <td class="hide-sm">{r.source ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table></div>
      )}
      {data && <Pager page={page} pages={Math.ceil(data.total / PER)} onPage={setPage} />}
      {detail && (
        <Modal title={t('records.detail')} onClose={() => setDetail(null)}>
          <div class="pair photos">
            {pics && detail.snapshot_url && <figure><img src={imgUrl(detail.snapshot_url)} alt="" /><figcaption>{t('records.probe')}</figcaption></figure>}
            {pics && detail.enrolment_image_url && <figure><img src={imgUrl(detail.enrolment_image_url)} alt="" /><figcaption>{t('records.enrolled')}</figcaption></figure>}
          </div>
          <dl class="kv" data-testid="record-detail">
            <div><dt>{t('records.id')}</dt><dd>{detail.id}</dd></div>
            <div><dt>{t('records.time')}</dt><dd>{fmtTime(detail.time)}</dd></div>
            <div><dt>{t('records.source')}</dt><dd>{detail.source || '—'}</dd></div>
            <div><dt>{t('records.decision')}</dt><dd>{decision(detail)}</dd></div>
            <div><dt>{t('records.name')}</dt><dd>{detail.person_name || '—'}</dd></div>
            <div><dt>{t('records.score')}</dt><dd>{typeof detail.score === 'number' ? detail.score.toFixed(4) : '—'}</dd></div>
            <div><dt>{t('records.cosine')}</dt><dd>{typeof detail.cosine === 'number' ? detail.cosine.toFixed(4) : '—'}</dd></div>
            <div><dt>{t('records.liveness')}</dt><dd>{typeof detail.liveness === 'number' ? detail.liveness.toFixed(3) : '—'}</dd></div>
          </dl>
        </Modal>
      )}
    </section>
  );
}

function decision(r: any): string {
  const d = r.decision ?? (r.matched ? 'match' : 'stranger');
  const k = `decision.${d}`;
  const w = t(k);
  return w === k ? String(d) : w;
}
