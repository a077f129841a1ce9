// Persons: list with name search and paging; create (with consent and first photos), details, edit
// (name, external id, group, metadata: PUT /persons/{id}), delete; enrol more faces by upload or webcam with
// the consent checkbox and purpose that the service records; delete a single enrolled face (confirmed).
// Every photo is first checked with POST /analyze so the operator sees its quality reasons in words
// (small, blurry, dark ...) before and after enrolment.
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get, del, put, call, imgUrl } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Pager, Modal, ImageInput, Picked, Field, Loading } from '../ui';

const PER = 20;

export function reasonWords(reasons: unknown): string[] {
  if (!Array.isArray(reasons)) return [];
  return reasons.map((r) => {
    const code = String(typeof r === 'object' && r ? (r as any).code ?? '' : r);
    const k = `quality.${code}`;
    const w = t(k);
    return w === k ? code : w;
  });
}

// One photo's quality in words from /analyze: the largest face's reasons, or "no face" / "several faces".
export async function photoQuality(file: File): Promise<{ pass: boolean; words: string[] }> {
  const fd = new FormData();
  fd.append('image', file);
  const r = await call<any>('POST', 'analyze', fd);
  const faces: any[] = r.faces ?? [];
  if (!faces.length) return { pass: false, words: [t('quality.no_face')] };
  const area = (f: any) => (Array.isArray(f.box) ? f.box[2] * f.box[3] : 0);
  const f = faces.slice().sort((a, b) => area(b) - area(a))[0];
  const words = reasonWords(f.quality?.reasons);
  if (faces.length > 1) words.push(t('quality.several', { n: faces.length }));
  return { pass: !!f.quality?.pass, words };
}

interface PhotoResult { url: string; pass: boolean | null; words: string[]; status: 'checked' | 'enrolled' | 'refused'; msg?: string }

function PhotoResults({ items }: { items: PhotoResult[] }) {
  if (!items.length) return null;
  return (
    <ul class="results" data-testid="photo-results">{items.map((r, i) => (
      <li key={i} class={r.status === 'refused' || r.pass === false ? 'bad' : 'good'} data-status={r.status}>
        <img src={r.url} alt="" />
        <div>
          <b>{t(`photo.${r.status}`)}</b>
          {r.msg && <p>{r.msg}</p>}
          {r.pass === true && r.words.length === 0 && <p>{t('quality.good')}</p>}
          {r.words.some((w) => !r.msg?.includes(w)) && <ul>{r.words.filter((w) => !r.msg?.includes(w)).map((w) => <li key={w}>{w}</li>)}</ul>}
        </div>
      </li>
    ))}</ul>
  );
}

