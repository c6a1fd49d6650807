// A plugin whose target has no scale().
export function createTarget() {
  return {
    kind: 'half',
    async status() {
      return { desired: 0, instances: [], ready: 0 }
    },
  }
}
