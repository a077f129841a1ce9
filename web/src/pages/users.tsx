// Users and roles (admin): create, edit, disable/enable, reset password, assign roles.
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get, post, put } from '../api';
import { Me } from '../session';
import { Msg, errMsg, Modal, Field, Loading } from '../ui';

export const ROLES = ['admin', 'operator', 'auditor', 'device'];

export function Users(_: { me: Me }) {
  const [list, setList] = useState<any[] | null>(null);
  const [err, setErr] = useState('');
  const [ok, setOk] = useState('');
  const [edit, setEdit] = useState<any>(null);
  const [otp, setOtp] = useState<{ user: string; pw: string } | null>(null);

  const load = () => { setErr(''); get<any>('users').then((r) => setList(r.items ?? [])).catch((e) => setErr(errMsg(e))); };
  useEffect(load, []);

  const change = async (u: any, body: any) => {
    setErr(''); setOk('');
    try { await put(`users/${u.id}`, body); setOk(t('common.saved')); load(); } catch (e) { setErr(errMsg(e)); }
  };
  const locked = (u: any) => (u.locked_until ?? 0) * 1000 > Date.now();
  const resetPw = async (u: any) => {
    if (!confirm(t('users.reset_confirm', { name: u.username }))) return;
    setErr(''); setOk('');
    try { const r = await post<any>(`users/${u.id}/password`, {}); setOtp({ user: u.username, pw: r.one_time_password }); } catch (e) { setErr(errMsg(e)); }
  };

  return (
    <section>
      <div class="page-head"><h2>{t('nav.users')}</h2><button type="button" class="primary" data-testid="user-new" onClick={() => setEdit({})}>{t('users.new')}</button></div>
      <Msg kind="error" text={err} /><Msg kind="ok" text={ok} />
      {!list && !err && <Loading />}
      {list && (
        <div class="table-wrap"><table data-testid="users-table">
          <thead><tr><th>{t('login.username')}</th><th>{t('users.role')}</th><th>{t('users.status')}</th><th class="hide-sm">{t('users.last_login')}</th><th /></tr></thead>
          <tbody>{list.map((u) => (
            <tr key={u.id} data-user={u.username}>
              <td>{u.username}</td><td>{(u.roles ?? [u.role]).map((r: string) => t(`role.${r}`)).join(', ')}</td>
              <td data-testid="user-status" class="wrap-sm">{u.disabled ? t('users.disabled') : locked(u) ? t('users.locked_until', { time: fmtTime(u.locked_until) }) : t('users.active')}</td>
              <td class="hide-sm">{u.last_login_at ? fmtTime(u.last_login_at) : '—'}</td>
              <td class="actions">
                <button type="button" data-testid="user-edit" onClick={() => setEdit(u)}>{t('common.edit')}</button>
                <button type="button" data-testid="user-toggle" onClick={() => change(u, { disabled: !u.disabled })}>{u.disabled ? t('users.enable') : t('users.disable')}</button>
                {locked(u) && <button type="button" data-testid="user-unlock" onClick={() => change(u, { unlock: true })}>{t('users.unlock')}</button>}
                <button type="button" data-testid="user-reset" onClick={() => resetPw(u)}>{t('users.reset')}</button>
              </td>
            </tr>
          ))}</tbody>
        </table></div>
      )}
      {otp && <div class="msg msg-ok" data-testid="otp">{t('users.otp', { name: otp.user })} <code>{otp.pw}</code></div>}
      {edit && <UserForm user={edit} onClose={() => setEdit(null)} onSaved={(r) => { setEdit(null); setOk(t('common.saved')); if (r?.one_time_password) setOtp({ user: r.username, pw: r.one_time_password }); load(); }} />}
    </section>
  );
}

function UserForm({ user, onClose, onSaved }: { user: any; onClose: () => void; onSaved: (r: any) => void }) {
  const [username, setUsername] = useState(user.username ?? '');
  const [role, setRole] = useState(user.role ?? user.roles?.[0] ?? 'operator');
  const [password, setPassword] = useState('');
  const [err, setErr] = useState('');
  const save = async (e: Event) => {
    e.preventDefault(); setErr('');
    try {
      if (user.id) onSaved(await put(`users/${user.id}`, { role }));
      else onSaved(await post('users', { username, role, password: password || undefined }));
    } catch (ex) { setErr(errMsg(ex)); }
  };
  return (
    <Modal title={user.id ? t('users.edit') : t('users.new')} onClose={onClose}>
      <form onSubmit={save} data-testid="user-form">
        <Field label={t('login.username')}><input name="username" required disabled={!!user.id} value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} /></Field>
        <Field label={t('users.role')}><select name="role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>{ROLES.map((r) => <option key={r} value={r}>{t(`role.${r}`)}</option>)}</select></Field>
        {!user.id && <Field label={t('users.password_opt')}><input name="password" type="password" minLength={8} autocomplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} /></Field>}
        <Msg kind="error" text={err} />
        <div class="row"><button type="submit" class="primary">{t('common.save')}</button><button type="button" onClick={onClose}>{t('common.cancel')}</button></div>
      </form>
    </Modal>
  );
}
