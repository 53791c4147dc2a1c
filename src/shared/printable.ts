/**
 * Text that is safe to print to a terminal. File names come from anyone who can write into a
 * drop folder: a name holding ESC sequences could clear the screen, retitle the window or hide
 * text, and a CR or newline could forge a line of output. Control characters (C0 except tab, DEL,
 * C1) are shown as escapes instead: `\n`, `\r`, `\u001b`. JSON log files need none of this.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (char) =>
    char === '\n' ? '\\n' : char === '\r' ? '\\r' : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
