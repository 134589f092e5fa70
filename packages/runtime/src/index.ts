// Public API of @signet/runtime: every export here is public surface.

export const PACKAGE_NAME = "@signet/runtime";
