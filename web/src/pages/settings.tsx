// Settings (admin): thresholds, retention, the service URLs devices use, and the camera parameters devices
// fetch. "Load" reads GET /settings; "Save" PUTs the changed form (merged by the service). A failed save
// says so and keeps everything typed.
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { get, put } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Field, Loading, Toggle } from '../ui';

type S = Record<string, any>;

export function Settings(_: { me: Me }) {
  const [s, setS] = useState<S | null>(null);
  const [err, setErr] = useState('');
  const [ok, setOk] = useState('');
  const [busy, setBusy] = useState(false);

  const load = async () => {
    setErr(''); setOk('');
    try { const r = await get<S>('settings'); setS({ ...r, camera: { ...(r.camera ?? {}) } }); setOk(t('settings.loaded')); } catch (e) { setErr(errMsg(e)); }
  };
  useEffect(() => { load(); }, []);

  const save = async (e: Event) => {
    e.preventDefault();
    if (!s) return;
    setBusy(true); setErr(''); setOk('');
    try { const r = await put<S>('settings', s); setS({ ...r, camera: { ...(r.camera ?? {}) } }); setOk(t('settings.saved')); }
    catch (ex) { setErr(`${t('settings.save_failed')}: ${errMsg(ex)}`); }
    finally { setBusy(false); }
  };

  if (!s) return <section><h2>{t('nav.settings')}</h2><Msg kind="error" text={err} />{!err && <Loading />}{err && <button type="button" onClick={load}>{t('settings.load')}</button>}</section>;

  const num = (k: string, step: number | 'any' = 'any') => (
    <input type="number" name={k} step={step} value={s[k] ?? ''} onInput={(e) => { const v = (e.target as HTMLInputElement).value; setS({ ...s, [k]: v === '' ? undefined : Number(v) }); }} />);
  const str = (k: string) => (
    <input type="text" inputMode="url" name={k} value={s[k] ?? ''} onInput={(e) => setS({ ...s, [k]: (e.target as HTMLInputElement).value })} />);
  const cam = s.camera ?? {};
  const setCam = (k: string, v: unknown) => setS({ ...s, camera: { ...cam, [k]: v } });
  const sel = (k: string, opts: (string | number)[], numeric = false) => (
    <select name={`camera.${k}`} value={String(cam[k] ?? '')} onChange={(e) => { const v = (e.target as HTMLSelectElement).value; setCam(k, numeric ? Number(v) : v); }}>
      {cam[k] === undefined && <option value="">—</option>}
      {opts.map((o) => <option key={o} value={String(o)}>{t(`cam.${k}.${o}`)}</option>)}
    </select>);
  const camNum = (k: string, min: number, max: number) => (
    <input type="number" name={`camera.${k}`} min={min} max={max} value={cam[k] ?? ''} onInput={(e) => { const v = (e.target as HTMLInputElement).value; setCam(k, v === '' ? undefined : Number(v)); }} />);

  return (
    <section>
      <div class="page-head"><h2>{t('nav.settings')}</h2><button type="button" data-testid="settings-load" onClick={load}>{t('settings.load')}</button></div>
      <form onSubmit={save} data-testid="settings-form" class="settings">
        <fieldset><legend>{t('settings.thresholds')}</legend>
          <div class="grid">
            <Field label={t('settings.compare_threshold')}>{num('compare_threshold')}</Field>
            <Field label={t('settings.identify_threshold')}>{num('identify_threshold')}</Field>
            <Field label={t('settings.liveness_threshold')}>{num('liveness_threshold')}</Field>
            <Toggle name="liveness_required" label={t('settings.liveness_required')} checked={!!s.liveness_required} onChange={(v) => setS({ ...s, liveness_required: v })} />
          </div>
        </fieldset>
        <fieldset><legend>{t('settings.retention')}</legend>
          <div class="grid">
            <Field label={t('settings.retention_days')}>{num('retention_days', 1)}</Field>
            <Field label={t('settings.lockout_minutes')}>{num('lockout_minutes', 1)}</Field>
          </div>
        </fieldset>
        <fieldset><legend>{t('settings.urls')}</legend>
          <Field label={t('settings.feature_url')}>{str('feature_url')}</Field>
          <Field label={t('settings.compare_url')}>{str('compare_url')}</Field>
          <Field label={t('settings.notify_url')}>{str('notify_url')}</Field>
        </fieldset>
        <fieldset><legend>{t('settings.camera')}</legend>
          <div class="grid">
            <Field label={t('cam.white_balance')}>{sel('white_balance', ['auto', 'daylight', 'cloudy', 'tungsten', 'fluorescent', 'manual'])}</Field>
            {cam.white_balance === 'manual' && <Field label={t('cam.white_balance_kelvin')}>{camNum('white_balance_kelvin', 2000, 10000)}</Field>}
            <Toggle name="camera.mirror" label={t('cam.mirror')} checked={!!cam.mirror} onChange={(v) => setCam('mirror', v)} />
            <Toggle name="camera.flip" label={t('cam.flip')} checked={!!cam.flip} onChange={(v) => setCam('flip', v)} />
            <Field label={t('cam.exposure')}>{sel('exposure', ['auto', 'manual'])}</Field>
            <Field label={t('cam.shutter')}>{sel('shutter', ['auto', 'fixed', 'priority'])}</Field>
            {cam.exposure === 'manual' && <Field label={t('cam.shutter_us')}>{camNum('shutter_us', 10, 1000000)}</Field>}
            <Field label={t('cam.power_line_hz')}>{sel('power_line_hz', [50, 60], true)}</Field>
            <Field label={t('cam.led')}>{sel('led', ['on', 'blink', 'off'])}</Field>
            <Field label={t('cam.usb_bandwidth')}>{camNum('usb_bandwidth', 1, 100)}</Field>
          </div>
        </fieldset>
        <Msg kind="error" text={err} /><Msg kind="ok" text={ok} />
        <div class="row"><button type="submit" class="primary" data-testid="settings-save" disabled={busy}>{busy ? t('common.wait') : t('common.save')}</button></div>
      </form>
    </section>
  );
}
