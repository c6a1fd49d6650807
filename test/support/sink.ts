/** A stand-in for a terminal stream in CLI tests: collects what is written, as a TTY or not. */
export function sink(tty = false) {
  let text = ''
  return {
    write(s: string) {
      text += s
      return true
    },
    isTTY: tty,
    columns: 120,
    rows: 50,
    get text() {
      return text
    },
  }
}
