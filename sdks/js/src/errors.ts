/**
 * A flags document or flag entry that cannot be used. The message names the
 * problem and the flag key, never the offending value or the document's text.
 */
export class FlagsDocumentError extends Error {
  override readonly name = "FlagsDocumentError";
}
