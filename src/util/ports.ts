// Default TCP ports of Cradle's servers (docs/architecture.md), in one place.
export const IMAGESERVER_PORT = 6971;
export const BOOTSERVER_PORT = 6977;
export const INSTALLER_STATUS_PORT = 6978;
