/**
 * A network failure in the words a person reads ("connection refused"), from Node's and undici's
 * error codes, on the error itself or on its `cause` (fetch wraps them in a TypeError). Shared by
 * the clients that talk HTTP: the scrape and prometheus sources and the DigitalOcean API client.
 */
export function networkFailure(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code
  const causeCode = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code
  switch (typeof code === 'string' ? code : causeCode) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset'
    case 'ENOTFOUND':
      return 'host not found'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable'
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timed out'
  }
  return undefined
}
