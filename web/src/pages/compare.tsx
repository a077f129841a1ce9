// Compare (1:1): two photos side by side with the detected faces drawn (POST /detect), the score
// (POST /compare) and a threshold slider 0..1 that decides "same person" / "different" live, without a new
// request. The slider starts at the threshold the service decides with (GET /models: `in_effect`, the
// settings over the model manifest's default) and shows the manifest's own default (`defaults.threshold`),
// one click away.
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { call, get } from '../api';
import { Me } from '../session';
import { Msg, errMsg, ImageInput, Picked, FaceView, Box } from '../ui';

export function boxesOf(faces: any): Box[] {
  if (!Array.isArray(faces)) return [];
  return faces.filter((f) => Array.isArray(f.box) && f.box.length === 4)
    .map((f) => ({ x: f.box[0], y: f.box[1], w: f.box[2], h: f.box[3] }));
}

export async function detect(file: File): Promise<Box[]> {
  const fd = new FormData();
  fd.append('image', file);
  return boxesOf((await call<any>('POST', 'detect', fd)).faces);
}

// The model manifest's default threshold and the one in effect (GET /models, readable by every role).
export interface Thresholds { manifest: number | null; compare: number | null; identify: number | null }
export async function modelThresholds(): Promise<Thresholds> {
  const m = await get<any>('models');
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  const manifest = num(m?.defaults?.threshold);
  return { manifest, compare: num(m?.in_effect?.compare_threshold) ?? manifest, identify: num(m?.in_effect?.identify_threshold) ?? manifest };
}

function Side({ label, name, pic, setPic, boxes }: { label: string; name: string; pic: Picked | null; setPic: (p: Picked | null) => void; boxes: Box[] | null }) {
  return (
    <div class="panel">
      <h3>{label}</h3>
      <ImageInput name={name} value={pic} onChange={setPic} />
      {pic && <FaceView url={pic.url} boxes={boxes ?? []} />}
      {pic && boxes && <p class="muted" data-testid={`faces-${name}`}>{t('compare.faces', { n: boxes.length })}</p>}
    </div>
  );
}

export function Compare(_: { me: Me }) {
  const [a, setA] = useState<Picked | null>(null);
  const [b, setB] = useState<Picked | null>(null);
  const [ba, setBa] = useState<Box[] | null>(null);
  const [bb, setBb] = useState<Box[] | null>(null);
  const [thr, setThr] = useState(0.5);
  const [defThr, setDefThr] = useState<number | null>(null);
  const [inEffect, setInEffect] = useState<number | null>(null);
  const [res, setRes] = useState<any>(null);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    modelThresholds().then((m) => {
      setDefThr(m.manifest); setInEffect(m.compare);
      const v = m.compare ?? m.manifest;
      if (v !== null) setThr(v);
    }).catch((e) => setErr(errMsg(e)));
  }, []);

  const pickA = (p: Picked | null) => { setA(p); setRes(null); setBa(null); if (p) detect(p.file).then(setBa).catch((e) => setErr(errMsg(e))); };
  const pickB = (p: Picked | null) => { setB(p); setRes(null); setBb(null); if (p) detect(p.file).then(setBb).catch((e) => setErr(errMsg(e))); };

  const run = async () => {
    if (!a || !b) { setErr(t('compare.need_two')); return; }
    setBusy(true); setErr(''); setRes(null);
    const fd = new FormData();
    fd.append('a', a.file);
    fd.append('b', b.file);
    try {
      const r = await call<any>('POST', 'compare', fd);
      setRes(r);
    } catch (e) { setErr(errMsg(e)); } finally { setBusy(false); }
  };

  const score: number | null = res && typeof res.score === 'number' ? res.score : null;
  const same = score !== null && score >= thr;

  return (
    <section>
      <div class="page-head"><h2>{t('nav.compare')}</h2></div>
      <div class="pair">
        <Side label={t('compare.a')} name="a" pic={a} setPic={pickA} boxes={ba} />
        <Side label={t('compare.b')} name="b" pic={b} setPic={pickB} boxes={bb} />
      </div>
      <div class="row"><button type="button" class="primary" data-testid="compare-run" disabled={busy} onClick={run}>{busy ? t('common.wait') : t('compare.run')}</button></div>
      <Msg kind="error" text={err} />
      <div class="threshold">
        <label>{t('compare.threshold')}: <b data-testid="threshold-value">{thr.toFixed(2)}</b>
          {defThr !== null && <span class="muted" data-testid="threshold-default" data-v={defThr}> · {t('compare.manifest', { v: defThr.toFixed(2) })}</span>}
          {inEffect !== null && defThr !== null && Math.abs(inEffect - defThr) > 1e-6 && <span class="muted"> · {t('compare.in_effect', { v: inEffect.toFixed(2) })}</span>}
          {defThr !== null && Math.abs(thr - defThr) > 1e-6 && <button type="button" class="link" onClick={() => setThr(defThr)}>{t('compare.use_default')}</button>}</label>
        <input type="range" min="0" max="1" step="0.01" value={thr} data-testid="threshold" onInput={(e) => setThr(Number((e.target as HTMLInputElement).value))} />
      </div>
      {score !== null && (
        <div class={`verdict ${same ? 'good' : 'bad'}`} data-testid="verdict" data-same={same ? '1' : '0'}>
          <span>{t('compare.score')}: <b data-testid="score">{score.toFixed(3)}</b>
            {typeof res.cosine === 'number' && <small class="muted"> ({t('records.cosine')} {res.cosine.toFixed(3)})</small>}</span>
          <strong>{same ? t('compare.same') : t('compare.different')}</strong>
        </div>
      )}
    </section>
  );
}
