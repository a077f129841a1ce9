// Small shared pieces: messages, form fields, pager, modal, image input (upload or webcam), a face view
// that draws detected boxes over a photo, and a hook that runs an API call and keeps its error.
import { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { t } from './i18n';
import { ApiError } from './api';

export function Msg({ kind, text }: { kind: 'error' | 'ok' | 'info'; text?: string | null }) {
  if (!text) return null;
  return <div class={`msg msg-${kind}`} role={kind === 'error' ? 'alert' : 'status'} data-msg={kind}>{text}</div>;
}

export function errMsg(e: unknown): string {
  if (e instanceof ApiError) return e.status === 0 ? t('err.network') : e.message;
  return e instanceof Error ? e.message : String(e);
}

export function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return <label class="field"><span>{label}</span>{children}</label>;
}

export function Pager({ page, pages, onPage }: { page: number; pages: number; onPage: (p: number) => void }) {
  return (
    <div class="pager">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>{t('page.prev')}</button>
      <span>{t('page.of', { page, pages: Math.max(pages, 1) })}</span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>{t('page.next')}</button>
    </div>
  );
}

export function Modal({ title, onClose, children }: { title: string; onClose?: () => void; children: ComponentChildren }) {
  return (
    <div class="modal-back" onClick={(e) => { if (e.target === e.currentTarget && onClose) onClose(); }}>
      <div class="modal" role="dialog" aria-label={title}>
        <div class="modal-head"><h3>{title}</h3>{onClose && <button type="button" class="link" onClick={onClose} aria-label={t('common.close')}>✕</button>}</div>
        {children}
      </div>
    </div>
  );
}

// A photo chosen by upload or captured from the webcam. Gives back a File plus an object URL for preview.
export interface Picked { file: File; url: string }

export function ImageInput({ value, onChange, name }: { value: Picked | null; onChange: (p: Picked | null) => void; name: string }) {
  const [cam, setCam] = useState(false);
  const [err, setErr] = useState('');
  const video = useRef<HTMLVideoElement>(null);
  const stream = useRef<MediaStream | null>(null);

  const stop = () => { stream.current?.getTracks().forEach((tr) => tr.stop()); stream.current = null; setCam(false); };
  useEffect(() => stop, []);

  const start = async () => {
    setErr('');
    try {
      if (!navigator.mediaDevices?.getUserMedia) throw new Error(t('cam.unsupported'));
      const s = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
      stream.current = s;
      setCam(true);
      setTimeout(() => { if (video.current) { video.current.srcObject = s; video.current.play().catch(() => {}); } }, 0);
    } catch (e) {
      setErr(`${t('cam.failed')}: ${errMsg(e)}`);
    }
  };
  const shoot = () => {
    const v = video.current;
    if (!v || !v.videoWidth) return;
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    c.getContext('2d')!.drawImage(v, 0, 0);
    c.toBlob((b) => {
      if (!b) return;
      const f = new File([b], `${name}-webcam.jpg`, { type: 'image/jpeg' });
      onChange({ file: f, url: URL.createObjectURL(f) });
      stop();
    }, 'image/jpeg', 0.92);
  };
  const pick = (e: Event) => {
    const inp = e.target as HTMLInputElement;
    const f = inp.files?.[0];
    if (f) onChange({ file: f, url: URL.createObjectURL(f) });
    inp.value = '';
  };

  return (
    <div class="imginput">
      <div class="row">
        <label class="btn"><input type="file" accept="image/*" name={name} data-testid={`file-${name}`} onChange={pick} hidden />{t('img.upload')}</label>
        {!cam && <button type="button" onClick={start}>{t('img.webcam')}</button>}
        {cam && <button type="button" onClick={shoot}>{t('img.capture')}</button>}
        {cam && <button type="button" onClick={stop}>{t('common.cancel')}</button>}
        {value && !cam && <button type="button" class="link" onClick={() => onChange(null)}>{t('img.clear')}</button>}
      </div>
      {cam && <video ref={video} class="webcam" muted playsInline />}
      <Msg kind="error" text={err} />
    </div>
  );
}

export interface Box { x: number; y: number; w: number; h: number; label?: string }

// Photo with face boxes drawn in an SVG that shares the image's pixel coordinates.
export function FaceView({ url, boxes, alt }: { url: string; boxes?: Box[]; alt?: string }) {
  const [size, setSize] = useState<{ w: number; h: number } | null>(null);
  return (
    <div class="faceview">
      <img src={url} alt={alt || ''} onLoad={(e) => { const i = e.currentTarget as HTMLImageElement; setSize({ w: i.naturalWidth, h: i.naturalHeight }); }} />
      {size && boxes && boxes.length > 0 && (
        <svg viewBox={`0 0 ${size.w} ${size.h}`} preserveAspectRatio="none">
          {boxes.map((b, i) => (
            <g key={i}>
              <rect x={b.x} y={b.y} width={b.w} height={b.h} fill="none" stroke="#22c55e" stroke-width={Math.max(2, size.w / 200)} />
              {b.label && <text x={b.x} y={Math.max(b.y - 4, 12)} fill="#22c55e" font-size={Math.max(12, size.w / 30)}>{b.label}</text>}
            </g>
          ))}
        </svg>
      )}
    </div>
  );
}

export function Loading() { return <p class="muted">{t('common.loading')}</p>; }

export function Toggle({ checked, onChange, label, name }: { checked: boolean; onChange: (v: boolean) => void; label: string; name?: string }) {
  return <label class="check"><input type="checkbox" name={name} checked={checked} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />{label}</label>;
}
