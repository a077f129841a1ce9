// API keys (admin): create (the key is shown once), revoke, last used.
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get, post, del } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Field, Loading } from '../ui';
import { ROLES } from './users';

export function ApiKeys(_: { me: Me }) {
  const [list, setList] = useState<any[] | null>(null);
  const [err, setErr] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState('device');
  const [fresh, setFresh] = useState('');

  const load = () => { setErr(''); get<any>('apikeys').then((r) => setList(r.items ?? [])).catch((e) => setErr(errMsg(e))); };
  useEffect(load, []);

  const create = async (e: Event) => {
    e.preventDefault(); setErr(''); setFresh('');
    try { const r = await post<any>('apikeys', { name, role }); setFresh(r.key ?? ''); setName(''); load(); } catch (ex) { setErr(errMsg(ex)); }
  };
  const revoke = async (k: any) => {
    if (!confirm(t('keys.confirm_revoke', { name: k.name }))) return;
    try { await del(`apikeys/${k.id}`); setFresh(''); load(); } catch (e) { setErr(errMsg(e)); }
  };

  return (
    <section>
      <div class="page-head"><h2>{t('nav.apikeys')}</h2></div>
      <form class="row wrap" onSubmit={create}>
        <Field label={t('keys.name')}><input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} /></Field>
        <Field label={t('users.role')}><select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>{ROLES.map((r) => <option key={r} value={r}>{t(`role.${r}`)}</option>)}</select></Field>
        <button type="submit" class="primary">{t('keys.create')}</button>
      </form>
      {fresh && <div class="msg msg-ok" data-testid="new-key">{t('keys.shown_once')}<code>{fresh}</code></div>}
      <Msg kind="error" text={err} />
      {!list && !err && <Loading />}
      {list && (
        <div class="table-wrap"><table>
          <thead><tr><th>{t('keys.name')}</th><th>{t('users.role')}</th><th>{t('keys.prefix')}</th><th class="hide-sm">{t('keys.created')}</th><th>{t('keys.last_used')}</th><th /></tr></thead>
          <tbody>
            {list.length === 0 && <tr><td colSpan={6} class="muted">{t('common.none')}</td></tr>}
            {list.map((k) => (
              <tr key={k.id} data-key={k.name}><td>{k.name}</td><td>{t(`role.${k.role}`)}</td><td><code>{k.prefix ?? ''}</code></td><td class="hide-sm">{fmtTime(k.created_at)}</td>
                <td class="wrap-sm">{k.last_used_at ? fmtTime(k.last_used_at) : t('keys.never')}</td>
                <td class="actions">{k.revoked ? t('keys.revoked') : <button type="button" class="danger" onClick={() => revoke(k)}>{t('keys.revoke')}</button>}</td></tr>
            ))}
          </tbody>
        </table></div>
      )}
    </section>
  );
}
