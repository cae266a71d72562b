/**
 * The Postgres URL as the operator gave it (`PROXYGPT_DATABASE_URL=postgres://…`), made safe to
 * show: the password (in the user part or a `password=` parameter) becomes `***`, so a start-up
 * error can name the server it could not reach without printing a secret.
 */

const SECRET_PARAMS = new Set(['password', 'sslpassword']);

/** `postgres://user:secret@host:5432/db` → `postgres://user:***@host:5432/db`. */
export function redactDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL we can take apart: hide everything between the scheme's `//` and the last `@`.
    return url.replace(/\/\/.*@/, '//***@').replace(/(password=)[^&]*/gi, '$1***');
  }
  const user = parsed.username;
  const auth = parsed.password !== '' ? `${user}:***@` : user !== '' ? `${user}@` : '';
  const query = [...parsed.searchParams.entries()]
    .map(([name, value]) => `${encodeURIComponent(name)}=${SECRET_PARAMS.has(name.toLowerCase()) ? '***' : encodeURIComponent(value)}`)
    .join('&');
  return `${parsed.protocol}//${auth}${parsed.host}${parsed.pathname}${query === '' ? '' : `?${query}`}`;
}

/**
 * The URL without its `options` parameter, and that parameter's value: pg lets the connection
 * string's `options` override the pool's, so the store takes it out and joins it with its own
 * (`-c search_path=…`).
 */
export function splitStartupOptions(url: string): { url: string; options: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, options: undefined };
  }
  const options = parsed.searchParams.get('options') ?? undefined;
  if (options === undefined) return { url, options };
  parsed.searchParams.delete('options');
  return { url: parsed.toString(), options };
}
