// Public API of @signet/sdk: every export here is public surface.

export const PACKAGE_NAME = "@signet/sdk";
