/**
 * What the trace reader and the hash throw when they stopped early: the
 * caller asked them to (a signal), or the writer has not finished the file.
 */

/** `shouldStop()` said stop: nothing more was read. */
export class StopRequested extends Error {
  constructor() {
    super('stopped on request before the end of the file');
    this.name = 'StopRequested';
  }
}

/** The header promised an end record (`"end_record": true`) and the file ends without one. */
export class IncompleteSegment extends Error {
  constructor(readonly file: string) {
    super('no end record yet: the writer has not finished');
    this.name = 'IncompleteSegment';
  }
}
