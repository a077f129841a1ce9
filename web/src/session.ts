// Who is logged in and what their role may open. The server enforces every permission itself; this only
// decides which pages and buttons the console offers (a hidden button is never the protection). The
// service's own list (GET /auth/me `permissions`: "METHOD /api/v1/pattern" for every call the role may
// make) decides when it is known; the role table below is the fallback until it is.
export interface Me { id?: number | string; username: string; role: string; roles?: string[]; mustChange?: boolean; perms?: string[] }

export const PAGES: { id: string; roles: string[]; needs: string }[] = [
  { id: 'dashboard', roles: ['admin', 'operator', 'auditor'], needs: 'GET /api/v1/stats' },
  { id: 'persons', roles: ['admin', 'operator'], needs: 'GET /api/v1/persons' },
  { id: 'compare', roles: ['admin', 'operator'], needs: 'POST /api/v1/compare' },
  { id: 'search', roles: ['admin', 'operator'], needs: 'POST /api/v1/identify' },
  { id: 'records', roles: ['admin', 'operator', 'auditor'], needs: 'GET /api/v1/records' },
  { id: 'users', roles: ['admin'], needs: 'GET /api/v1/users' },
  { id: 'apikeys', roles: ['admin'], needs: 'GET /api/v1/apikeys' },
  { id: 'audit', roles: ['admin', 'auditor'], needs: 'GET /api/v1/audit' },
  { id: 'settings', roles: ['admin'], needs: 'PUT /api/v1/settings' },
  { id: 'help', roles: ['admin', 'operator', 'auditor'], needs: 'POST /api/v1/support' },
];

// May this account make the call ("METHOD /api/v1/pattern", as the service lists it)? Unknown -> fallback.
export function can(me: Me | null, call: string, fallback: boolean): boolean {
  if (!me?.perms) return fallback;
  return me.perms.includes(call);
}

export function rolesOf(me: Me | null): string[] {
  if (!me) return [];
  return me.roles && me.roles.length ? me.roles : [me.role];
}

export function may(me: Me | null, page: string): boolean {
  const p = PAGES.find((x) => x.id === page);
  if (!p) return false;
  const r = rolesOf(me);
  // A device account (API key role) uses the service, not the console, even where it may call the API.
  if (r.length === 1 && r[0] === 'device') return page === 'help';
  return can(me, p.needs, p.roles.some((x) => r.includes(x)));
}

export function normMe(r: any): Me {
  const u = r?.user ?? r;
  const roles: string[] = Array.isArray(u?.roles) ? u.roles : u?.role ? [u.role] : [];
  const perms: string[] | undefined = Array.isArray(r?.permissions) ? r.permissions.map(String) : undefined;
  return { id: u?.id, username: u?.username ?? u?.name ?? '', role: u?.role ?? roles[0] ?? '', roles, mustChange: !!(r?.must_change_password ?? u?.must_change_password), perms };
}
