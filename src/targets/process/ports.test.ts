import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, test } from 'node:test'
import { freePort, portTaken } from './ports.js'

describe('ports', () => {
  test('freePort gives a port nothing holds, outside the ones to avoid', async () => {
    const first = await freePort('127.0.0.1')
    assert.ok(first > 0 && first < 65536)
    assert.equal(await portTaken('127.0.0.1', first), false)
    const second = await freePort('127.0.0.1', new Set([first]))
    assert.notEqual(second, first)
  })

  test('portTaken sees a listener, and not after it closed', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      assert.equal(await portTaken('127.0.0.1', port), true)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    assert.equal(await portTaken('127.0.0.1', port), false)
  })
})
