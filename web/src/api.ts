// The console's only way to the service: documented API v1 under /api/v1 (docs/openapi.yaml).
// Session cookie (HttpOnly, set by the service) travels by itself; the CSRF token from the login answer is
// sent as a header on every call. Errors become ApiError with the service's own message, so pages can show
// it and keep whatever the user typed (a failed call never clears a form).
import { t, getLang } from './i18n';

export const API = '/api/v1';
const CSRF_KEY = 'fk_csrf';
let csrf = sessionStorage.getItem(CSRF_KEY) || '';

export function setCsrf(token: string) {
  csrf = token || '';
  if (csrf) sessionStorage.setItem(CSRF_KEY, csrf);
  else sessionStorage.removeItem(CSRF_KEY);
}

export class ApiError extends Error {
  status: number;
  body: any;
  constructor(status: number, message: string, body?: any) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// Called on a 401 from anything but the login calls: the app opens a login dialog over the current page
// (the page stays mounted, so nothing typed is lost).
let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(fn: () => void) { onUnauthorized = fn; }

function headers(extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json', ...(extra || {}) };
  if (csrf) h['X-CSRF-Token'] = csrf;
  return h;
}

export function errorText(body: any, status: number): string {
  // The service answers {"error":{"code","message","message_zh"}}; Chinese text where it has one.
  if (body && typeof body === 'object' && body.error && typeof body.error === 'object') {
    const e = body.error;
    if (getLang() === 'zh-CN') {
      if (e.message_zh) return String(e.message_zh);
      // No Chinese text from the service: a Chinese sentence for the error code, the service's words after it.
      const k = `code.${e.code}`;
      const w = t(k);
      if (w !== k) return e.message ? `${w}（${e.message}）` : w;
    }
    if (e.message) return String(e.message);
    if (e.code) return String(e.code);
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return t('err.http', { status });
}

export const errorCode = (e: unknown): string => (e instanceof ApiError && e.body?.error?.code) || '';

export async function raw(method: string, path: string, body?: unknown, quiet401 = false): Promise<Response> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: headers() };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
  }
  let res: Response;
  try {
    res = await fetch(path.startsWith('/') ? path : `${API}/${path}`, init);
  } catch {
    throw new ApiError(0, t('err.network'));
  }
  if (!res.ok) {
    let b: any = null;
    const ct = res.headers.get('content-type') || '';
    try { b = ct.includes('json') ? await res.json() : await res.text(); } catch { /* empty body */ }
    if (res.status === 401 && !quiet401 && !/^(auth\/|captcha)/.test(path) && onUnauthorized) onUnauthorized();
    const msg = res.status === 403 && b?.error?.code === 'forbidden' ? t('err.forbidden') : errorText(b, res.status);
    throw new ApiError(res.status, msg, b);
  }
  return res;
}

export async function call<T = any>(method: string, path: string, body?: unknown, quiet401 = false): Promise<T> {
  const res = await raw(method, path, body, quiet401);
  if (res.status === 204) return null as T;
  const ct = res.headers.get('content-type') || '';
  if (ct.includes('json')) return (await res.json()) as T;
  return (await res.text()) as unknown as T;
}

export const get = <T = any>(p: string, q?: Record<string, unknown>) => call<T>('GET', p + qs(q));
export const post = <T = any>(p: string, b?: unknown) => call<T>('POST', p, b ?? {});
export const put = <T = any>(p: string, b?: unknown) => call<T>('PUT', p, b ?? {});
export const patch = <T = any>(p: string, b?: unknown) => call<T>('PATCH', p, b ?? {});
export const del = <T = any>(p: string) => call<T>('DELETE', p);

export function qs(q?: Record<string, unknown>): string {
  if (!q) return '';
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// Authenticated download (CSV exports): fetch with the session, hand the bytes to the browser.
export async function download(path: string, filename: string) {
  const res = await raw('GET', path);
  const cd = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') || '');
  if (cd) filename = cd[1];
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

// Image URL for <img src> under the session cookie (same origin).
export const imgUrl = (p: string) => (p.startsWith('/') || p.startsWith('data:') ? p : `${API}/${p}`);
