/** Reading a password on the command line: hidden on a terminal, one line from a pipe. */
import { read } from 'read';

/** The first line of a piped stdin (`echo secret | myapi create-user ...`), with no prompt. */
export function readLine(input: NodeJS.ReadStream): Promise<string> {
  return read({ input, terminal: false, prompt: '' });
}

/** Asks on the terminal without echoing what is typed (the `read` package); Ctrl-C aborts. */
export function askHidden(
  question: string,
  input: NodeJS.ReadStream,
  output: NodeJS.WriteStream,
): Promise<string> {
  return read({ prompt: question, silent: true, replace: '', input, output });
}
