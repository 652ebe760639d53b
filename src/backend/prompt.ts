/** Reading a password on the command line: hidden on a terminal, one line from a pipe. */
import { createInterface } from 'node:readline';
import { read } from 'read';

/**
 * The first line of a piped stdin (`echo secret | myapi create-user ...`), or '' when it is
 * empty. Node's readline rather than `read`, whose promise never settles on an empty pipe.
 */
export async function readLine(input: NodeJS.ReadStream): Promise<string> {
  const lines = createInterface({ input, terminal: false });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return '';
}

/** Asks on the terminal without echoing what is typed (the `read` package); Ctrl-C aborts. */
export function askHidden(
  question: string,
  input: NodeJS.ReadStream,
  output: NodeJS.WriteStream,
): Promise<string> {
  return read({ prompt: question, silent: true, replace: '', input, output });
}
