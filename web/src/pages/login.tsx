// Login: username, password and the service's one-time captcha (PNG, refreshable). Failure and lockout
// messages are the service's own words ("登录失败，请重新登录！"); the form keeps username and password after
// a failure, only the captcha is renewed (one attempt consumes it on the server). An account on a one-time
// password must set a new one first (POST /auth/password).
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { get, post, setCsrf } from '../api';
import { Me, normMe } from '../session';
import { Msg, errMsg, Field } from '../ui';

export function Login({ onLogin, embedded }: { onLogin: (me: Me) => void; embedded?: boolean }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [answer, setAnswer] = useState('');
  const [cap, setCap] = useState<{ id: string; image: string } | null>(null);
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const [change, setChange] = useState<Me | null>(null);

  const refresh = async () => {
    setAnswer('');
    try {
      const c = await get<any>('captcha');
      const img: string = c.image ?? '';
      setCap({ id: String(c.captcha_id), image: img.startsWith('data:') ? img : `data:image/png;base64,${img}` });
    } catch (e) {
      setCap(null);
      setErr(errMsg(e));
    }
  };
  useEffect(() => { refresh(); }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      const r = await post<any>('auth/login', { username, password, captcha_id: cap?.id ?? '', captcha: answer });
      setCsrf(r.csrf_token ?? '');
      const me = normMe(r);
      if (me.mustChange) setChange(me);
      else onLogin(me);
    } catch (ex) {
      setErr(errMsg(ex));
      refresh();
    } finally {
      setBusy(false);
    }
  };

  if (change) return <ChangePassword oldPassword={password} onDone={() => onLogin({ ...change, mustChange: false })} />;

  return (
    <form class={embedded ? 'login embedded' : 'login card'} onSubmit={submit} data-testid="login-form">
      {!embedded && <h1>{t('login.title')}</h1>}
      <Field label={t('login.username')}>
        <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} /></Field>
      <Field label={t('login.password')}>
        <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} /></Field>
      <Field label={t('login.captcha')}>
        <div class="captcha-row">
          <input name="captcha" autocomplete="off" required value={answer} onInput={(e) => setAnswer((e.target as HTMLInputElement).value)} />
          {cap && <img class="captcha" data-testid="captcha-img" src={cap.image} alt={t('login.captcha')} data-captcha-id={cap.id} />}
          <button type="button" class="link" data-testid="captcha-refresh" onClick={refresh}>{t('login.refresh')}</button>
        </div>
      </Field>
      <Msg kind="error" text={err} />
      <button type="submit" class="primary" disabled={busy}>{busy ? t('common.wait') : t('login.submit')}</button>
    </form>
  );
}

export function ChangePassword({ oldPassword, onDone }: { oldPassword?: string; onDone: () => void }) {
  const [oldP, setOldP] = useState(oldPassword ?? '');
  const [p1, setP1] = useState('');
  const [p2, setP2] = useState('');
  const [err, setErr] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    if (p1 !== p2) { setErr(t('pw.mismatch')); return; }
    setErr('');
    try { await post('auth/password', { old_password: oldP, new_password: p1 }); onDone(); } catch (ex) { setErr(errMsg(ex)); }
  };
  return (
    <form class="login card" onSubmit={submit} data-testid="password-form">
      <h1>{t('pw.title')}</h1>
      <p class="muted">{t('pw.explain')}</p>
      {!oldPassword && <Field label={t('pw.old')}><input type="password" required value={oldP} onInput={(e) => setOldP((e.target as HTMLInputElement).value)} /></Field>}
      <Field label={t('pw.new')}><input name="new_password" type="password" minLength={8} required autocomplete="new-password" value={p1} onInput={(e) => setP1((e.target as HTMLInputElement).value)} /></Field>
      <Field label={t('pw.repeat')}><input name="new_password2" type="password" minLength={8} required autocomplete="new-password" value={p2} onInput={(e) => setP2((e.target as HTMLInputElement).value)} /></Field>
      <Msg kind="error" text={err} />
      <button type="submit" class="primary">{t('common.save')}</button>
    </form>
  );
}