export function Persons(_: { me: Me }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  const [page, setPage] = useState(1);
  const [data, setData] = useState<{ items: any[]; total: number } | null>(null);
  const [err, setErr] = useState('');
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<{ p: any; edit: boolean } | null>(null);
  const [ok, setOk] = useState('');

  const load = () => {
    setErr('');
    get<any>('persons', { name: query, limit: PER, offset: (page - 1) * PER })
      .then((r) => setData({ items: r.items ?? [], total: r.total ?? 0 }))
      .catch((e) => setErr(errMsg(e)));
  };
  useEffect(load, [query, page]);

  const remove = async (p: any) => {
    if (!confirm(t('persons.confirm_delete', { name: p.name }))) return;
    try { await del(`persons/${p.id}`); setOk(t('persons.deleted', { name: p.name })); load(); } catch (e) { setErr(errMsg(e)); }
  };

  return (
    <section>
      <div class="page-head"><h2>{t('nav.persons')}</h2>
        <button type="button" class="primary" data-testid="person-new" onClick={() => setCreating(true)}>{t('persons.new')}</button></div>
      <form class="row" onSubmit={(e) => { e.preventDefault(); setPage(1); setQuery(q); }}>
        <input type="search" name="q" placeholder={t('persons.search_ph')} value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        <button type="submit">{t('common.search')}</button>
      </form>
      <Msg kind="error" text={err} /><Msg kind="ok" text={ok} />
      {!data && !err && <Loading />}
      {data && (
        <div class="table-wrap"><table data-testid="persons-table">
          <thead><tr><th>{t('persons.name')}</th><th class="hide-sm">{t('persons.ext_id')}</th><th class="hide-sm">{t('persons.group')}</th><th>{t('persons.faces')}</th><th class="hide-sm">{t('persons.created')}</th><th /></tr></thead>
          <tbody>
            {data.items.length === 0 && <tr><td colSpan={6} class="muted">{t('common.none')}</td></tr>}
            {data.items.map((p) => (
              <tr key={p.id} data-person={p.name}>
                <td><a href="javascript:void 0" onClick={() => setOpen({ p, edit: false })}>{p.name}</a></td><td class="hide-sm">{p.external_id ?? ''}</td><td class="hide-sm">{p.group ?? ''}</td>
                <td>{p.faces ?? ''}</td><td class="hide-sm">{fmtTime(p.created_at)}</td>
                <td class="actions">
                  <button type="button" data-testid="enrol" onClick={() => setOpen({ p, edit: false })}>{t('persons.enrol')}</button>
                  <button type="button" data-testid="person-edit" onClick={() => setOpen({ p, edit: true })}>{t('common.edit')}</button>
                  <button type="button" class="danger" onClick={() => remove(p)}>{t('common.delete')}</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table></div>
      )}
      {data && <Pager page={page} pages={Math.ceil(data.total / PER)} onPage={setPage} />}
      {creating && <CreatePerson onClose={() => { setCreating(false); load(); }} />}
      {open && <PersonDetail person={open.p} edit={open.edit} onClose={() => { setOpen(null); load(); }} />}
    </section>
  );
}

function ConsentFields({ consent, setConsent, by, setBy, purpose, setPurpose }: any) {
  return (
    <fieldset class="consent">
      <legend>{t('consent.title')}</legend>
      <label class="check"><input type="checkbox" name="consent" checked={consent} onChange={(e) => setConsent((e.target as HTMLInputElement).checked)} />{t('consent.check')}</label>
      <Field label={t('consent.by')}><input name="consent_by" value={by} onInput={(e) => setBy((e.target as HTMLInputElement).value)} /></Field>
      <Field label={t('consent.purpose')}><input name="consent_purpose" value={purpose} placeholder={t('consent.purpose_ph')} onInput={(e) => setPurpose((e.target as HTMLInputElement).value)} /></Field>
    </fieldset>
  );
}

function CreatePerson({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const [ext, setExt] = useState('');
  const [group, setGroup] = useState('');
  const [consent, setConsent] = useState(false);
  const [by, setBy] = useState('');
  const [purpose, setPurpose] = useState('');
  const [photos, setPhotos] = useState<Picked[]>([]);
  const [checks, setChecks] = useState<PhotoResult[]>([]);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<any>(null);

  const add = async (p: Picked | null) => {
    if (!p) return;
    setPhotos((x) => [...x, p]);
    try { const q = await photoQuality(p.file); setChecks((x) => [...x, { url: p.url, ...q, status: 'checked' }]); }
    catch (e) { setChecks((x) => [...x, { url: p.url, pass: false, words: [], status: 'checked', msg: errMsg(e) }]); }
  };

  const save = async (e: Event) => {
    e.preventDefault();
    if (!consent || !by.trim() || !purpose.trim()) { setErr(t('consent.required')); return; }
    setBusy(true); setErr('');
    const fd = new FormData();
    fd.append('name', name);
    if (ext) fd.append('external_id', ext);
    if (group) fd.append('group', group);
    fd.append('consent_by', by);
    fd.append('consent_purpose', purpose);
    for (const p of photos) fd.append('image', p.file);
    try {
      const r = await call<any>('POST', 'persons', fd);
      setDone(r);
      setChecks((x) => x.map((c) => ({ ...c, status: 'enrolled' })));
    } catch (ex) { setErr(errMsg(ex)); } finally { setBusy(false); }
  };

  return (
    <Modal title={t('persons.new')} onClose={onClose}>
      {done ? (
        <div><Msg kind="ok" text={t('persons.created_ok', { name: done.name ?? name, n: (done.face_ids ?? []).length })} />
          <PhotoResults items={checks} />
          <button type="button" class="primary" onClick={onClose}>{t('common.close')}</button></div>
      ) : (
        <form onSubmit={save} data-testid="person-form">
          <Field label={t('persons.name')}><input name="name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></Field>
          <div class="row wrap">
            <Field label={t('persons.ext_id')}><input name="external_id" value={ext} onInput={(e) => setExt((e.target as HTMLInputElement).value)} /></Field>
            <Field label={t('persons.group')}><input name="group" value={group} onInput={(e) => setGroup((e.target as HTMLInputElement).value)} /></Field>
          </div>
          <ConsentFields {...{ consent, setConsent, by, setBy, purpose, setPurpose }} />
          <h4>{t('persons.photos')}</h4>
          <ImageInput name="enrol" value={null} onChange={add} />
          <PhotoResults items={checks} />
          <Msg kind="error" text={err} />
          <div class="row"><button type="submit" class="primary" data-testid="person-save" disabled={busy}>{busy ? t('common.wait') : t('common.save')}</button>
            <button type="button" onClick={onClose}>{t('common.cancel')}</button></div>
        </form>
      )}
    </Modal>
  );
}

// Edit name, external id, group and metadata (PUT /persons/{id}, JSON with the changed fields). A failed
// save (network error, refusal, bad metadata JSON) says so and keeps every field as typed.
function PersonEdit({ p, onSaved, onCancel }: { p: any; onSaved: (x: any) => void; onCancel: () => void }) {
  const [name, setName] = useState<string>(p.name ?? '');
  const [ext, setExt] = useState<string>(p.external_id ?? '');
  const [group, setGroup] = useState<string>(p.group ?? '');
  const [meta, setMeta] = useState<string>(p.metadata && Object.keys(p.metadata).length ? JSON.stringify(p.metadata, null, 2) : '');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);

  const save = async (e: Event) => {
    e.preventDefault();
    setErr('');
    if (!name.trim()) { setErr(t('persons.name_required')); return; }
    let metadata: unknown = {};
    if (meta.trim()) {
      try { metadata = JSON.parse(meta); } catch { setErr(t('persons.meta_bad')); return; }
      if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) { setErr(t('persons.meta_bad')); return; }
    }
    const body: Record<string, unknown> = {};
    if (name !== (p.name ?? '')) body.name = name;
    if (ext !== (p.external_id ?? '')) body.external_id = ext;
    if (group !== (p.group ?? '')) body.group = group;
    if (JSON.stringify(metadata) !== JSON.stringify(p.metadata ?? {})) body.metadata = metadata;
    if (!Object.keys(body).length) { onCancel(); return; }
    setBusy(true);
    try { onSaved(await put<any>(`persons/${p.id}`, body)); }
    catch (ex) { setErr(`${t('persons.save_failed')}: ${errMsg(ex)}`); }
    finally { setBusy(false); }
  };

  return (
    <form onSubmit={save} data-testid="person-edit-form" class="card">
      <Field label={t('persons.name')}><input name="name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></Field>
      <div class="row wrap">
        <Field label={t('persons.ext_id')}><input name="external_id" value={ext} onInput={(e) => setExt((e.target as HTMLInputElement).value)} /></Field>
        <Field label={t('persons.group')}><input name="group" value={group} onInput={(e) => setGroup((e.target as HTMLInputElement).value)} /></Field>
      </div>
      <Field label={t('persons.metadata')}><textarea name="metadata" rows={3} class="mono" placeholder='{"room": "3-201"}' value={meta} onInput={(e) => setMeta((e.target as HTMLTextAreaElement).value)} /></Field>
      <Msg kind="error" text={err} />
      <div class="row"><button type="submit" class="primary" data-testid="person-edit-save" disabled={busy}>{busy ? t('common.wait') : t('common.save')}</button>
        <button type="button" onClick={onCancel}>{t('common.cancel')}</button></div>
    </form>
  );
}

function PersonDetail({ person, edit, onClose }: { person: any; edit?: boolean; onClose: () => void }) {
  const [p, setP] = useState<any>(person);
  const [editing, setEditing] = useState(!!edit);
  const [ok, setOk] = useState('');
  const [faces, setFaces] = useState<any[] | null>(null);
  const [img, setImg] = useState<Picked | null>(null);
  const [consent, setConsent] = useState(false);
  const [by, setBy] = useState<string>(person.consent?.by ?? '');
  const [purpose, setPurpose] = useState<string>(person.consent?.purpose ?? '');
  const [results, setResults] = useState<PhotoResult[]>([]);
  const [err, setErr] = useState('');
  const [faceErr, setFaceErr] = useState('');
  const [busy, setBusy] = useState(false);

  const loadFaces = () => get<any>(`persons/${person.id}/faces`).then((r) => setFaces(r.items ?? [])).catch((e) => setFaceErr(errMsg(e)));
  useEffect(() => {
    get<any>(`persons/${person.id}`).then((x) => {
      setP(x);
      if (x?.consent?.by) setBy((v: string) => v || x.consent.by);
      if (x?.consent?.purpose) setPurpose((v: string) => v || x.consent.purpose);
    }).catch((e) => setErr(errMsg(e)));
    loadFaces();
  }, []);

  const removeFace = async (f: any) => {
    if (!confirm(t('enrol.confirm_delete_face', { name: p.name }))) return;
    setFaceErr(''); setOk('');
    try { await del(`persons/${person.id}/faces/${f.id}`); setOk(t('enrol.face_deleted')); loadFaces(); }
    catch (e) { setFaceErr(errMsg(e)); }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!img) { setErr(t('enrol.need_image')); return; }
    if (!consent || !by.trim() || !purpose.trim()) { setErr(t('consent.required')); return; }
    setBusy(true); setErr('');
    let q: { pass: boolean | null; words: string[] } = { pass: null, words: [] };
    try { q = await photoQuality(img.file); } catch { /* enrolment still decides */ }
    const fd = new FormData();
    fd.append('image', img.file);
    fd.append('consent_by', by);
    fd.append('consent_purpose', purpose);
    try {
      await call<any>('POST', `persons/${person.id}/faces`, fd);
      setResults((x) => [{ url: img.url, ...q, status: 'enrolled' }, ...x]);
      setImg(null);
      loadFaces();
    } catch (ex) {
      // A refused photo keeps consent and purpose as typed; the photo stays selected for another try.
      setResults((x) => [{ url: img.url, ...q, status: 'refused', msg: errMsg(ex) }, ...x]);
    } finally { setBusy(false); }
  };

  const meta = p.metadata && typeof p.metadata === 'object' ? Object.entries(p.metadata) : [];
  return (
    <Modal title={p.name} onClose={onClose}>
      {editing ? (
        <PersonEdit p={p} onCancel={() => setEditing(false)} onSaved={(x) => { setP({ ...p, ...x }); setEditing(false); setOk(t('persons.saved')); }} />
      ) : (
        <div>
          <dl class="kv" data-testid="person-kv">
            <div><dt>{t('persons.ext_id')}</dt><dd data-field="external_id">{p.external_id || '—'}</dd></div>
            <div><dt>{t('persons.group')}</dt><dd data-field="group">{p.group || '—'}</dd></div>
            {meta.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{typeof v === 'string' ? v : JSON.stringify(v)}</dd></div>)}
            <div><dt>{t('consent.by')}</dt><dd>{p.consent?.by ?? '—'}</dd></div>
            <div><dt>{t('consent.purpose')}</dt><dd>{p.consent?.purpose ?? '—'}</dd></div>
            <div><dt>{t('consent.at')}</dt><dd>{fmtTime(p.consent?.at)}</dd></div>
            <div><dt>{t('consent.recorded_by')}</dt><dd>{p.consent?.recorded_by ?? '—'}</dd></div>
          </dl>
          <div class="row"><button type="button" data-testid="person-edit-open" onClick={() => { setOk(''); setEditing(true); }}>{t('common.edit')}</button></div>
        </div>
      )}
      <Msg kind="ok" text={ok} />
      <h4>{t('enrol.current')}</h4>
      <Msg kind="error" text={faceErr} />
      {!faces && !faceErr && <Loading />}
      {faces && faces.length === 0 && <p class="muted">{t('common.none')}</p>}
      {faces && <div class="thumbs" data-testid="faces">{faces.map((f) => (
        <figure key={f.id} data-face={f.id}><img src={imgUrl(f.image_url ?? `persons/${person.id}/faces/${f.id}/image`)} alt="" />
          <figcaption>{qualityWord(f.quality)} · {fmtTime(f.created_at)}</figcaption>
          <button type="button" class="danger small" data-testid="face-delete" onClick={() => removeFace(f)}>{t('common.delete')}</button></figure>
      ))}</div>}
      <h4>{t('persons.enrol')}</h4>
      <form onSubmit={submit} data-testid="enrol-form">
        <ImageInput name="enrol" value={img} onChange={setImg} />
        {img && <img class="preview" src={img.url} alt="" />}
        <PhotoResults items={results} />
        <ConsentFields {...{ consent, setConsent, by, setBy, purpose, setPurpose }} />
        <Msg kind="error" text={err} />
        <div class="row"><button type="submit" class="primary" disabled={busy}>{busy ? t('common.wait') : t('enrol.submit')}</button><button type="button" onClick={onClose}>{t('common.close')}</button></div>
      </form>
    </Modal>
  );
}

// A stored face's quality score (0..1) in words, the number after it.
function qualityWord(q: unknown): string {
  if (typeof q !== 'number') return t('enrol.quality');
  const w = q >= 0.7 ? t('enrol.q_good') : q >= 0.4 ? t('enrol.q_fair') : t('enrol.q_poor');
  return `${t('enrol.quality')}: ${w} (${q.toFixed(2)})`;
}
