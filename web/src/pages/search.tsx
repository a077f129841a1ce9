// Search (1:N): one photo -> top-k candidates with scores, enrolment photos and names (POST /identify).
// Candidates under the threshold are shown as "unknown". The service writes a record for every search
// (source "console").
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { call, imgUrl } from '../api';
import { Me } from '../session';
import { Msg, errMsg, ImageInput, Picked, FaceView, Field, Box } from '../ui';
import { detect, modelThresholds } from './compare';

export function Search(_: { me: Me }) {
  const [img, setImg] = useState<Picked | null>(null);
  const [boxes, setBoxes] = useState<Box[] | null>(null);
  const [k, setK] = useState(5);
  const [group, setGroup] = useState('');
  const [thr, setThr] = useState(0.5);
  const [res, setRes] = useState<any>(null);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => { modelThresholds().then((m) => { if (m.identify !== null) setThr(m.identify); }).catch(() => {}); }, []);

  const pick = (p: Picked | null) => { setImg(p); setRes(null); setBoxes(null); if (p) detect(p.file).then(setBoxes).catch((e) => setErr(errMsg(e))); };

  const run = async (e: Event) => {
    e.preventDefault();
    if (!img) { setErr(t('enrol.need_image')); return; }
    setBusy(true); setErr(''); setRes(null);
    const fd = new FormData();
    fd.append('image', img.file);
    fd.append('top', String(k));
    fd.append('source', 'console');
    if (group) fd.append('group', group);
    try { setRes(await call('POST', 'identify', fd)); } catch (ex) { setErr(errMsg(ex)); } finally { setBusy(false); }
  };

  const cands: any[] = res?.matches ?? [];
  return (
    <section>
      <div class="page-head"><h2>{t('nav.search')}</h2></div>
      <form onSubmit={run} class="search-form">
        <ImageInput name="probe" value={img} onChange={pick} />
        <div class="row wrap">
          <Field label={t('search.topk')}><input type="number" min="1" max="100" value={k} onInput={(e) => setK(Number((e.target as HTMLInputElement).value))} /></Field>
          <Field label={t('search.group')}><input value={group} onInput={(e) => setGroup((e.target as HTMLInputElement).value)} /></Field>
          <Field label={`${t('compare.threshold')} ${thr.toFixed(2)}`}><input type="range" min="0" max="1" step="0.01" value={thr} onInput={(e) => setThr(Number((e.target as HTMLInputElement).value))} /></Field>
        </div>
        <button type="submit" class="primary" data-testid="search-run" disabled={busy}>{busy ? t('common.wait') : t('search.run')}</button>
      </form>
      <Msg kind="error" text={err} />
      <div class="pair">
        {img && <div class="panel"><FaceView url={img.url} boxes={boxes ?? []} /></div>}
        {res && (
          <div class="panel" data-testid="candidates">
            {res.decision && <p class="muted">{t('records.decision')}: {t(`decision.${res.decision}`)}</p>}
            {(cands.length === 0 || cands.every((c) => c.score < thr)) && <p class="verdict bad" data-testid="unknown">{t('search.unknown')}</p>}
            <ol class="cands">{cands.map((c, i) => {
              const known = (c.score ?? 0) >= thr;
              return (
                <li key={i} class={known ? 'good' : 'bad'} data-candidate={c.name} data-known={known ? '1' : '0'}>
                  {c.person_id && c.face_id && <img src={imgUrl(`persons/${c.person_id}/faces/${c.face_id}/image`)} alt="" />}
                  <div><b>{known ? c.name : `${t('search.unknown')} (${c.name})`}</b>
                    <span>{t('compare.score')}: {Number(c.score).toFixed(3)}</span>
                    {c.external_id && <span class="muted">{c.external_id}</span>}</div>
                </li>
              );
            })}</ol>
          </div>
        )}
      </div>
    </section>
  );
}
