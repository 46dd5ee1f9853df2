/** What stops the lab (a missing package, a guest that did not finish): reported as one line. */
export class LabError extends Error {}
