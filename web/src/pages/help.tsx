// Help: the in-app support channel. Everyone writes a message and leaves a contact and sees their own
// messages with answers; an admin sees all messages and answers them.
import { useEffect, useState } from 'preact/hooks';
import { t, fmtTime } from '../i18n';
import { get, post } from '../api';
import { Me, rolesOf, can } from '../session';
import { Msg, errMsg, Field, Loading } from '../ui';

export function Help({ me }: { me: Me }) {
  const admin = can(me, 'POST /api/v1/support/{id}/reply', rolesOf(me).includes('admin'));
  const [list, setList] = useState<any[] | null>(null);
  const [message, setMessage] = useState('');
  const [contact, setContact] = useState('');
  const [err, setErr] = useState('');
  const [ok, setOk] = useState('');
  const [busy, setBusy] = useState(false);

  const load = () => get<any>('support', { limit: 100 }).then((r) => setList(r.items ?? [])).catch((e) => setErr(errMsg(e)));
  useEffect(() => { load(); }, []);

  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true); setErr(''); setOk('');
    try { await post('support', { message, contact }); setMessage(''); setOk(t('help.sent')); load(); }
    catch (ex) { setErr(`${t('help.send_failed')}: ${errMsg(ex)}`); }
    finally { setBusy(false); }
  };

  return (
    <section>
      <div class="page-head"><h2>{t('nav.help')}</h2></div>
      <p class="muted">{admin ? t('help.admin_intro') : t('help.intro')}</p>
      <form onSubmit={send} data-testid="help-form" class="card">
        <Field label={t('help.message')}><textarea name="message" required maxLength={4000} rows={4} value={message} onInput={(e) => setMessage((e.target as HTMLTextAreaElement).value)} /></Field>
        <Field label={t('help.contact')}><input name="contact" required maxLength={200} value={contact} placeholder={t('help.contact_ph')} onInput={(e) => setContact((e.target as HTMLInputElement).value)} /></Field>
        <Msg kind="error" text={err} /><Msg kind="ok" text={ok} />
        <button type="submit" class="primary" disabled={busy}>{busy ? t('common.wait') : t('help.send')}</button>
      </form>
      <h3>{admin ? t('help.all') : t('help.mine')}</h3>
      {!list && !err && <Loading />}
      {list && list.length === 0 && <p class="muted">{t('common.none')}</p>}
      {list && <ul class="support">{list.map((m) => <SupportItem key={m.id} m={m} admin={admin} onReplied={load} />)}</ul>}
    </section>
  );
}

function SupportItem({ m, admin, onReplied }: { m: any; admin: boolean; onReplied: () => void }) {
  const [reply, setReply] = useState('');
  const [err, setErr] = useState('');
  const send = async (e: Event) => {
    e.preventDefault(); setErr('');
    try { await post(`support/${m.id}/reply`, { reply }); setReply(''); onReplied(); } catch (ex) { setErr(errMsg(ex)); }
  };
  return (
    <li class="card" data-support={m.id}>
      <div class="meta">{fmtTime(m.time)} · {m.author} · {t('help.contact')}: {m.contact}</div>
      <p class="pre">{m.message}</p>
      {m.reply && <div class="reply"><div class="meta">{t('help.reply_by', { name: m.replied_by ?? '', time: fmtTime(m.replied_at) })}</div><p class="pre">{m.reply}</p></div>}
      {!m.reply && <p class="muted" data-waiting="1">{t('help.waiting')}</p>}
      {admin && (
        <form onSubmit={send} class="row">
          <input required value={reply} placeholder={t('help.reply_ph')} onInput={(e) => setReply((e.target as HTMLInputElement).value)} />
          <button type="submit">{m.reply ? t('help.reply_again') : t('help.reply')}</button>
        </form>
      )}
      <Msg kind="error" text={err} />
    </li>
  );
}
