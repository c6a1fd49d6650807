// A plugin that checks its options, as docs/plugins.md asks.
export function createTarget(options) {
  if (typeof options.region !== 'string')
    throw new Error(`options.region must be a string, got ${JSON.stringify(options.region)}`)
  return {
    kind: 'x',
    async status() {
      return { desired: 0, instances: [], ready: 0 }
    },
    async scale() {},
  }
}
