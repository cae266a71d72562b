/**
 * Passwords in server URLs (PROXYGPT_DATABASE_URL, PROXYGPT_REDIS_URL): the URL stays whole for
 * the driver, but every message shows it through redactUrl, and the password itself goes to the
 * redactor, which keeps it out of responses and log lines.
 */

/** `url` with its password (if any) replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.href;
  } catch {
    // Not parseable, so where a password would be is unknown: show only the scheme.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0];
    return scheme === undefined ? '(not a URL)' : `${scheme}//…`;
  }
}

/**
 * The password of a server URL as written and decoded (both can turn up in a driver's message),
 * for the redactor; none when the URL has none or does not parse.
 */
export function urlPasswords(url: string): string[] {
  let password: string;
  try {
    password = new URL(url).password;
  } catch {
    return [];
  }
  if (password === '') return [];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // a malformed escape: only the raw form can appear
  }
  return [...new Set([password, decoded])];
}
