/** Mail templates: Mustache text and HTML bodies, the shipped ones or an operator's overrides. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Mustache from 'mustache';

/** Every mail the application sends; each has `<kind>.txt` and `<kind>.html`. */
export const MAIL_KINDS = [
  'verify_email',
  'already_verified',
  'change_email',
  'email_changed',
  'address_taken',
  'password_reset',
  'password_changed',
  'no_account',
  'invitation',
] as const;
export type MailKind = (typeof MAIL_KINDS)[number];

/** The shipped templates, beside dist/ and src/ in the package. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(
  new URL('../../../templates/mail/', import.meta.url),
);

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

interface Template {
  subject: string;
  text: string;
  html: string;
}

/** The values a template may use; a missing one renders empty. */
export type MailValues = Record<string, string | undefined>;

/** A .txt template starts with `Subject: ...` and a blank line; the body follows. */
function parseText(file: string, source: string): { subject: string; text: string } {
  const match = /^Subject: ?(.*)\r?\n\r?\n([\s\S]*)$/.exec(source);
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new Error(
      `mail template ${file}: must start with a "Subject: ..." line and a blank line`,
    );
  }
  return { subject: match[1], text: match[2] };
}

const noEscape = { escape: (value: string) => value };

/**
 * The templates, read once at start so a broken override stops the start rather than a
 * request. A file in the operator's directory replaces the shipped file of the same name.
 */
export class MailTemplates {
  private readonly templates = new Map<MailKind, Template>();

  constructor(overridesDir?: string) {
    if (overridesDir !== undefined && !existsSync(overridesDir)) {
      throw new Error(`MYAPI_MAIL__TEMPLATES_DIR: no such directory ${overridesDir}`);
    }
    const read = (name: string) => {
      const override = overridesDir === undefined ? undefined : join(overridesDir, name);
      const path =
        override !== undefined && existsSync(override)
          ? override
          : join(DEFAULT_TEMPLATES_DIR, name);
      return { path, source: readFileSync(path, 'utf8') };
    };
    for (const kind of MAIL_KINDS) {
      const text = read(`${kind}.txt`);
      const html = read(`${kind}.html`);
      const parsed = parseText(text.path, text.source);
      // Parsing now reports a malformed template at start.
      Mustache.parse(parsed.subject);
      Mustache.parse(parsed.text);
      Mustache.parse(html.source);
      this.templates.set(kind, { ...parsed, html: html.source });
    }
  }

  /** Text and subject are not escaped; every value in the HTML body is. */
  render(kind: MailKind, values: MailValues): RenderedMail {
    const template = this.templates.get(kind);
    if (template === undefined) throw new Error(`no mail template ${kind}`);
    return {
      subject: Mustache.render(template.subject, values, {}, noEscape).replace(/[\r\n]+/g, ' '),
      text: Mustache.render(template.text, values, {}, noEscape),
      html: Mustache.render(template.html, values),
    };
  }
}
