/**
 * The dashboard's files (web/, docs/dashboard.md), served by the API: `/` is the page and
 * `/ui/<file>` its scripts, style and icon. The page itself only calls the public HTTP API.
 *
 * - Only the files in `ASSETS` are served: a request names a key of that table, never a path,
 *   so nothing a client sends reaches the file system (`/ui/..%2fpackage.json` is a 404).
 * - The page links its assets and calls the API with relative URLs, so it works under the API's
 *   `prefix` too. `/tide` (no trailing slash) is redirected to `/tide/`, otherwise the browser
 *   would resolve `ui/app.js` against `/` instead of `/tide/`.
 * - Files are read on every request (they are small and `no-cache` anyway), so editing web/
 *   shows on the next reload.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { TideError } from '../core/errors.js'
import type { Reply } from './http.js'

/**
 * web/ at the package root. This module runs as src/api/web.ts (from source, with tsx) or as
 * dist/api/web.js (the built package, `bin/tide.js`); both are two levels below the root, and
 * package.json `files` ships web/ beside dist/.
 */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url))

/** Every asset the page may load, with its content type. Nothing else under `/ui/` exists. */
export const ASSETS: Readonly<Record<string, string>> = Object.freeze({
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml; charset=utf-8',
})

/**
 * Everything comes from Tide itself: no inline script or style, no other origin, no framing.
 * The page builds its DOM (and its SVG charts) with DOM calls, which this policy allows.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const HEADERS: Readonly<Record<string, string>> = Object.freeze({
  // Revalidate every time: a new Tide version must never run with an old script.
  'cache-control': 'no-cache',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
})

async function serve(file: string, contentType: string): Promise<Reply> {
  let text: string
  try {
    text = await readFile(join(WEB_DIR, file), 'utf8')
  } catch (err) {
    throw new TideError(
      'E_NOT_FOUND',
      `the dashboard file ${file} is missing from ${WEB_DIR} (a package built without web/?)`,
      { status: 404, cause: err },
    )
  }
  return { text, contentType, headers: { ...HEADERS } }
}

/** `GET /` (and `GET <prefix>`): the page, or a redirect that adds the trailing slash. */
export function dashboardPage(pathname: string): Promise<Reply> | Reply {
  if (!pathname.endsWith('/')) {
    const last = pathname.slice(pathname.lastIndexOf('/') + 1)
    return {
      status: 302,
      text: '',
      headers: { location: `./${encodeURIComponent(decodeSafe(last))}/` },
    }
  }
  return serve('index.html', 'text/html; charset=utf-8')
}

function decodeSafe(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/** `GET /ui/:file`: one of `ASSETS`, or 404. */
export function dashboardAsset(file: string): Promise<Reply> {
  const contentType = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined
  if (contentType === undefined) {
    return Promise.reject(
      new TideError('E_NOT_FOUND', `there is no dashboard file ${JSON.stringify(file)}`, { status: 404 }),
    )
  }
  return serve(file, contentType)
}
