import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseEnvFile } from './envfile.js'

describe('AWS env file (seed 003 AWS_ENV_FILE)', () => {
  test('reads the seed tutorial’s `export K=V` lines, comments and blank lines', () => {
    const text = [
      '',
      '# a Docker secret',
      'export AWS_ACCESS_KEY_ID=AKIA123',
      'export AWS_SECRET_ACCESS_KEY=abc/def+ghi=',
      'AWS_DEFAULT_REGION = us-east-1   # inline comment',
      '',
    ].join('\n')
    assert.deepEqual(parseEnvFile(text), {
      AWS_ACCESS_KEY_ID: 'AKIA123',
      AWS_SECRET_ACCESS_KEY: 'abc/def+ghi=',
      AWS_DEFAULT_REGION: 'us-east-1',
    })
  })

  test('quoted values: single quotes literal, double quotes with escapes, CRLF endings', () => {
    const text = 'A=\'x # not a comment\'\r\nB="line\\nnext \\"q\\""\r\nC=\'\'\r\n'
    assert.deepEqual(parseEnvFile(text), { A: 'x # not a comment', B: 'line\nnext "q"', C: '' })
  })

  test('a malformed line is an error naming the file and line, not silently "no keys"', () => {
    assert.throws(
      () => parseEnvFile('export AWS_ACCESS_KEY_ID=x\nthis is not a pair\n', '/run/secrets/aws'),
      {
        code: 'E_AWS_ENV_FILE',
        message: 'AWS env file /run/secrets/aws: line 2 is not KEY=value: "this is not a pair"',
      },
    )
    assert.throws(() => parseEnvFile('A="open\n', 'f'), {
      code: 'E_AWS_ENV_FILE',
      message: /line 1: unterminated/,
    })
  })
})
