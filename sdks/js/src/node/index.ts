/** @flagops/sdk/node: everything in @flagops/sdk, plus flags from a mounted ConfigMap folder. */

export * from "../index.js";
export { FILE_NAME, flagsFilePath, fromFolder, type FolderOptions } from "./folder.js";
