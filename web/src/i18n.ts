// Two languages, Chinese the default. Every visible string goes through t(key); the dictionaries live in
// locales/. The choice is kept in localStorage; the app re-renders in place on a switch (forms keep values).
import zh from './locales/zh-CN';
import en from './locales/en';

export type Lang = 'zh-CN' | 'en';
const dicts: Record<Lang, Record<string, string>> = { 'zh-CN': zh, en };
let lang: Lang = (localStorage.getItem('fk_lang') as Lang) in dicts ? (localStorage.getItem('fk_lang') as Lang) : 'zh-CN';
document.documentElement.lang = lang;

export const getLang = () => lang;
export function setLang(l: Lang) {
  lang = l;
  localStorage.setItem('fk_lang', l);
  document.documentElement.lang = l;
}

export function t(key: string, vars?: Record<string, unknown>): string {
  let s = dicts[lang][key] ?? dicts.en[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

export function fmtTime(v: unknown): string {
  if (v === undefined || v === null || v === '') return '';
  const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(String(v));
  if (isNaN(d.getTime())) return String(v);
  return d.toLocaleString(lang === 'en' ? 'en-GB' : 'zh-CN', { hour12: false });
}
