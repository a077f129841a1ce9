// Who is logged in and what their role may open. The server enforces every permission itself; this table
// only decides which pages the navigation offers (a hidden button is never the protection).
export interface Me { id?: number | string; username: string; role: string; roles?: string[]; mustChange?: boolean }

export const PAGES: { id: string; roles: string[] }[] = [
  { id: 'dashboard', roles: ['admin', 'operator', 'auditor'] },
  { id: 'persons', roles: ['admin', 'operator'] },
  { id: 'compare', roles: ['admin', 'operator'] },
  { id: 'search', roles: ['admin', 'operator'] },
  { id: 'records', roles: ['admin', 'operator', 'auditor'] },
  { id: 'users', roles: ['admin'] },
  { id: 'apikeys', roles: ['admin'] },
  { id: 'audit', roles: ['admin', 'auditor'] },
  { id: 'settings', roles: ['admin'] },
  { id: 'help', roles: ['admin', 'operator', 'auditor'] },
];

export function rolesOf(me: Me | null): string[] {
  if (!me) return [];
  return me.roles && me.roles.length ? me.roles : [me.role];
}

export function may(me: Me | null, page: string): boolean {
  const p = PAGES.find((x) => x.id === page);
  if (!p) return false;
  const r = rolesOf(me);
  return p.roles.some((x) => r.includes(x));
}

export function normMe(r: any): Me {
  const u = r?.user ?? r;
  const roles: string[] = Array.isArray(u?.roles) ? u.roles : u?.role ? [u.role] : [];
  return { id: u?.id, username: u?.username ?? u?.name ?? '', role: u?.role ?? roles[0] ?? '', roles, mustChange: !!(r?.must_change_password ?? u?.must_change_password) };
}
