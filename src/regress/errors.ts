/** A file given to normalize, diff or assert that is not what it should be: one line naming the file and line, exit 2. */
export class InputFileError extends Error {
  override name = 'InputFileError';
  constructor(readonly file: string, readonly line: number, what: string) {
    super(line > 0 ? `${file}:${line}: ${what}` : `${file}: ${what}`);
  }
}
