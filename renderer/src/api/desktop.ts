/**
 * The desktop shell's bridge (window.circuitDesktop, present only in the Electron app): types
 * from the shell's channel definitions, imported as types only.
 */
export type { DesktopBridge, FolderPurpose, MenuCommand } from '../../../electron/app/channels.ts';
