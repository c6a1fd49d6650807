/**
 * Seed 003's AWS_ENV_FILE: a dotenv file (a Docker secret at /run/secrets/aws) holding
 * `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, where lines may start with `export `
 * (the seed's tutorial writes `export K=V`; Docker Scaler read it with godotenv).
 *
 * Accepted per line: blank, `# comment`, `[export ]KEY=value`, with value bare (an inline
 * ` # comment` is cut), 'single-quoted' (literal) or "double-quoted" (`\n`, `\"`, `\\`).
 * Anything else is an error naming the line, so a broken secret is not mistaken for "no keys".
 */
import { readFileSync } from 'node:fs'
import { AwsEnvFileError } from './errors.js'

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$/

export function parseEnvFile(text: string, path = 'env file'): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  lines.forEach((raw, i) => {
    if (/^\s*(#.*)?$/.test(raw)) return
    const m = LINE.exec(raw)
    if (!m) {
      throw new AwsEnvFileError(path, `line ${i + 1} is not KEY=value: ${JSON.stringify(raw.slice(0, 60))}`)
    }
    out[m[1]!] = unquote(m[2]!, path, i + 1)
  })
  return out
}

function unquote(value: string, path: string, line: number): string {
  const q = value[0]
  if (q === "'" || q === '"') {
    const end = value.lastIndexOf(q)
    if (end === 0 || !/^\s*(#.*)?$/.test(value.slice(end + 1))) {
      throw new AwsEnvFileError(path, `line ${line}: unterminated or trailing text after ${q}-quoted value`)
    }
    const inner = value.slice(1, end)
    if (q === "'") return inner
    return inner.replace(/\\([nrt"\\])/g, (_, c: string) =>
      c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c,
    )
  }
  const comment = value.search(/\s#/)
  return (comment >= 0 ? value.slice(0, comment) : value).trim()
}

/** Reads and parses the file; a missing or unreadable file is an E_AWS_ENV_FILE error. */
export function readEnvFile(path: string): Record<string, string> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as { code?: string }).code
    throw new AwsEnvFileError(
      path,
      code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(err)})`,
      err,
    )
  }
  return parseEnvFile(text, path)
}
