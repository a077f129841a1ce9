// The console's shell: hash router (#/page), top bar with language switch and logout, a side navigation
// that collapses into a menu at phone width, and a login dialog that opens over the current page when the
// session has expired (the page stays mounted: nothing typed is lost).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { t, getLang, setLang, Lang } from './i18n';
import { get, post, setCsrf, setUnauthorizedHandler } from './api';
import { Me, PAGES, may, normMe } from './session';
import { Modal } from './ui';
import { Login, ChangePassword } from './pages/login';
import { Dashboard } from './pages/dashboard';
import { Persons } from './pages/persons';
import { Compare } from './pages/compare';
import { Search } from './pages/search';
import { Records } from './pages/records';
import { Users } from './pages/users';
import { ApiKeys } from './pages/apikeys';
import { Audit } from './pages/audit';
import { Settings } from './pages/settings';
import { Help } from './pages/help';

const VIEWS: Record<string, ((p: { me: Me }) => any) | undefined> = {
  dashboard: Dashboard, persons: Persons, compare: Compare, search: Search, records: Records,
  users: Users, apikeys: ApiKeys, audit: Audit, settings: Settings, help: Help,
};

const route = () => (location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || '');

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);
  const [page, setPage] = useState(route());
  const [lang, setL] = useState<Lang>(getLang());
  const [expired, setExpired] = useState(false);
  const [menu, setMenu] = useState(false);

  useEffect(() => {
    const h = () => { setPage(route()); setMenu(false); };
    window.addEventListener('hashchange', h);
    setUnauthorizedHandler(() => setExpired(true));
    get<any>('auth/me')
      .then((r) => { if (r.csrf_token) setCsrf(r.csrf_token); setMe(normMe(r)); })
      .catch(() => setMe(null))
      .finally(() => setChecked(true));
    return () => window.removeEventListener('hashchange', h);
  }, []);

  const switchLang = (l: Lang) => { setLang(l); setL(l); };
  // The login answer names the user and role; GET /auth/me adds the service's permission list.
  const loggedIn = (u: Me) => {
    setMe(u);
    get<any>('auth/me').then((r) => { if (r.csrf_token) setCsrf(r.csrf_token); setMe(normMe(r)); }).catch(() => { /* the role table stands in */ });
  };
  const logout = async () => {
    try { await post('auth/logout'); } catch { /* logged out locally anyway */ }
    setCsrf('');
    setMe(null);
    location.hash = '#/login';
  };

  if (!checked) return null;
  const langSel = (
    <select class="lang" aria-label={t('nav.language')} data-testid="lang" value={lang} onChange={(e) => switchLang((e.target as HTMLSelectElement).value as Lang)}>
      <option value="zh-CN">中文</option>
      <option value="en">English</option>
    </select>
  );

  if (!me) {
    return (
      <div class="login-wrap" key={lang}>
        <div class="login-lang">{langSel}</div>
        <Login onLogin={(u) => { loggedIn(u); if (!route() || route() === 'login') location.hash = '#/dashboard'; }} />
      </div>
    );
  }

  if (me.mustChange) {
    return <div class="login-wrap" key={lang}><div class="login-lang">{langSel}</div><ChangePassword onDone={() => loggedIn({ ...me, mustChange: false })} /></div>;
  }

  const visible = PAGES.filter((p) => may(me, p.id));
  let cur = page;
  if (!cur || cur === 'login') cur = visible[0]?.id || 'help';
  const View = VIEWS[cur];

  return (
    <div class="shell">
      <header class="top">
        <button type="button" class="menu-btn" aria-label={t('nav.menu')} onClick={() => setMenu(!menu)}>☰</button>
        <a class="brand" href="#/dashboard">facekit</a>
        <span class="grow" />
        {langSel}
        <span class="who" data-testid="who">{me.username} · {t(`role.${me.role}`)}</span>
        <button type="button" class="link" data-testid="logout" onClick={logout}>{t('nav.logout')}</button>
      </header>
      <nav class={`side ${menu ? 'open' : ''}`}>
        {visible.map((p) => (
          <a key={p.id} href={`#/${p.id}`} class={p.id === cur ? 'active' : ''} data-nav={p.id}>{t(`nav.${p.id}`)}</a>
        ))}
      </nav>
      <main class="content">
        {!View && <p>{t('err.notfound')}</p>}
        {View && !may(me, cur) && <div class="msg msg-error" data-testid="forbidden" role="alert">{t('err.forbidden_page')}</div>}
        {View && may(me, cur) && <View me={me} key={cur} />}
      </main>
      {expired && (
        <Modal title={t('login.expired')}>
          <Login embedded onLogin={(u) => { loggedIn(u); setExpired(false); }} />
        </Modal>
      )}
    </div>
  );
}

render(<App />, document.getElementById('app')!);
