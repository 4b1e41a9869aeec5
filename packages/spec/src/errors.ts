/** An error caused by the user's input (a path, a flag, a file): message names the culprit. */
export class HeadbenchInputError extends Error {
  constructor(
    message: string,
    readonly path?: string,
  ) {
    super(message);
    this.name = 'HeadbenchInputError';
  }
}
